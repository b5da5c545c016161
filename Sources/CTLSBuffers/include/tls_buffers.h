#ifndef UVWEBSOCKET_TLS_BUFFERS_H
#define UVWEBSOCKET_TLS_BUFFERS_H
#include <stddef.h>

// Whether OpenSSL's allocations go through the per-thread pool of record
// buffers (installed when the program starts; false if OpenSSL had already
// allocated, which makes its allocator unchangeable).
int uvws_tls_buffer_pool_installed(void);
// Record buffers this thread's pool holds now, and took from it so far.
size_t uvws_tls_buffer_pool_count(void);
size_t uvws_tls_buffer_pool_reused(void);
#endif
