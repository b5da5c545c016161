// A per-thread free list for OpenSSL's record buffers.
//
// With SSL_MODE_RELEASE_BUFFERS, OpenSSL frees a connection's read and write
// buffers (about 17 KB each) whenever they empty, so that an idle connection
// holds none, and allocates them again at the next record: for a busy
// connection, a malloc and a free of 17 KB around nearly every record (curl
// dropped the mode for that churn). Here OpenSSL's allocator hands blocks of
// that size class to a small list per thread instead of back to malloc, and
// takes them from it first. A loop is a thread, so the list is the loop's:
// no lock, and a buffer freed on one loop is reused on the same loop.
//
// Every other allocation passes straight to malloc. A freed block is
// recognised by its usable size (malloc_usable_size), so no header is added
// to any allocation. The list is bounded; past it, blocks go back to malloc.
#include <malloc.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdlib.h>
#include "tls_buffers.h"

// OpenSSL 3.0's record buffers: 16384 bytes of plaintext plus the record
// overhead and alignment padding, just under 17 KiB for reads and writes.
enum { CLASS_MIN = 16 * 1024 + 1, CLASS_SIZE = 17 * 1024 + 512, POOL_LIMIT = 64 };

static __thread void *pool[POOL_LIMIT];
static __thread size_t pool_count;
static __thread size_t pool_reused;
static int installed;
// Empties a thread's list when the thread ends (a loop thread of a group),
// so that its blocks go back to malloc rather than leak.
static pthread_key_t pool_owner;

static void drain(void *unused) {
    (void)unused;
    while (pool_count > 0) free(pool[--pool_count]);
}

static void *pooled_malloc(size_t size, const char *file, int line) {
    (void)file; (void)line;
    if (size >= CLASS_MIN && size <= CLASS_SIZE) {
        if (pool_count > 0) {
            pool_reused++;
            return pool[--pool_count];
        }
        return malloc(CLASS_SIZE);
    }
    return malloc(size);
}

static void *pooled_realloc(void *block, size_t size, const char *file, int line) {
    (void)file; (void)line;
    return realloc(block, size);
}

static void pooled_free(void *block, const char *file, int line) {
    (void)file; (void)line;
    if (block == NULL) return;
    size_t usable = malloc_usable_size(block);
    if (usable >= CLASS_SIZE && usable < CLASS_SIZE + 1024 && pool_count < POOL_LIMIT) {
        if (pool_count == 0) pthread_setspecific(pool_owner, (void *)1);
        pool[pool_count++] = block;
        return;
    }
    free(block);
}

// Before main, when OpenSSL has allocated nothing yet (it refuses a new
// allocator after its first allocation).
__attribute__((constructor)) static void install(void) {
    if (pthread_key_create(&pool_owner, drain) != 0) return;
    installed = CRYPTO_set_mem_functions(pooled_malloc, pooled_realloc, pooled_free);
}

int uvws_tls_buffer_pool_installed(void) { return installed; }
size_t uvws_tls_buffer_pool_count(void) { return pool_count; }
size_t uvws_tls_buffer_pool_reused(void) { return pool_reused; }
