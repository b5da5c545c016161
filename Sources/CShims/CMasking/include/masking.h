#ifndef UVWEBSOCKET_CMASKING_H
#define UVWEBSOCKET_CMASKING_H
#include <stddef.h>
#include <stdint.h>

/* XORs `count` bytes at `bytes` with the 4-byte mask `key` (RFC 6455 §5.3),
   key byte 0 first (the caller rotates it to the piece's phase). Uses AVX2
   where the CPU has it (checked once), 16-byte vectors otherwise. */
void uvws_mask(void *bytes, size_t count, uint32_t key);

#endif
