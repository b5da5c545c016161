#ifndef UVWEBSOCKET_CLIBSSL_SHIM_H
#define UVWEBSOCKET_CLIBSSL_SHIM_H
// OpenSSL 3's libssl for wss:// and https://. Swift does not import
// function-like macros, so the few this project needs are wrapped below.
#include <openssl/ssl.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

static inline long uvws_ssl_ctx_set_mode(SSL_CTX *ctx, long mode) { return SSL_CTX_set_mode(ctx, mode); }
static inline int uvws_ssl_ctx_set_min_version(SSL_CTX *ctx, int version) {
    return (int)SSL_CTX_set_min_proto_version(ctx, version);
}
// Servers here keep no session cache: TLS 1.3 resumption uses stateless
// tickets, and a cache grows with every client.
static inline void uvws_ssl_ctx_disable_cache(SSL_CTX *ctx) { SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF); }
static inline void uvws_ssl_ctx_refuse_renegotiation(SSL_CTX *ctx) {
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
}
static inline void uvws_ssl_ctx_prefer_server_ciphers(SSL_CTX *ctx) { SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE); }
static inline int uvws_ssl_set_server_name(SSL *ssl, const char *name) { return (int)SSL_set_tlsext_host_name(ssl, name); }
static inline void uvws_ssl_ctx_set_servername_callback(SSL_CTX *ctx, int (*cb)(SSL *, int *, void *), void *arg) {
    SSL_CTX_set_tlsext_servername_callback(ctx, cb);
    SSL_CTX_set_tlsext_servername_arg(ctx, arg);
}
static inline void uvws_bio_set_retry_read(BIO *bio) { BIO_set_retry_read(bio); }
static inline void uvws_bio_clear_retry_flags(BIO *bio) { BIO_clear_retry_flags(bio); }
static inline int uvws_bio_ctrl_flush(void) { return BIO_CTRL_FLUSH; }
static inline int uvws_bio_type_source_sink(void) { return BIO_TYPE_SOURCE_SINK; }
// ALPN (RFC 7301) in its wire form: HTTP/1.1 is all this project speaks.
static const unsigned char uvws_alpn_http11[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
static inline int uvws_ssl_set_alpn_http11(SSL *ssl) {
    return SSL_set_alpn_protos(ssl, uvws_alpn_http11, sizeof uvws_alpn_http11);
}
// The server's ALPN choice: http/1.1 if the client offers it, else none.
static inline int uvws_select_alpn_http11(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                                          const unsigned char *in, unsigned int inlen, void *arg) {
    (void)ssl; (void)arg;
    unsigned char *chosen = NULL;
    if (SSL_select_next_proto(&chosen, outlen, uvws_alpn_http11, sizeof uvws_alpn_http11, in, inlen)
        != OPENSSL_NPN_NEGOTIATED) return SSL_TLSEXT_ERR_NOACK;
    *out = chosen;
    return SSL_TLSEXT_ERR_OK;
}
static inline void uvws_ssl_ctx_select_alpn_http11(SSL_CTX *ctx) {
    SSL_CTX_set_alpn_select_cb(ctx, uvws_select_alpn_http11, NULL);
}
static inline int uvws_tls_1_2(void) { return TLS1_2_VERSION; }
static inline int uvws_tls_1_3(void) { return TLS1_3_VERSION; }
#endif
