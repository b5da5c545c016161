#ifndef UVWEBSOCKET_CLIBCRYPTO_SHIM_H
#define UVWEBSOCKET_CLIBCRYPTO_SHIM_H
// OpenSSL's libcrypto gives SHA-1 and base64 for the opening handshake
// (RFC 6455 §4.2.2); libssl (CLibSSL) builds TLS on the same library.
#include <openssl/sha.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#endif
