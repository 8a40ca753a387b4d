/* HTTP client on libcurl's multi interface driven by a libuv loop: one client (one multi handle,
 * one connection pool) per loop, many concurrent transfers, no thread and no blocking call. */
#ifndef MS_HTTP_H
#define MS_HTTP_H

#include <stddef.h>
#include <uv.h>

struct ms_http;
struct ms_http_transfer;

/* Results of a transfer, as given to on_done; ms_http_result_token names them. */
enum ms_http_result {
    MS_HTTP_OK = 0,
    MS_HTTP_ETIMEOUT = -1,   /* "timeout": total, connect or idle timeout */
    MS_HTTP_ECONNECT = -2,   /* "connect": refused, unreachable */
    MS_HTTP_ETLS = -3,       /* "tls": handshake, verification, bad certificate data */
    MS_HTTP_ERESOLVE = -4,   /* "resolve": host or proxy name not found */
    MS_HTTP_ECLOSED = -5,    /* "closed": connection dropped mid-response */
    MS_HTTP_ECANCELLED = -6, /* "cancelled": the client was freed with the transfer in flight */
    MS_HTTP_EHTTP = -7,      /* "http": protocol or other error */
    MS_HTTP_ESTOPPED = -8,   /* "stopped": on_data asked to stop (the response is partial) */
    MS_HTTP_ENOMEM = -9,     /* "nomem" */
};

/* What on_data returns. */
enum ms_http_data_action {
    MS_HTTP_CONTINUE = 0,
    MS_HTTP_PAUSE = 1, /* the chunk was NOT consumed: it is delivered again after ms_http_resume */
    MS_HTTP_STOP = 2,  /* end the transfer: on_done follows with MS_HTTP_ESTOPPED */
};

struct ms_http_header {
    const char *name; /* lowercased */
    const char *value;
};

/* Everything is borrowed for the duration of ms_http_start only: the client copies what it keeps.
 */
struct ms_http_request {
    const char *method; /* NULL: GET */
    const char *url;
    const char *const *headers; /* "Name: value" lines */
    size_t nheaders;
    const char *body; /* NULL: no body */
    size_t body_len;
    double timeout;         /* seconds for the whole transfer, 0: none */
    double connect_timeout; /* seconds, 0: curl's default */
    double idle_timeout;    /* seconds without a byte received before "timeout" (streams), 0: none;
                             * not counted while the receiver has paused the transfer */
    const char *ca;         /* CA certificates, PEM data */
    size_t ca_len;
    const char *cert; /* client certificate, PEM data */
    size_t cert_len;
    const char *key; /* client key, PEM data */
    size_t key_len;
    int insecure;            /* skip server certificate verification */
    const char *server_name; /* TLS name to verify instead of the URL's host */
    const char *proxy;       /* proxy URL, NULL: curl's default (environment) */
};

/* Called on the loop thread, never from inside ms_http_start or ms_http_cancel. Callbacks must
 * not call ms_http_free; they may call ms_http_cancel on other transfers, and the transfer's own
 * on_data stops it by returning MS_HTTP_STOP. */
struct ms_http_callbacks {
    /* Once, when the final response's headers are complete (before any data). headers[] and
     * its strings are borrowed for the call. May be NULL. */
    void (*on_headers)(void *ud, long status, const struct ms_http_header *headers, size_t n);
    /* Each piece of the body, in order; borrowed for the call. */
    enum ms_http_data_action (*on_data)(void *ud, const char *data, size_t len);
    /* Exactly once unless cancelled, after which the transfer is gone. message is borrowed for
     * the call, never NULL ("" on success); it never contains header values. */
    void (*on_done)(void *ud, int result, const char *message);
};

/* Returns NULL when out of memory or curl cannot be set up. */
struct ms_http *ms_http_new(uv_loop_t *loop);

/* When curl has work to do at once (a transfer just started), the client normally acts on the
 * next loop turn. With a kick function, it calls kick(ud) instead (never acting from inside
 * curl), and the owner calls ms_http_act(c) as soon as it can: so a transfer started among a
 * burst of other work goes out before that work is over. */
void ms_http_set_kick(struct ms_http *c, void (*kick)(void *ud), void *ud);
void ms_http_act(struct ms_http *c);

/* Ends every transfer in flight (each gets on_done with MS_HTTP_ECANCELLED, synchronously) and
 * closes the client's handles; the memory is released by the loop's close callbacks, so the loop
 * must run (or be walked and closed) once more. Accepts NULL. */
void ms_http_free(struct ms_http *c);

/* Starts a transfer; callbacks fire from later loop turns. Returns NULL with *err set to a
 * result code (MS_HTTP_ENOMEM, MS_HTTP_EHTTP for an option curl rejects) and, when errbuf is
 * given, a message. The transfer belongs to the client until on_done or ms_http_cancel. */
struct ms_http_transfer *ms_http_start(struct ms_http *c, const struct ms_http_request *req,
                                       const struct ms_http_callbacks *cb, void *ud, int *err,
                                       char *errbuf, size_t errlen);

/* Stops the transfer; no callback of it fires afterwards. Accepts NULL. */
void ms_http_cancel(struct ms_http_transfer *t);

/* Delivers again the chunk that on_data refused with MS_HTTP_PAUSE and goes on. on_data may be
 * called before this returns. */
void ms_http_resume(struct ms_http_transfer *t);

/* The stable token of a result code ("ok", "timeout", ...). */
const char *ms_http_result_token(int result);

struct ms_http_stats {
    size_t transfers; /* started and neither done nor cancelled */
    size_t sockets;   /* sockets curl asked us to watch */
};
void ms_http_stats(const struct ms_http *c, struct ms_http_stats *out);

#endif
