// Per-thread free lists for the blocks OpenSSL allocates and frees around
// every record.
//
// With SSL_MODE_RELEASE_BUFFERS, OpenSSL frees a connection's read and write
// buffers (about 17 KB each) whenever they empty, so that an idle connection
// holds none, and allocates them again at the next record: for a busy
// connection, a malloc and a free of 17 KB around nearly every record (curl
// dropped the mode for that churn). OpenSSL 3.0 also allocates and frees a
// 40-byte block a few times per record (measured with a uprobe on malloc
// under load: every malloc of the TLS echo was one of these). Here OpenSSL's
// allocator hands blocks of those two size classes to a small list per
// thread instead of back to malloc, and takes them from it first. A loop is
// a thread, so the lists are the loop's: no lock, and a block freed on one
// loop is reused on the same loop.
//
// Every other allocation passes straight to malloc. A freed block is
// recognised by its usable size (malloc_usable_size), so no header is added
// to any allocation. The lists are bounded; past them, blocks go back to
// malloc.
#include <malloc.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdlib.h>
#include "tls_buffers.h"

enum { POOL_LIMIT = 64 };

// A size class: requests in [min, size] get a block of `size` bytes, and a
// freed block whose usable size is in [size, size + slack) is kept.
struct pool {
    size_t min, size, slack;
    void *blocks[POOL_LIMIT];
    size_t count;
};

// OpenSSL 3.0's record buffers: 16384 bytes of plaintext plus the record
// overhead and alignment padding, just under 17 KiB for reads and writes;
// and its small per-record blocks.
static __thread struct pool record_buffers = {16 * 1024 + 1, 17 * 1024 + 512, 1024, {0}, 0};
static __thread struct pool small_blocks = {33, 40, 16, {0}, 0};
static __thread size_t reused;
static int installed;
// Empties a thread's lists when the thread ends (a loop thread of a group),
// so that their blocks go back to malloc rather than leak.
static pthread_key_t pool_owner;

static void drain(void *unused) {
    (void)unused;
    while (record_buffers.count > 0) free(record_buffers.blocks[--record_buffers.count]);
    while (small_blocks.count > 0) free(small_blocks.blocks[--small_blocks.count]);
}

static struct pool *pool_for_request(size_t size) {
    if (size >= record_buffers.min && size <= record_buffers.size) return &record_buffers;
    if (size >= small_blocks.min && size <= small_blocks.size) return &small_blocks;
    return NULL;
}

static struct pool *pool_for_block(size_t usable) {
    if (usable >= record_buffers.size && usable < record_buffers.size + record_buffers.slack) return &record_buffers;
    if (usable >= small_blocks.size && usable < small_blocks.size + small_blocks.slack) return &small_blocks;
    return NULL;
}

static void *pooled_malloc(size_t size, const char *file, int line) {
    (void)file; (void)line;
    struct pool *pool = pool_for_request(size);
    if (pool == NULL) return malloc(size);
    if (pool->count > 0) {
        reused++;
        return pool->blocks[--pool->count];
    }
    return malloc(pool->size);
}

static void *pooled_realloc(void *block, size_t size, const char *file, int line) {
    (void)file; (void)line;
    return realloc(block, size);
}

static void pooled_free(void *block, const char *file, int line) {
    (void)file; (void)line;
    if (block == NULL) return;
    struct pool *pool = pool_for_block(malloc_usable_size(block));
    if (pool != NULL && pool->count < POOL_LIMIT) {
        if (record_buffers.count == 0 && small_blocks.count == 0) pthread_setspecific(pool_owner, (void *)1);
        pool->blocks[pool->count++] = block;
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
size_t uvws_tls_buffer_pool_count(void) { return record_buffers.count + small_blocks.count; }
size_t uvws_tls_buffer_pool_reused(void) { return reused; }
