/* ms-testserver: a loopback HTTP(S) server with canned behaviours for the HTTP client's tests.
 * Binds 127.0.0.1 on a free port, prints its URL on the first line of stdout and its pid on the
 * second, and serves until SIGTERM/SIGINT (or --lifetime seconds, 300 by default).
 *
 *   /delay?ms=N                 "ok" after N ms (a thread per connection: others go on)
 *   /chunks?n=N&interval_ms=M   a chunked stream of N lines "chunk <i>\n", one every M ms
 *   /status?code=C&retry_after=S&type=T&body=B  a response with that status (and Retry-After,
 *                               Content-Type T, body B; empty by default)
 *   /flaky?key=K&fail=N&code=C  the first N requests with key K (default 1) answered as /status
 *                               with code C (default 503, and its retry_after, type, body); then "ok"
 *   /echo                       method, request headers and body back as text
 *   /close                      a few bytes of a longer response, then the connection dropped
 *   /count                      the number of TCP connections accepted so far
 *   /bytes?n=N                  N bytes of 'x', as fast as the client reads
 *   /seen?key=K                 when each request that carried ?key=K arrived: one line each,
 *                               milliseconds since the server started (its monotonic clock),
 *                               so that a test reads what the server saw, not its own clock
 * Requests in absolute form ("GET http://host/path") are served as /path: a proxy to itself.
 *
 * Usage: ms-testserver [--tls CERT KEY] [--lifetime SECONDS] */
#include <microhttpd.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <time.h>
#include <unistd.h>

static atomic_long connections;

/* The requests that carried ?key=K (/seen), in the order they arrived. */
#define SEEN_MAX 4096
static struct {
    char key[32];
    long ms;
} seen[SEEN_MAX];
static size_t seen_len;
static pthread_mutex_t seen_mu = PTHREAD_MUTEX_INITIALIZER;
static struct timespec started;

static long elapsed_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (ts.tv_sec - started.tv_sec) * 1000L + (ts.tv_nsec - started.tv_nsec) / 1000000L;
}

static void remember(const char *key)
{
    pthread_mutex_lock(&seen_mu);
    if (seen_len < SEEN_MAX) {
        snprintf(seen[seen_len].key, sizeof seen[seen_len].key, "%s", key);
        seen[seen_len].ms = elapsed_ms();
        seen_len++;
    }
    pthread_mutex_unlock(&seen_mu);
}

/* How many requests carried key so far. */
static long seen_count(const char *key)
{
    long n = 0;
    pthread_mutex_lock(&seen_mu);
    for (size_t i = 0; i < seen_len; i++)
        n += strcmp(seen[i].key, key) == 0;
    pthread_mutex_unlock(&seen_mu);
    return n;
}

/* The arrival times of key's requests, one line each ("" when none). */
static char *seen_text(const char *key, size_t *len)
{
    pthread_mutex_lock(&seen_mu);
    char *text = malloc(seen_len * 24 + 1);
    size_t n = 0;
    if (text) {
        for (size_t i = 0; i < seen_len; i++)
            if (strcmp(seen[i].key, key) == 0)
                n += (size_t)snprintf(text + n, 24, "%ld\n", seen[i].ms);
        text[n] = '\0';
    }
    pthread_mutex_unlock(&seen_mu);
    *len = n;
    return text;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

static long arg_long(struct MHD_Connection *conn, const char *name, long dflt)
{
    const char *v = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, name);
    return v ? strtol(v, NULL, 10) : dflt;
}

static enum MHD_Result send_text(struct MHD_Connection *conn, unsigned code, const char *text,
                                 size_t len)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, (void *)text, MHD_RESPMEM_MUST_COPY);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", "text/plain");
    enum MHD_Result ret = MHD_queue_response(conn, code, r);
    MHD_destroy_response(r);
    return ret;
}

struct stream {
    long n, i, interval_ms, size;
};

static ssize_t chunks_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct stream *s = cls;
    if (s->i >= s->n)
        return MHD_CONTENT_READER_END_OF_STREAM;
    if (s->i > 0 && s->interval_ms > 0)
        sleep_ms(s->interval_ms);
    int len = snprintf(buf, max, "chunk %ld\n", s->i);
    s->i++;
    return len;
}

static ssize_t close_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    if (pos > 0)
        return MHD_CONTENT_READER_END_WITH_ERROR;
    memcpy(buf, "partial", 7);
    return 7;
}

static ssize_t bytes_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct stream *s = cls;
    if ((long)pos >= s->size)
        return MHD_CONTENT_READER_END_OF_STREAM;
    size_t n = (size_t)(s->size - (long)pos);
    if (n > max)
        n = max;
    memset(buf, 'x', n);
    return (ssize_t)n;
}

static enum MHD_Result stream_response(struct MHD_Connection *conn, uint64_t size,
                                       MHD_ContentReaderCallback reader, struct stream *s)
{
    struct MHD_Response *r = MHD_create_response_from_callback(size, 4096, reader, s, free);
    if (!r) {
        free(s);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", "text/plain");
    enum MHD_Result ret = MHD_queue_response(conn, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return ret;
}

struct echo {
    char *buf;
    size_t len, cap;
};

static int echo_append(struct echo *e, const char *data, size_t len)
{
    if (e->len + len + 1 > e->cap) {
        size_t cap = (e->len + len + 1) * 2;
        char *b = realloc(e->buf, cap);
        if (!b)
            return -1;
        e->buf = b;
        e->cap = cap;
    }
    memcpy(e->buf + e->len, data, len);
    e->len += len;
    return 0;
}

static enum MHD_Result echo_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value)
{
    struct echo *e = cls;
    echo_append(e, key, strlen(key));
    echo_append(e, ": ", 2);
    echo_append(e, value, strlen(value));
    echo_append(e, "\n", 1);
    return MHD_YES;
}

/* The answer of /status: that code, with the request's retry_after, type and body. */
static enum MHD_Result status_response(struct MHD_Connection *conn, long code)
{
    const char *retry = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "retry_after");
    const char *text = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "body");
    const char *type = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "type");
    struct MHD_Response *r = MHD_create_response_from_buffer(
        text ? strlen(text) : 0, (void *)(text ? text : ""), MHD_RESPMEM_MUST_COPY);
    if (!r)
        return MHD_NO;
    if (retry)
        MHD_add_response_header(r, "Retry-After", retry);
    if (type)
        MHD_add_response_header(r, "Content-Type", type);
    enum MHD_Result ret = MHD_queue_response(conn, (unsigned)code, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *conn, const char *url,
                               const char *method, const char *version, const char *upload,
                               size_t *upload_size, void **req_cls)
{
    struct echo *body = *req_cls;
    if (!body) {
        /* First call: only the headers are known. Keep a buffer for the request body. */
        body = calloc(1, sizeof *body);
        if (!body)
            return MHD_NO;
        *req_cls = body;
        const char *key = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "key");
        if (key && strcmp(url, "/seen") != 0)
            remember(key);
        return MHD_YES;
    }
    if (*upload_size) {
        if (echo_append(body, upload, *upload_size))
            return MHD_NO;
        *upload_size = 0;
        return MHD_YES;
    }
    /* As a proxy to itself: "GET http://any.host/echo" is served as "/echo". */
    if (strncmp(url, "http://", 7) == 0) {
        const char *path = strchr(url + 7, '/');
        url = path ? path : "/";
    }
    if (strcmp(url, "/delay") == 0) {
        sleep_ms(arg_long(conn, "ms", 0));
        return send_text(conn, MHD_HTTP_OK, "ok", 2);
    }
    if (strcmp(url, "/chunks") == 0) {
        struct stream *s = calloc(1, sizeof *s);
        if (!s)
            return MHD_NO;
        s->n = arg_long(conn, "n", 5);
        s->interval_ms = arg_long(conn, "interval_ms", 100);
        return stream_response(conn, MHD_SIZE_UNKNOWN, chunks_reader, s);
    }
    if (strcmp(url, "/bytes") == 0) {
        struct stream *s = calloc(1, sizeof *s);
        if (!s)
            return MHD_NO;
        s->size = arg_long(conn, "n", 0);
        return stream_response(conn, (uint64_t)s->size, bytes_reader, s);
    }
    if (strcmp(url, "/close") == 0) {
        struct MHD_Response *r = MHD_create_response_from_callback(1000, 64, close_reader, NULL,
                                                                   NULL);
        if (!r)
            return MHD_NO;
        enum MHD_Result ret = MHD_queue_response(conn, MHD_HTTP_OK, r);
        MHD_destroy_response(r);
        return ret;
    }
    if (strcmp(url, "/status") == 0)
        return status_response(conn, arg_long(conn, "code", 200));
    if (strcmp(url, "/flaky") == 0) {
        const char *key = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "key");
        if (key && seen_count(key) <= arg_long(conn, "fail", 1))
            return status_response(conn, arg_long(conn, "code", 503));
        return send_text(conn, MHD_HTTP_OK, "ok", 2);
    }
    if (strcmp(url, "/count") == 0) {
        char text[32];
        int n = snprintf(text, sizeof text, "%ld", atomic_load(&connections));
        return send_text(conn, MHD_HTTP_OK, text, (size_t)n);
    }
    if (strcmp(url, "/seen") == 0) {
        const char *key = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "key");
        size_t len;
        char *text = seen_text(key ? key : "", &len);
        if (!text)
            return MHD_NO;
        enum MHD_Result ret = send_text(conn, MHD_HTTP_OK, text, len);
        free(text);
        return ret;
    }
    if (strcmp(url, "/echo") == 0) {
        struct echo e = {0};
        echo_append(&e, method, strlen(method));
        echo_append(&e, "\n", 1);
        MHD_get_connection_values(conn, MHD_HEADER_KIND, echo_header, &e);
        echo_append(&e, "\n", 1);
        if (body->len)
            echo_append(&e, body->buf, body->len);
        enum MHD_Result ret = send_text(conn, MHD_HTTP_OK, e.buf ? e.buf : "", e.len);
        free(e.buf);
        return ret;
    }
    return send_text(conn, MHD_HTTP_NOT_FOUND, "not found\n", 10);
}

static void completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                      enum MHD_RequestTerminationCode toe)
{
    struct echo *body = *req_cls;
    if (body) {
        free(body->buf);
        free(body);
        *req_cls = NULL;
    }
}

static void notify_connection(void *cls, struct MHD_Connection *conn, void **socket_ctx,
                              enum MHD_ConnectionNotificationCode toe)
{
    if (toe == MHD_CONNECTION_NOTIFY_STARTED)
        atomic_fetch_add(&connections, 1);
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = NULL;
    size_t len = 0, cap = 0, n;
    char chunk[4096];
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (len + n + 1 > cap) {
            cap = (len + n + 1) * 2;
            char *b = realloc(buf, cap);
            if (!b) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = b;
        }
        memcpy(buf + len, chunk, n);
        len += n;
    }
    fclose(f);
    if (buf)
        buf[len] = '\0';
    return buf;
}

int main(int argc, char **argv)
{
    const char *cert_path = NULL, *key_path = NULL;
    unsigned lifetime = 300;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--tls") == 0 && i + 2 < argc) {
            cert_path = argv[++i];
            key_path = argv[++i];
        } else if (strcmp(argv[i], "--lifetime") == 0 && i + 1 < argc) {
            lifetime = (unsigned)strtoul(argv[++i], NULL, 10);
        } else {
            fprintf(stderr, "usage: %s [--tls CERT KEY] [--lifetime SECONDS]\n", argv[0]);
            return 2;
        }
    }
    /* Block the signals before MHD starts its threads, so only sigwait below sees them. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGALRM);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    clock_gettime(CLOCK_MONOTONIC, &started);

    struct sockaddr_in addr = {0};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                     MHD_USE_POLL | MHD_USE_ERROR_LOG;
    char *cert = NULL, *key = NULL;
    if (cert_path) {
        cert = read_file(cert_path);
        key = read_file(key_path);
        if (!cert || !key) {
            fprintf(stderr, "ms-testserver: cannot read %s or %s\n", cert_path, key_path);
            return 1;
        }
        flags |= MHD_USE_TLS;
    }
    struct MHD_Daemon *d;
    if (cert)
        d = MHD_start_daemon(flags, 0, NULL, NULL, handler, NULL, MHD_OPTION_SOCK_ADDR, &addr,
                             MHD_OPTION_NOTIFY_COMPLETED, completed, NULL,
                             MHD_OPTION_NOTIFY_CONNECTION, notify_connection, NULL,
                             MHD_OPTION_HTTPS_MEM_CERT, cert, MHD_OPTION_HTTPS_MEM_KEY, key,
                             MHD_OPTION_END);
    else
        d = MHD_start_daemon(flags, 0, NULL, NULL, handler, NULL, MHD_OPTION_SOCK_ADDR, &addr,
                             MHD_OPTION_NOTIFY_COMPLETED, completed, NULL,
                             MHD_OPTION_NOTIFY_CONNECTION, notify_connection, NULL,
                             MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "ms-testserver: cannot start the daemon\n");
        return 1;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_LISTEN_FD);
    struct sockaddr_in bound;
    socklen_t blen = sizeof bound;
    if (!info || getsockname(info->listen_fd, (struct sockaddr *)&bound, &blen) != 0) {
        fprintf(stderr, "ms-testserver: cannot find the bound port\n");
        return 1;
    }
    printf("%s://127.0.0.1:%u\n%ld\n", cert ? "https" : "http", ntohs(bound.sin_port),
           (long)getpid());
    fflush(stdout);

    alarm(lifetime);
    int sig;
    do {
        sigwait(&set, &sig);
    } while (sig == SIGPIPE);
    /* Handlers may be asleep in /delay: do not wait for them. */
    _exit(0);
}
