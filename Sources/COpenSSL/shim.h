// OpenSSL 3 (libssl-dev) for the TLS target. Swift cannot import OpenSSL's function-like
// macros, so the few it needs are wrapped here as static inline functions.
#include <openssl/ssl.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <openssl/bio.h>

static inline int cssl_ctx_set_min_proto_version(SSL_CTX *ctx, int version) {
    return (int)SSL_CTX_set_min_proto_version(ctx, version);
}
static inline long cssl_ctx_set_mode(SSL_CTX *ctx, long mode) { return SSL_CTX_set_mode(ctx, mode); }
static inline long cssl_ctx_set_options(SSL_CTX *ctx, long options) { return (long)SSL_CTX_set_options(ctx, (uint64_t)options); }
static inline int cssl_set_tlsext_host_name(SSL *ssl, const char *name) { return (int)SSL_set_tlsext_host_name(ssl, name); }
static inline int cssl_ktls_send(SSL *ssl) { return BIO_get_ktls_send(SSL_get_wbio(ssl)); }
static inline int cssl_ktls_recv(SSL *ssl) { return BIO_get_ktls_recv(SSL_get_rbio(ssl)); }
static inline const long cssl_op_enable_ktls(void) { return (long)SSL_OP_ENABLE_KTLS; }
static inline const long cssl_op_no_ticket(void) { return (long)SSL_OP_NO_TICKET; }
static inline const long cssl_mode_partial_write(void) { return SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER; }

// The peer certificate's subject as RFC 4514 text (most specific first, as QEMU prints a
// distinguished name for tls-authz); -1 without a peer certificate.
static inline int cssl_peer_subject(SSL *ssl, char *buffer, int capacity) {
    X509 *certificate = SSL_get1_peer_certificate(ssl);
    if (certificate == NULL || capacity < 1) return -1;
    BIO *bio = BIO_new(BIO_s_mem());
    int length = -1;
    if (bio != NULL && X509_NAME_print_ex(bio, X509_get_subject_name(certificate), 0, XN_FLAG_RFC2253) >= 0) {
        length = BIO_read(bio, buffer, capacity - 1);
        if (length < 0) length = 0;
        buffer[length] = 0;
    }
    BIO_free(bio);
    X509_free(certificate);
    return length;
}
static inline void cssl_ctx_set_read_ahead(SSL_CTX *ctx, int on) { SSL_CTX_set_read_ahead(ctx, on); }

// Puts a buffer of `size` bytes between the session and its socket for writes, so that the
// 16 KiB records of one large SSL_write leave in a few large send calls instead of one each.
// Returns 1, or 0 when OpenSSL could not make the buffer (writes then go straight out).
static inline int cssl_buffer_writes(SSL *ssl, int size) {
    BIO *socket = SSL_get_wbio(ssl);
    BIO *buffer = BIO_new(BIO_f_buffer());
    if (socket == NULL || buffer == NULL || BIO_set_write_buffer_size(buffer, size) != 1 || BIO_up_ref(socket) != 1) {
        BIO_free(buffer);
        return 0;
    }
    // The chain holds its own reference to the socket BIO; SSL_set0_wbio drops the session's.
    BIO_push(buffer, socket);
    SSL_set0_wbio(ssl, buffer);
    return 1;
}
// Sends what the write buffer holds: 1 when it is empty, 0 when the socket is full (poll for
// writing and call again), -1 on a socket error (errno says which).
static inline int cssl_flush_writes(SSL *ssl) {
    BIO *bio = SSL_get_wbio(ssl);
    if (BIO_flush(bio) == 1) return 1;
    return BIO_should_retry(bio) ? 0 : -1;
}
