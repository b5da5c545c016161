#include "masking.h"
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>

/* 128 bytes a round in four 32-byte vectors: a 64 KiB payload, already in
   L2 after the kernel copied it there, is unmasked in about half the time of
   16-byte vectors. Swift cannot compile a function for a CPU feature and
   choose it at run time, hence this file. */
__attribute__((target("avx2")))
static size_t mask_avx2(uint8_t *p, size_t count, uint32_t key) {
    const __m256i k = _mm256_set1_epi32((int)key);
    size_t done = 0;
    for (; done + 128 <= count; done += 128) {
        __m256i a = _mm256_loadu_si256((const __m256i *)(p + done));
        __m256i b = _mm256_loadu_si256((const __m256i *)(p + done + 32));
        __m256i c = _mm256_loadu_si256((const __m256i *)(p + done + 64));
        __m256i d = _mm256_loadu_si256((const __m256i *)(p + done + 96));
        _mm256_storeu_si256((__m256i *)(p + done), _mm256_xor_si256(a, k));
        _mm256_storeu_si256((__m256i *)(p + done + 32), _mm256_xor_si256(b, k));
        _mm256_storeu_si256((__m256i *)(p + done + 64), _mm256_xor_si256(c, k));
        _mm256_storeu_si256((__m256i *)(p + done + 96), _mm256_xor_si256(d, k));
    }
    return done;
}

static int has_avx2(void) {
    /* Loops on several threads may ask at once: relaxed atomics, since any
       of them computes the same answer. */
    static int known = -1;
    int value = __atomic_load_n(&known, __ATOMIC_RELAXED);
    if (value < 0) {
        __builtin_cpu_init();
        value = __builtin_cpu_supports("avx2") ? 1 : 0;
        __atomic_store_n(&known, value, __ATOMIC_RELAXED);
    }
    return value;
}
#endif

void uvws_mask(void *bytes, size_t count, uint32_t key) {
    uint8_t *p = bytes;
    size_t done = 0;
#if defined(__x86_64__)
    if (has_avx2()) done = mask_avx2(p, count, key);
#endif
    /* The rest (or all of it, without AVX2) 8 bytes at a time, then bytes. */
    uint64_t k64 = (uint64_t)key | ((uint64_t)key << 32);
    for (; done + 8 <= count; done += 8) {
        uint64_t word;
        memcpy(&word, p + done, 8);
        word ^= k64;
        memcpy(p + done, &word, 8);
    }
    for (int shift = 0; done < count; done++, shift = (shift + 8) & 31) {
        p[done] ^= (uint8_t)(key >> shift);
    }
}
