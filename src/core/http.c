/* HTTP client: libcurl's multi interface driven by a libuv loop. Two callbacks wire curl to the
 * loop (socket interest → one uv_poll per socket, timeout → one uv_timer); completed transfers
 * are drained with curl_multi_info_read after every action. */
#include "core/http.h"

#include <ctype.h>
#include <errno.h>
#include <curl/curl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct sock {
    uv_poll_t poll;
    struct ms_http *client;
    curl_socket_t fd;
    struct sock *prev, *next;
};

struct ms_http {
    uv_loop_t *loop; /* borrows */
    CURLM *multi;
    uv_timer_t timer;
    uv_timer_t idle;     /* ticks while a transfer has an idle timeout */
    size_t open_handles; /* uv handles not yet closed (timers, polls): the client is freed at 0 */
    size_t nsockets;
    int depth;   /* > 0 while inside a curl call that may run our callbacks */
    int swept;   /* no transfer waits in the list to be removed (see sweep) */
    int freeing; /* ms_http_free has run: waiting for close callbacks */
    struct ms_http_transfer *transfers; /* in flight, including cancelled ones not yet removed */
    struct sock *socks;
    void (*kick)(void *ud); /* see ms_http_set_kick */
    void *kick_ud;
};

struct ms_http_transfer {
    struct ms_http *client;
    CURL *easy;
    struct curl_slist *headers;
    struct curl_slist *connect_to; /* tls.server_name: curl borrows it */
    struct ms_http_callbacks cb;
    void *ud;
    struct ms_http_transfer *prev, *next;
    int cancelled; /* no callback fires; removed at the next safe point */
    int stopped;   /* on_data returned MS_HTTP_STOP */
    int paused;
    int headers_done;
    double timeout, connect_timeout; /* seconds, 0: none (for messages) */
    uint64_t idle_ms;                /* idle timeout, 0: none */
    uint64_t active_at;              /* uv_now of the last byte received (or of the start) */
    long status;
    struct ms_http_header *hdrs; /* owns names and values (one allocation per header) */
    size_t nhdrs, caphdrs;
    char errbuf[CURL_ERROR_SIZE];
};

static const char *const tokens[] = {
    "ok", "timeout", "connect", "tls", "resolve", "closed", "cancelled", "http", "stopped", "nomem",
};

const char *ms_http_result_token(int result)
{
    if (result > 0 || -result >= (int)(sizeof tokens / sizeof tokens[0]))
        return "http";
    return tokens[-result];
}

static int map_result(const struct ms_http_transfer *t, CURLcode rc)
{
    switch (rc) {
    case CURLE_OK:
        return MS_HTTP_OK;
    case CURLE_OPERATION_TIMEDOUT:
        return MS_HTTP_ETIMEOUT;
    case CURLE_COULDNT_CONNECT:
        return MS_HTTP_ECONNECT;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
        return MS_HTTP_ERESOLVE;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_USE_SSL_FAILED:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_SHUTDOWN_FAILED:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_CLIENTCERT:
        return MS_HTTP_ETLS;
    case CURLE_PARTIAL_FILE:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_HTTP2_STREAM:
        return MS_HTTP_ECLOSED;
    case CURLE_WRITE_ERROR:
        return t->stopped ? MS_HTTP_ESTOPPED : MS_HTTP_EHTTP;
    case CURLE_OUT_OF_MEMORY:
        return MS_HTTP_ENOMEM;
    default:
        return MS_HTTP_EHTTP;
    }
}

/* ---- failures in words ---- */

/* OpenSSL's X509_V_ERR_* codes, as libcurl's OpenSSL backend reports them with
 * CURLINFO_SSL_VERIFYRESULT (copied as numbers: this file does not include OpenSSL). */
enum {
    X509_ISSUER_UNKNOWN = 2,        /* X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT */
    X509_NOT_YET_VALID = 9,         /* X509_V_ERR_CERT_NOT_YET_VALID */
    X509_EXPIRED = 10,              /* X509_V_ERR_CERT_HAS_EXPIRED */
    X509_SELF_SIGNED = 18,          /* X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT */
    X509_SELF_SIGNED_IN_CHAIN = 19, /* X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN */
    X509_ISSUER_NOT_LOCAL = 20,     /* X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY */
    X509_LEAF_UNVERIFIABLE = 21,    /* X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE */
};

static int openssl_backend(void)
{
    const curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);
    return v && v->ssl_version && strncmp(v->ssl_version, "OpenSSL", 7) == 0;
}

/* The text between the first pair of single quotes of s, into out; "" when there is none. */
static void quoted(const char *s, char *out, size_t n)
{
    const char *a = strchr(s, '\'');
    const char *b = a ? strchr(a + 1, '\'') : NULL;
    snprintf(out, n, "%.*s", b ? (int)(b - a - 1) : 0, b ? a + 1 : "");
}

/* Why a server certificate that failed verification was refused. */
static const char *tls_verify_text(struct ms_http_transfer *t, const char *detail, char *buf,
                                   size_t n)
{
    /* curl checks the host name itself, after the chain verified, and says so in these words
     * ("... does not match target host name 'x'", "no alternative certificate subject name
     * matches target host name 'x'") whatever its TLS backend */
    const char *target = strstr(detail, "target host name '");
    if (target) {
        char host[256];
        quoted(target, host, sizeof host);
        snprintf(buf, n, "TLS: certificate name mismatch (the server's certificate is not for %s)",
                 host);
        return buf;
    }
    long vr = 0;
    if (openssl_backend() &&
        curl_easy_getinfo(t->easy, CURLINFO_SSL_VERIFYRESULT, &vr) == CURLE_OK) {
        switch (vr) {
        case X509_ISSUER_UNKNOWN:
        case X509_SELF_SIGNED:
        case X509_SELF_SIGNED_IN_CHAIN:
        case X509_ISSUER_NOT_LOCAL:
        case X509_LEAF_UNVERIFIABLE:
            return "TLS: unknown certificate authority (self-signed or wrong CA)";
        case X509_EXPIRED:
            return "TLS: the server's certificate has expired";
        case X509_NOT_YET_VALID:
            return "TLS: the server's certificate is not valid yet";
        default:
            break;
        }
    }
    snprintf(buf, n, "TLS: the server's certificate was not accepted (%s)", detail);
    return buf;
}

/* What went wrong with a transfer, in words a person can act on (a deploy's preflight prints it
 * as is); curl's own text follows in parentheses where it adds something. Never contains
 * header values. */
static const char *failure_text(struct ms_http_transfer *t, CURLcode rc, int result, char *buf,
                                size_t n)
{
    const char *detail = t->errbuf[0] ? t->errbuf : curl_easy_strerror(rc);
    switch (result) {
    case MS_HTTP_ECONNECT: {
        long err = 0;
        curl_easy_getinfo(t->easy, CURLINFO_OS_ERRNO, &err);
        if (err == ECONNREFUSED)
            return "connection refused";
        if (err == EHOSTUNREACH)
            return "no route to host";
        if (err == ENETUNREACH)
            return "network unreachable";
        snprintf(buf, n, "cannot connect (%s)", detail);
        return buf;
    }
    case MS_HTTP_ERESOLVE: {
        const char *what = rc == CURLE_COULDNT_RESOLVE_PROXY ? "proxy" : "host";
        const char *name = strrchr(detail, ':');
        if (name && name[1] == ' ' && name[2])
            snprintf(buf, n, "could not resolve %s '%s'", what, name + 2);
        else
            snprintf(buf, n, "could not resolve %s (%s)", what, detail);
        return buf;
    }
    case MS_HTTP_ETIMEOUT: {
        /* the limit that was reached, not the time measured (which only says it a bit later) */
        curl_off_t connected = 0, total = 0;
        curl_easy_getinfo(t->easy, CURLINFO_CONNECT_TIME_T, &connected);
        curl_easy_getinfo(t->easy, CURLINFO_TOTAL_TIME_T, &total);
        double limit = t->timeout;
        if (!connected && t->connect_timeout > 0 && (limit <= 0 || t->connect_timeout < limit))
            limit = t->connect_timeout;
        snprintf(buf, n, "timed out after %.3g s %s", limit > 0 ? limit : (double)total / 1e6,
                 connected ? "waiting for the answer" : "connecting");
        return buf;
    }
    case MS_HTTP_ETLS:
        if (rc == CURLE_PEER_FAILED_VERIFICATION)
            return tls_verify_text(t, detail, buf, n);
        snprintf(buf, n, "TLS: %s", detail);
        return buf;
    case MS_HTTP_ECLOSED:
        snprintf(buf, n, "connection closed before the answer was complete (%s)", detail);
        return buf;
    default:
        return detail;
    }
}

/* ---- transfers ---- */

static void clear_headers(struct ms_http_transfer *t)
{
    for (size_t i = 0; i < t->nhdrs; i++)
        free((char *)t->hdrs[i].name); /* value lives in the same allocation */
    t->nhdrs = 0;
}

static void transfer_free(struct ms_http_transfer *t)
{
    if (!t)
        return;
    if (t->easy)
        curl_easy_cleanup(t->easy);
    curl_slist_free_all(t->headers);
    curl_slist_free_all(t->connect_to);
    clear_headers(t);
    free(t->hdrs);
    free(t);
}

static void unlink_transfer(struct ms_http_transfer *t)
{
    struct ms_http *c = t->client;
    if (t->prev)
        t->prev->next = t->next;
    else
        c->transfers = t->next;
    if (t->next)
        t->next->prev = t->prev;
    t->prev = t->next = NULL;
}

/* Removes a transfer from the multi handle and frees it, without callbacks. Only at depth 0. */
static void remove_transfer(struct ms_http_transfer *t)
{
    curl_multi_remove_handle(t->client->multi, t->easy);
    unlink_transfer(t);
    transfer_free(t);
}

/* Removes the transfers cancelled while curl was running our callbacks. */
static void sweep(struct ms_http *c)
{
    if (c->depth > 0 || c->swept)
        return;
    c->swept = 1;
    struct ms_http_transfer *t = c->transfers;
    while (t) {
        struct ms_http_transfer *next = t->next;
        if (t->cancelled)
            remove_transfer(t);
        t = next;
    }
}

/* Completed transfers: remove, report, free. on_done runs outside any curl call. */
static void drain(struct ms_http *c)
{
    CURLMsg *msg;
    int left;
    while (c->multi && (msg = curl_multi_info_read(c->multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        CURL *easy = msg->easy_handle;
        CURLcode rc = msg->data.result;
        char *priv = NULL;
        curl_easy_getinfo(easy, CURLINFO_PRIVATE, &priv);
        struct ms_http_transfer *t = (struct ms_http_transfer *)(void *)priv;
        curl_multi_remove_handle(c->multi, easy);
        unlink_transfer(t);
        if (!t->cancelled && t->cb.on_done) {
            int result = map_result(t, rc);
            char text[CURL_ERROR_SIZE + 160];
            const char *message =
                rc == CURLE_OK ? "" : failure_text(t, rc, result, text, sizeof text);
            if (result == MS_HTTP_ESTOPPED)
                message = "stopped by the receiver";
            t->cb.on_done(t->ud, result, message);
        }
        transfer_free(t);
    }
    sweep(c);
}

static void action(struct ms_http *c, curl_socket_t fd, int flags)
{
    int running;
    c->depth++;
    curl_multi_socket_action(c->multi, fd, flags, &running);
    c->depth--;
    drain(c);
}

/* ---- loop wiring ---- */

static void client_release(struct ms_http *c)
{
    if (--c->open_handles == 0 && c->freeing)
        free(c);
}

static void sock_closed(uv_handle_t *h)
{
    struct sock *s = h->data;
    struct ms_http *c = s->client;
    free(s);
    client_release(c);
}

static void sock_close(struct sock *s)
{
    struct ms_http *c = s->client;
    if (s->prev)
        s->prev->next = s->next;
    else
        c->socks = s->next;
    if (s->next)
        s->next->prev = s->prev;
    c->nsockets--;
    uv_close((uv_handle_t *)&s->poll, sock_closed);
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    struct sock *s = h->data;
    int flags = 0;
    if (status < 0)
        flags = CURL_CSELECT_ERR;
    else {
        if (events & UV_READABLE)
            flags |= CURL_CSELECT_IN;
        if (events & UV_WRITABLE)
            flags |= CURL_CSELECT_OUT;
    }
    action(s->client, s->fd, flags);
}

static int socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    struct ms_http *c = userp;
    struct sock *s = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (s) {
            if (c->multi)
                curl_multi_assign(c->multi, fd, NULL);
            sock_close(s);
        }
        return 0;
    }
    if (!s) {
        s = calloc(1, sizeof *s);
        if (!s)
            return -1;
        if (uv_poll_init_socket(c->loop, &s->poll, fd) != 0) {
            free(s);
            return -1;
        }
        s->poll.data = s;
        s->client = c;
        s->fd = fd;
        s->next = c->socks;
        if (c->socks)
            c->socks->prev = s;
        c->socks = s;
        c->nsockets++;
        c->open_handles++;
        curl_multi_assign(c->multi, fd, s);
    }
    int events = 0;
    if (what & CURL_POLL_IN)
        events |= UV_READABLE;
    if (what & CURL_POLL_OUT)
        events |= UV_WRITABLE;
    /* -1 tells curl the socket cannot be watched: it fails that transfer, not the client */
    return uv_poll_start(&s->poll, events, on_poll) == 0 ? 0 : -1;
}

static void on_timer(uv_timer_t *h)
{
    action(h->data, CURL_SOCKET_TIMEOUT, 0);
}

/* curl's one timer: -1 stops it, 0 fires on the next loop turn or through the kick (never
 * act from inside curl). */
static int timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    struct ms_http *c = userp;
    if (timeout_ms < 0) {
        uv_timer_stop(&c->timer);
    } else if (timeout_ms == 0 && c->kick) {
        uv_timer_stop(&c->timer);
        c->kick(c->kick_ud);
    } else {
        uv_timer_start(&c->timer, on_timer, (uint64_t)timeout_ms, 0);
    }
    return 0;
}

void ms_http_set_kick(struct ms_http *c, void (*kick)(void *ud), void *ud)
{
    c->kick = kick;
    c->kick_ud = ud;
}

void ms_http_act(struct ms_http *c)
{
    if (c->multi && !c->freeing)
        action(c, CURL_SOCKET_TIMEOUT, 0);
}

static void timer_closed(uv_handle_t *h)
{
    client_release(h->data);
}

/* Idle timeouts: curl's low-speed check averages over seconds, so a stream that sent a few
 * bytes and went quiet would not trip it; this tick ends transfers silent for too long. */
#define IDLE_TICK_MS 250

static void on_idle_tick(uv_timer_t *h)
{
    struct ms_http *c = h->data;
    uint64_t now = uv_now(c->loop);
    int any;
restart:
    any = 0;
    for (struct ms_http_transfer *t = c->transfers; t; t = t->next) {
        if (!t->idle_ms || t->cancelled)
            continue;
        /* A paused transfer waits on its receiver, not on the network. */
        if (!t->paused && now - t->active_at >= t->idle_ms) {
            curl_multi_remove_handle(c->multi, t->easy);
            unlink_transfer(t);
            if (t->cb.on_done) {
                char msg[96];
                snprintf(msg, sizeof msg, "no data received for %.3g s", (double)t->idle_ms / 1000);
                t->cb.on_done(t->ud, MS_HTTP_ETIMEOUT, msg);
            }
            transfer_free(t);
            goto restart; /* on_done may have cancelled others */
        }
        any = 1;
    }
    if (!any)
        uv_timer_stop(&c->idle);
}

/* ---- curl callbacks of a transfer ---- */

static int add_header(struct ms_http_transfer *t, const char *line, size_t len)
{
    const char *colon = memchr(line, ':', len);
    if (!colon || colon == line)
        return 0; /* not a header line: ignore */
    size_t nlen = (size_t)(colon - line);
    const char *v = colon + 1, *end = line + len;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
        end--;
    size_t vlen = (size_t)(end - v);
    if (t->nhdrs == t->caphdrs) {
        size_t cap = t->caphdrs ? t->caphdrs * 2 : 16;
        struct ms_http_header *h = realloc(t->hdrs, cap * sizeof *h);
        if (!h)
            return -1;
        t->hdrs = h;
        t->caphdrs = cap;
    }
    char *mem = malloc(nlen + vlen + 2);
    if (!mem)
        return -1;
    for (size_t i = 0; i < nlen; i++)
        mem[i] = (char)tolower((unsigned char)line[i]);
    mem[nlen] = '\0';
    memcpy(mem + nlen + 1, v, vlen);
    mem[nlen + 1 + vlen] = '\0';
    t->hdrs[t->nhdrs].name = mem;
    t->hdrs[t->nhdrs].value = mem + nlen + 1;
    t->nhdrs++;
    return 0;
}

static void headers_complete(struct ms_http_transfer *t)
{
    t->headers_done = 1;
    if (t->cb.on_headers)
        t->cb.on_headers(t->ud, t->status, t->hdrs, t->nhdrs);
}

static size_t header_cb(char *buf, size_t size, size_t n, void *userp)
{
    struct ms_http_transfer *t = userp;
    size_t len = size * n;
    if (t->cancelled)
        return 0;
    t->active_at = uv_now(t->client->loop);
    if (t->headers_done)
        return len; /* trailers */
    if (len >= 5 && memcmp(buf, "HTTP/", 5) == 0) {
        /* A status line starts a response (after a 1xx, a new one follows). */
        clear_headers(t);
        const char *p = memchr(buf, ' ', len);
        t->status = p ? strtol(p + 1, NULL, 10) : 0;
        return len;
    }
    if ((len == 2 && buf[0] == '\r') || (len == 1 && buf[0] == '\n')) {
        if (t->status >= 100 && t->status < 200) {
            clear_headers(t);
            return len;
        }
        headers_complete(t);
        return t->cancelled ? 0 : len;
    }
    if (buf[0] == ' ' || buf[0] == '\t')
        return len; /* obsolete line folding: ignored */
    return add_header(t, buf, len) == 0 ? len : 0;
}

static size_t write_cb(char *data, size_t size, size_t n, void *userp)
{
    struct ms_http_transfer *t = userp;
    size_t len = size * n;
    if (t->cancelled)
        return 0;
    t->active_at = uv_now(t->client->loop);
    if (!t->headers_done) {
        headers_complete(t);
        if (t->cancelled)
            return 0;
    }
    if (!t->cb.on_data || len == 0)
        return len;
    enum ms_http_data_action a = t->cb.on_data(t->ud, data, len);
    if (t->cancelled)
        return 0;
    if (a == MS_HTTP_CONTINUE)
        return len;
    if (a == MS_HTTP_PAUSE) {
        t->paused = 1;
        return CURL_WRITEFUNC_PAUSE;
    }
    t->stopped = 1;
    return 0;
}

/* ---- public API ---- */

struct ms_http *ms_http_new(uv_loop_t *loop)
{
    static int global_done;
    if (!global_done) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
            return NULL;
        global_done = 1;
    }
    struct ms_http *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->loop = loop;
    c->multi = curl_multi_init();
    if (!c->multi) {
        free(c);
        return NULL;
    }
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
    /* curl's default cache holds 4 idle connections per transfer in flight: after a burst of
     * requests it closed most of them, and the next burst opened them all again */
    curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS, 64L);
    uv_timer_init(loop, &c->timer);
    c->timer.data = c;
    uv_timer_init(loop, &c->idle);
    c->idle.data = c;
    c->open_handles = 2;
    return c;
}

void ms_http_free(struct ms_http *c)
{
    if (!c || c->freeing)
        return;
    c->freeing = 1;
    while (c->transfers) {
        struct ms_http_transfer *t = c->transfers;
        curl_multi_remove_handle(c->multi, t->easy);
        unlink_transfer(t);
        if (!t->cancelled && t->cb.on_done)
            t->cb.on_done(t->ud, MS_HTTP_ECANCELLED, "the HTTP client was closed");
        transfer_free(t);
    }
    curl_multi_cleanup(c->multi);
    c->multi = NULL;
    while (c->socks)
        sock_close(c->socks);
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, timer_closed);
    uv_timer_stop(&c->idle);
    uv_close((uv_handle_t *)&c->idle, timer_closed);
}

/* Sets one option of easy unless an earlier one failed; the first failure names its option in
 * *failed. rc, easy and failed are the caller's. */
#define SETOPT(opt, val)                                                                           \
    do {                                                                                           \
        if (rc == CURLE_OK) {                                                                      \
            rc = curl_easy_setopt(easy, opt, val);                                                 \
            if (rc != CURLE_OK)                                                                    \
                *failed = #opt;                                                                    \
        }                                                                                          \
    } while (0)

static int append_header(struct curl_slist **list, const char *line)
{
    struct curl_slist *l = curl_slist_append(*list, line);
    if (!l)
        return -1;
    *list = l;
    return 0;
}

static int has_header(const struct ms_http_request *req, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < req->nheaders; i++)
        if (strncasecmp(req->headers[i], name, n) == 0 && req->headers[i][n] == ':')
            return 1;
    return 0;
}

/* tls-server-name: the URL's host becomes the name to verify (and send as SNI), CONNECT_TO
 * sends the connection to the real host, and a Host header keeps the real one for HTTP. */
static int apply_server_name(struct ms_http_transfer *t, const struct ms_http_request *req,
                             char **url_out, const char **failed)
{
    int ret = -1;
    char *host = NULL, *port = NULL, *url = NULL, *raw_port = NULL;
    CURLU *u = curl_url();
    if (!u)
        return -1;
    if (curl_url_set(u, CURLUPART_URL, req->url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK) {
        *failed = "URL";
        goto out;
    }
    curl_url_get(u, CURLUPART_PORT, &raw_port, 0);
    if (curl_url_set(u, CURLUPART_HOST, req->server_name, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_URL, &url, 0) != CURLUE_OK) {
        *failed = "tls.server_name";
        goto out;
    }
    size_t need = strlen(req->server_name) + strlen(host) + 2 * strlen(port) + 8;
    char *line = malloc(need);
    if (!line)
        goto out;
    snprintf(line, need, "%s:%s:%s:%s", req->server_name, port, host, port);
    int bad = append_header(&t->connect_to, line);
    if (!bad && !has_header(req, "Host")) {
        snprintf(line, need, "Host: %s%s%s", host, raw_port ? ":" : "", raw_port ? raw_port : "");
        bad = append_header(&t->headers, line);
    }
    free(line);
    if (bad)
        goto out;
    *url_out = strdup(url);
    ret = *url_out ? 0 : -1;
out:
    curl_free(host);
    curl_free(port);
    curl_free(raw_port);
    curl_free(url);
    curl_url_cleanup(u);
    return ret;
}

/* The request's header list, with what we add to it, and tls.server_name's redirection (which
 * may rewrite the URL into *url). Returns 0 or a negative MS_HTTP_* code; *failed names the
 * part that was refused. */
static int set_headers(struct ms_http_transfer *t, const struct ms_http_request *req, char **url,
                       const char **failed)
{
    for (size_t i = 0; i < req->nheaders; i++)
        if (append_header(&t->headers, req->headers[i]))
            return MS_HTTP_ENOMEM;
    /* No "Expect: 100-continue" round trip; no form content type curl would invent. */
    if (!has_header(req, "Expect") && append_header(&t->headers, "Expect:"))
        return MS_HTTP_ENOMEM;
    if (req->body && !has_header(req, "Content-Type") &&
        append_header(&t->headers, "Content-Type:"))
        return MS_HTTP_ENOMEM;
    if (req->server_name && req->server_name[0] && apply_server_name(t, req, url, failed))
        return *failed ? MS_HTTP_EHTTP : MS_HTTP_ENOMEM;
    return 0;
}

/* What is sent and how: the URL, our callbacks, HTTP/2, the headers, the method and body. */
static CURLcode set_request_options(struct ms_http_transfer *t, const struct ms_http_request *req,
                                    const char *url, const char **failed)
{
    CURL *easy = t->easy;
    CURLcode rc = CURLE_OK;
    const char *method = req->method ? req->method : "GET";
    SETOPT(CURLOPT_URL, url);
    SETOPT(CURLOPT_PRIVATE, (void *)t);
    SETOPT(CURLOPT_ERRORBUFFER, t->errbuf);
    SETOPT(CURLOPT_NOSIGNAL, 1L);
    SETOPT(CURLOPT_HEADERFUNCTION, header_cb);
    SETOPT(CURLOPT_HEADERDATA, (void *)t);
    SETOPT(CURLOPT_WRITEFUNCTION, write_cb);
    SETOPT(CURLOPT_WRITEDATA, (void *)t);
    SETOPT(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    /* Over TLS, wait for a connection being set up rather than open another: if ALPN picks
     * HTTP/2, concurrent requests share it as streams. (Cleartext stays HTTP/1.1: no wait.) */
    if (strncasecmp(req->url, "https://", 8) == 0)
        SETOPT(CURLOPT_PIPEWAIT, 1L);
    SETOPT(CURLOPT_TCP_KEEPALIVE, 1L);
    SETOPT(CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L);
    SETOPT(CURLOPT_HTTPHEADER, t->headers);
    if (t->connect_to)
        SETOPT(CURLOPT_CONNECT_TO, t->connect_to);
    if (strcmp(method, "HEAD") == 0)
        SETOPT(CURLOPT_NOBODY, 1L);
    if (req->body) {
        SETOPT(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
        SETOPT(CURLOPT_COPYPOSTFIELDS, req->body);
    }
    if (req->body || (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0))
        SETOPT(CURLOPT_CUSTOMREQUEST, method);
    return rc;
}

/* The whole-transfer and connect timeouts are curl's; the idle timeout is ours (on_idle_tick). */
static CURLcode set_timeouts(struct ms_http_transfer *t, const struct ms_http_request *req,
                             const char **failed)
{
    CURL *easy = t->easy;
    CURLcode rc = CURLE_OK;
    if (req->timeout > 0)
        SETOPT(CURLOPT_TIMEOUT_MS, (long)ceil(req->timeout * 1000));
    t->timeout = req->timeout > 0 ? req->timeout : 0;
    t->connect_timeout = req->connect_timeout > 0 ? req->connect_timeout : 0;
    if (req->connect_timeout > 0)
        SETOPT(CURLOPT_CONNECTTIMEOUT_MS, (long)ceil(req->connect_timeout * 1000));
    if (req->idle_timeout > 0)
        t->idle_ms = (uint64_t)ceil(req->idle_timeout * 1000);
    return rc;
}

/* TLS: the CAs to trust, the client certificate and key, verification, and the proxy. */
static CURLcode set_tls_options(CURL *easy, const struct ms_http_request *req, const char **failed)
{
    CURLcode rc = CURLE_OK;
    if (req->ca) {
        struct curl_blob b = {(void *)req->ca, req->ca_len, CURL_BLOB_COPY};
        SETOPT(CURLOPT_CAINFO_BLOB, &b);
        /* Only these CAs, as kubeconfig's certificate-authority-data means: not the system's. */
        SETOPT(CURLOPT_CAINFO, (char *)NULL);
        SETOPT(CURLOPT_CAPATH, (char *)NULL);
    }
    if (req->cert) {
        struct curl_blob b = {(void *)req->cert, req->cert_len, CURL_BLOB_COPY};
        SETOPT(CURLOPT_SSLCERT_BLOB, &b);
        SETOPT(CURLOPT_SSLCERTTYPE, "PEM");
    }
    if (req->key) {
        struct curl_blob b = {(void *)req->key, req->key_len, CURL_BLOB_COPY};
        SETOPT(CURLOPT_SSLKEY_BLOB, &b);
        SETOPT(CURLOPT_SSLKEYTYPE, "PEM");
    }
    if (req->insecure) {
        SETOPT(CURLOPT_SSL_VERIFYPEER, 0L);
        SETOPT(CURLOPT_SSL_VERIFYHOST, 0L);
    }
    if (req->proxy)
        SETOPT(CURLOPT_PROXY, req->proxy);
    return rc;
}

/* Files a transfer the multi handle has taken: in the client's list, and under the idle
 * timer's watch when it has an idle timeout. */
static void link_transfer(struct ms_http *c, struct ms_http_transfer *t)
{
    t->next = c->transfers;
    if (c->transfers)
        c->transfers->prev = t;
    c->transfers = t;
    if (t->idle_ms) {
        t->active_at = uv_now(c->loop);
        if (!uv_is_active((uv_handle_t *)&c->idle))
            uv_timer_start(&c->idle, on_idle_tick, IDLE_TICK_MS, IDLE_TICK_MS);
    }
}

struct ms_http_transfer *ms_http_start(struct ms_http *c, const struct ms_http_request *req,
                                       const struct ms_http_callbacks *cb, void *ud, int *err,
                                       char *errbuf, size_t errlen)
{
    int code = MS_HTTP_ENOMEM;
    const char *failed = NULL;
    char *url = NULL;
    if (errbuf && errlen)
        errbuf[0] = '\0';
    if (c->freeing) {
        *err = MS_HTTP_ECANCELLED;
        return NULL;
    }
    struct ms_http_transfer *t = calloc(1, sizeof *t);
    if (!t)
        goto fail;
    t->client = c;
    t->cb = *cb;
    t->ud = ud;
    t->easy = curl_easy_init();
    if (!t->easy)
        goto fail;
    int hc = set_headers(t, req, &url, &failed);
    if (hc) {
        code = hc;
        goto fail;
    }
    CURLcode rc = set_request_options(t, req, url ? url : req->url, &failed);
    if (rc == CURLE_OK)
        rc = set_timeouts(t, req, &failed);
    if (rc == CURLE_OK)
        rc = set_tls_options(t->easy, req, &failed);
    /* The options above copied what they need (strings, blobs, body); the two lists are
     * borrowed by curl and freed with the transfer. */
    if (rc != CURLE_OK) {
        code = rc == CURLE_OUT_OF_MEMORY ? MS_HTTP_ENOMEM : MS_HTTP_EHTTP;
        if (errbuf && errlen)
            snprintf(errbuf, errlen, "%s: %s", failed ? failed : "option", curl_easy_strerror(rc));
        goto fail;
    }
    free(url);
    url = NULL;
    if (curl_multi_add_handle(c->multi, t->easy) != CURLM_OK) {
        code = MS_HTTP_EHTTP;
        goto fail;
    }
    link_transfer(c, t);
    return t;

fail:
    if (errbuf && errlen && !errbuf[0])
        snprintf(errbuf, errlen, "%s",
                 code == MS_HTTP_ENOMEM ? "out of memory"
                 : failed               ? failed
                                        : "cannot start the transfer");
    free(url);
    transfer_free(t);
    *err = code;
    return NULL;
}

void ms_http_cancel(struct ms_http_transfer *t)
{
    if (!t || t->cancelled)
        return;
    t->cancelled = 1;
    if (t->client->depth == 0)
        remove_transfer(t);
    else
        t->client->swept = 0; /* removed at the next sweep, outside curl */
}

void ms_http_resume(struct ms_http_transfer *t)
{
    if (!t || t->cancelled || !t->paused)
        return;
    struct ms_http *c = t->client;
    t->paused = 0;
    t->active_at = uv_now(c->loop);
    c->depth++;
    curl_easy_pause(t->easy, CURLPAUSE_CONT);
    c->depth--;
    sweep(c);
}

void ms_http_stats(const struct ms_http *c, struct ms_http_stats *out)
{
    out->transfers = 0;
    out->sockets = 0;
    if (!c)
        return;
    for (const struct ms_http_transfer *t = c->transfers; t; t = t->next)
        if (!t->cancelled)
            out->transfers++;
    out->sockets = c->nsockets;
}
