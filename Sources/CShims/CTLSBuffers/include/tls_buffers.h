#ifndef UVWEBSOCKET_TLS_BUFFERS_H
#define UVWEBSOCKET_TLS_BUFFERS_H
#include <stddef.h>

// Whether OpenSSL's allocations go through the per-thread lists of record
// buffers and small per-record blocks (installed when the program starts;
// false if OpenSSL had already allocated, which makes its allocator
// unchangeable).
int uvws_tls_buffer_pool_installed(void);
// Blocks this thread's lists hold now, and how many were taken from them.
size_t uvws_tls_buffer_pool_count(void);
size_t uvws_tls_buffer_pool_reused(void);
#endif
