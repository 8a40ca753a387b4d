/* The HTTP core (src/core/http.c) driven by a raw libuv loop against ms-testserver. */
#include "core/http.h"
#include "test.h"

#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

struct server {
    pid_t pid;
    char url[128];
};

static struct server server, tls_server;
static char tmpdir[] = "/tmp/ms-test-http-XXXXXX";

/* Starts ms-testserver with extra arguments and reads its URL (first line). */
static int server_start(struct server *s, const char *extra)
{
    const char *bin = getenv("MOONSHIP_TESTSERVER");
    if (!bin) {
        fprintf(stderr, "MOONSHIP_TESTSERVER is not set\n");
        return -1;
    }
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "exec %s %s", bin, extra ? extra : "");
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    FILE *f = fdopen(fds[0], "r");
    if (!f || !fgets(s->url, sizeof s->url, f)) {
        fprintf(stderr, "ms-testserver did not start\n");
        return -1;
    }
    s->url[strcspn(s->url, "\n")] = '\0';
    fclose(f);
    s->pid = pid;
    return 0;
}

static void server_stop(struct server *s)
{
    if (s->pid > 0) {
        kill(s->pid, SIGTERM);
        waitpid(s->pid, NULL, 0);
        s->pid = 0;
    }
}

static double now(void)
{
    return (double)uv_hrtime() / 1e9;
}

struct result {
    int done, code, headers_seen;
    long status;
    char message[256];
    char *body;
    size_t len;
    char ctype[64];
    char retry_after[16];
    int chunks;
    double chunk_at[64];
    double done_at;
    int refused;
    int pause_every; /* on_data returns PAUSE on every chunk, resumed by an idle handle */
    int stop_after;  /* on_data returns STOP after this many chunks (0: never) */
    struct ms_http_transfer *t;
    int *counter; /* decremented when done */
};

static void on_headers(void *ud, long status, const struct ms_http_header *h, size_t n)
{
    struct result *r = ud;
    r->headers_seen++;
    r->status = status;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(h[i].name, "content-type") == 0)
            snprintf(r->ctype, sizeof r->ctype, "%s", h[i].value);
        if (strcmp(h[i].name, "retry-after") == 0)
            snprintf(r->retry_after, sizeof r->retry_after, "%s", h[i].value);
    }
}

static uv_idle_t resumer;
static struct result *paused;

static void on_resume(uv_idle_t *h)
{
    uv_idle_stop(h);
    struct result *r = paused;
    paused = NULL;
    ms_http_resume(r->t);
}

static enum ms_http_data_action on_data(void *ud, const char *data, size_t len)
{
    struct result *r = ud;
    if (r->pause_every && !r->refused) {
        /* Refuse every other delivery: the same data comes again after the resume. */
        r->refused = 1;
        paused = r;
        uv_idle_start(&resumer, on_resume);
        return MS_HTTP_PAUSE;
    }
    r->refused = 0;
    char *b = realloc(r->body, r->len + len + 1);
    if (!b)
        return MS_HTTP_STOP;
    memcpy(b + r->len, data, len);
    r->len += len;
    b[r->len] = '\0';
    r->body = b;
    if (r->chunks < 64)
        r->chunk_at[r->chunks] = now();
    r->chunks++;
    if (r->stop_after && r->chunks >= r->stop_after)
        return MS_HTTP_STOP;
    return MS_HTTP_CONTINUE;
}

static void on_done(void *ud, int code, const char *message)
{
    struct result *r = ud;
    r->done++;
    r->code = code;
    r->done_at = now();
    snprintf(r->message, sizeof r->message, "%s", message);
    r->t = NULL;
    if (r->counter)
        (*r->counter)--;
}

static const struct ms_http_callbacks cbs = {on_headers, on_data, on_done};

static uv_loop_t loop;

static struct ms_http_transfer *start(struct ms_http *c, struct result *r,
                                      struct ms_http_request *req)
{
    int err = 0;
    char errbuf[256];
    r->t = ms_http_start(c, req, &cbs, r, &err, errbuf, sizeof errbuf);
    if (!r->t)
        fprintf(stderr, "start failed: %s (%s)\n", errbuf, ms_http_result_token(err));
    return r->t;
}

static void get(struct ms_http *c, struct result *r, const char *path, double timeout)
{
    char url[256];
    snprintf(url, sizeof url, "%s%s", server.url, path);
    struct ms_http_request req = {.url = url, .timeout = timeout};
    CHECK(start(c, r, &req) != NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
}

static void finish(struct ms_http *c)
{
    ms_http_free(c);
    uv_run(&loop, UV_RUN_DEFAULT);
}

static void reset(struct result *r)
{
    free(r->body);
    memset(r, 0, sizeof *r);
}

static void test_tokens(void)
{
    CHECK_STR(ms_http_result_token(MS_HTTP_OK), "ok");
    CHECK_STR(ms_http_result_token(MS_HTTP_ETIMEOUT), "timeout");
    CHECK_STR(ms_http_result_token(MS_HTTP_ECONNECT), "connect");
    CHECK_STR(ms_http_result_token(MS_HTTP_ETLS), "tls");
    CHECK_STR(ms_http_result_token(MS_HTTP_ERESOLVE), "resolve");
    CHECK_STR(ms_http_result_token(MS_HTTP_ECLOSED), "closed");
    CHECK_STR(ms_http_result_token(MS_HTTP_ECANCELLED), "cancelled");
    CHECK_STR(ms_http_result_token(MS_HTTP_EHTTP), "http");
    CHECK_STR(ms_http_result_token(-100), "http");
}

static void test_echo(void)
{
    struct ms_http *c = ms_http_new(&loop);
    struct result r = {0};
    char url[256];
    snprintf(url, sizeof url, "%s/echo", server.url);
    const char *headers[] = {"X-Test: one", "Authorization: Bearer secret"};
    struct ms_http_request req = {.method = "PUT",
                                  .url = url,
                                  .headers = headers,
                                  .nheaders = 2,
                                  .body = "hello\0world",
                                  .body_len = 11,
                                  .timeout = 10};
    CHECK(start(c, &r, &req) != NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_INT(r.done, 1);
    CHECK_INT(r.code, MS_HTTP_OK);
    CHECK_STR(r.message, "");
    CHECK_INT(r.headers_seen, 1);
    CHECK_INT(r.status, 200);
    CHECK_STR(r.ctype, "text/plain");
    CHECK(r.body && strncmp(r.body, "PUT\n", 4) == 0);
    CHECK(r.body && strstr(r.body, "X-Test: one\n"));
    CHECK(r.body && !strstr(r.body, "Expect"));
    CHECK(r.len >= 11 && memcmp(r.body + r.len - 11, "hello\0world", 11) == 0);
    reset(&r);
    finish(c);
}

static void test_status(void)
{
    struct ms_http *c = ms_http_new(&loop);
    struct result r = {0};
    get(c, &r, "/status?code=503&retry_after=1", 10);
    CHECK_INT(r.code, MS_HTTP_OK);
    CHECK_INT(r.status, 503);
    CHECK_STR(r.retry_after, "1");
    CHECK_INT(r.len, 0);
    reset(&r);
    get(c, &r, "/nowhere", 10);
    CHECK_INT(r.status, 404);
    reset(&r);
    finish(c);
}

static void test_concurrent(void)
{
    enum { N = 100 };
    struct ms_http *c = ms_http_new(&loop);
    static struct result rs[N];
    char url[256];
    snprintf(url, sizeof url, "%s/delay?ms=300", server.url);
    struct ms_http_request req = {.url = url, .timeout = 30};
    int left = N;
    double t0 = now();
    for (int i = 0; i < N; i++) {
        rs[i].counter = &left;
        start(c, &rs[i], &req);
    }
    struct ms_http_stats st;
    ms_http_stats(c, &st);
    CHECK_INT(st.transfers, N);
    uv_run(&loop, UV_RUN_DEFAULT);
    double elapsed = now() - t0;
    printf("# %d concurrent requests to /delay?ms=300: %.3f s\n", N, elapsed);
    CHECK_INT(left, 0);
    int ok = 0;
    for (int i = 0; i < N; i++) {
        ok += rs[i].code == MS_HTTP_OK && rs[i].status == 200 && rs[i].len == 2;
        reset(&rs[i]);
    }
    CHECK_INT(ok, N);
    CHECK(elapsed < 10);
    ms_http_stats(c, &st);
    CHECK_INT(st.transfers, 0);
    finish(c);
}

static void test_stream(void)
{
    struct ms_http *c = ms_http_new(&loop);
    struct result r = {0};
    get(c, &r, "/chunks?n=5&interval_ms=100", 10);
    CHECK_INT(r.code, MS_HTTP_OK);
    CHECK_INT(r.chunks, 5);
    CHECK_STR(r.body, "chunk 0\nchunk 1\nchunk 2\nchunk 3\nchunk 4\n");
    for (int i = 0; i < r.chunks && i < 5; i++)
        CHECK(r.chunk_at[i] < r.done_at);
    for (int i = 1; i < r.chunks && i < 5; i++)
        CHECK(r.chunk_at[i] > r.chunk_at[i - 1]);
    reset(&r);
    /* Stop from on_data. */
    r.stop_after = 2;
    get(c, &r, "/chunks?n=100&interval_ms=20", 10);
    CHECK_INT(r.code, MS_HTTP_ESTOPPED);
    CHECK_STR(ms_http_result_token(r.code), "stopped");
    CHECK_INT(r.chunks, 2);
    reset(&r);
    finish(c);
}

static void test_pause(void)
{
    struct ms_http *c = ms_http_new(&loop);
    struct result r = {0};
    uv_idle_init(&loop, &resumer);
    r.pause_every = 1;
    get(c, &r, "/bytes?n=1000000", 10);
    CHECK_INT(r.code, MS_HTTP_OK);
    CHECK_INT(r.len, 1000000);
    CHECK(r.chunks > 1);
    size_t xs = 0;
    for (size_t i = 0; i < r.len; i++)
        xs += r.body[i] == 'x';
    CHECK_INT(xs, 1000000);
    reset(&r);
    uv_close((uv_handle_t *)&resumer, NULL);
    finish(c);
}

static void test_errors(void)
{
    struct ms_http *c = ms_http_new(&loop);
    struct result r = {0};
    get(c, &r, "/delay?ms=3000", 0.2);
    CHECK_INT(r.code, MS_HTTP_ETIMEOUT);
    CHECK(strstr(r.message, "imed out") != NULL);
    reset(&r);

    /* A stream that goes quiet after its first chunk. */
    char idle_url[256];
    snprintf(idle_url, sizeof idle_url, "%s/chunks?n=3&interval_ms=4000", server.url);
    struct ms_http_request idle = {.url = idle_url, .timeout = 10, .idle_timeout = 0.5};
    double t0 = now();
    CHECK(start(c, &r, &idle) != NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_INT(r.code, MS_HTTP_ETIMEOUT);
    CHECK_INT(r.chunks, 1);
    CHECK_STR(r.message, "no data received for 0.5 s");
    CHECK(now() - t0 < 3);
    reset(&r);

    get(c, &r, "/close", 10);
    CHECK_INT(r.code, MS_HTTP_ECLOSED);
    CHECK_STR(ms_http_result_token(r.code), "closed");
    reset(&r);

    /* A port nobody listens on: bind one, note it, close it. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    bind(fd, (struct sockaddr *)&a, sizeof a);
    getsockname(fd, (struct sockaddr *)&a, &alen);
    close(fd);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%u/", ntohs(a.sin_port));
    struct ms_http_request req = {.url = url, .timeout = 10};
    CHECK(start(c, &r, &req) != NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_INT(r.code, MS_HTTP_ECONNECT);
    CHECK_INT(r.headers_seen, 0);
    reset(&r);

    struct ms_http_request bad = {.url = "http://no-such-host.invalid/", .timeout = 10};
    CHECK(start(c, &r, &bad) != NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_INT(r.code, MS_HTTP_ERESOLVE);
    reset(&r);

    struct ms_http_request nourl = {.url = "nope://x/", .timeout = 10};
    CHECK(start(c, &r, &nourl) != NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_INT(r.code, MS_HTTP_EHTTP);
    reset(&r);
    finish(c);
}

static void cancel_cb(uv_timer_t *h)
{
    struct result *r = h->data;
    ms_http_cancel(r->t);
    r->t = NULL;
    uv_close((uv_handle_t *)h, NULL);
}

static void test_cancel(void)
{
    struct ms_http *c = ms_http_new(&loop);
    struct result r = {0};
    char url[256];
    snprintf(url, sizeof url, "%s/delay?ms=2000", server.url);
    struct ms_http_request req = {.url = url, .timeout = 30};
    CHECK(start(c, &r, &req) != NULL);
    uv_timer_t timer;
    uv_timer_init(&loop, &timer);
    timer.data = &r;
    uv_timer_start(&timer, cancel_cb, 100, 0);
    double t0 = now();
    uv_run(&loop, UV_RUN_DEFAULT); /* returns once nothing is left: no timer, no poll */
    CHECK(now() - t0 < 1.5);
    CHECK_INT(r.done, 0);
    struct ms_http_stats st;
    ms_http_stats(c, &st);
    CHECK_INT(st.transfers, 0);
    CHECK_INT(st.sockets, 0);
    reset(&r);
    /* Cancel right after start, before the loop ran. */
    CHECK(start(c, &r, &req) != NULL);
    ms_http_cancel(r.t);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_INT(r.done, 0);
    ms_http_cancel(NULL);
    /* Free with a transfer in flight: on_done says "cancelled". */
    CHECK(start(c, &r, &req) != NULL);
    uv_run(&loop, UV_RUN_NOWAIT);
    ms_http_free(c);
    CHECK_INT(r.done, 1);
    CHECK_INT(r.code, MS_HTTP_ECANCELLED);
    uv_run(&loop, UV_RUN_DEFAULT);
    reset(&r);
    ms_http_free(NULL);
}

static void test_reuse(void)
{
    struct ms_http *c = ms_http_new(&loop);
    struct result r = {0};
    long first = 0;
    for (int i = 0; i < 3; i++) {
        get(c, &r, "/count", 10);
        CHECK_INT(r.code, MS_HTTP_OK);
        long n = r.body ? strtol(r.body, NULL, 10) : -1;
        if (i == 0)
            first = n;
        else
            CHECK_INT(n, first);
        reset(&r);
    }
    finish(c);
}

/* ---- the kick: a transfer started among other work goes out before that work is over ---- */

/* A one-connection HTTP server on its own thread that notes each request's arrival. */
static struct {
    int listener, requests;
    pthread_mutex_t mu;
    pthread_cond_t cond;
} raw = {-1, 0, PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER};

static void *raw_serve(void *arg)
{
    (void)arg;
    int fd = accept(raw.listener, NULL, NULL);
    char buf[4096];
    size_t have = 0;
    ssize_t n;
    while (fd >= 0 && (n = recv(fd, buf + have, sizeof buf - 1 - have, 0)) > 0) {
        have += (size_t)n;
        buf[have] = 0;
        char *end;
        while ((end = strstr(buf, "\r\n\r\n")) != NULL) { /* GETs: no bodies */
            pthread_mutex_lock(&raw.mu);
            raw.requests++;
            pthread_cond_broadcast(&raw.cond);
            pthread_mutex_unlock(&raw.mu);
            static const char reply[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
            if (send(fd, reply, sizeof reply - 1, 0) < 0)
                break;
            have -= (size_t)(end + 4 - buf);
            memmove(buf, end + 4, have + 1);
        }
    }
    if (fd >= 0)
        close(fd);
    return NULL;
}

/* Waits up to 10 s for the server to have seen n requests. */
static int raw_saw(int n)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 10;
    pthread_mutex_lock(&raw.mu);
    while (raw.requests < n && pthread_cond_timedwait(&raw.cond, &raw.mu, &until) == 0)
        ;
    int seen = raw.requests >= n;
    pthread_mutex_unlock(&raw.mu);
    return seen;
}

static int kicks;
static void count_kick(void *ud)
{
    (void)ud;
    kicks++;
}

static void test_kick(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    raw.listener = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(raw.listener >= 0 && bind(raw.listener, (struct sockaddr *)&a, sizeof a) == 0 &&
          listen(raw.listener, 4) == 0 &&
          getsockname(raw.listener, (struct sockaddr *)&a, &alen) == 0);
    pthread_t th;
    CHECK(pthread_create(&th, NULL, raw_serve, NULL) == 0);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/x", ntohs(a.sin_port));
    struct ms_http *c = ms_http_new(&loop);
    ms_http_set_kick(c, count_kick, NULL);
    struct ms_http_request req = {.url = url, .timeout = 10};
    struct result r = {0};

    /* the first request opens the connection the usual way: on the loop */
    CHECK(start(c, &r, &req) != NULL);
    CHECK_INT(kicks, 1); /* curl wanted to act at once: asked, not done inside the start */
    ms_http_act(c);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_INT(r.code, MS_HTTP_OK);
    reset(&r);

    /* the second goes out on that connection as soon as the owner acts, with no loop turn */
    CHECK(start(c, &r, &req) != NULL);
    CHECK_INT(kicks, 2);
    CHECK_INT(raw.requests, 1);
    ms_http_act(c);
    CHECK(raw_saw(2));
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_INT(r.code, MS_HTTP_OK);
    CHECK(r.body && strcmp(r.body, "ok") == 0);
    reset(&r);
    finish(c);
    shutdown(raw.listener, SHUT_RDWR);
    close(raw.listener);
    pthread_join(th, NULL);
}

/* ---- TLS with in-memory PEM data ---- */

static char *slurp(const char *name, size_t *len)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = malloc(65536);
    *len = buf ? fread(buf, 1, 65535, f) : 0;
    if (buf)
        buf[*len] = '\0';
    fclose(f);
    return buf;
}

static int make_certs(void)
{
    if (!mkdtemp(tmpdir))
        return -1;
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "cd %s && for n in server other; do openssl req -x509 -newkey rsa:2048 -nodes "
             "-keyout $n.key -out $n.crt -days 1 -subj /CN=kube.test "
             "-addext subjectAltName=DNS:kube.test,IP:127.0.0.1 >/dev/null 2>&1 || exit 1; "
             "done",
             tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static void tls_get(struct ms_http *c, struct result *r, struct ms_http_request *req)
{
    char url[256];
    snprintf(url, sizeof url, "%s/echo", tls_server.url);
    req->url = url;
    req->timeout = 10;
    CHECK(start(c, r, req) != NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
}

static void test_tls(void)
{
    size_t ca_len, other_len, key_len;
    char *ca = slurp("server.crt", &ca_len);
    char *other = slurp("other.crt", &other_len);
    char *key = slurp("other.key", &key_len);
    CHECK(ca && other && key);
    struct ms_http *c = ms_http_new(&loop);
    struct result r = {0};

    struct ms_http_request ok = {.ca = ca, .ca_len = ca_len};
    tls_get(c, &r, &ok);
    CHECK_INT(r.code, MS_HTTP_OK);
    CHECK_INT(r.status, 200);
    reset(&r);

    struct ms_http_request wrong = {.ca = other, .ca_len = other_len};
    tls_get(c, &r, &wrong);
    CHECK_INT(r.code, MS_HTTP_ETLS);
    reset(&r);

    struct ms_http_request none = {0};
    tls_get(c, &r, &none);
    CHECK_INT(r.code, MS_HTTP_ETLS);
    reset(&r);

    struct ms_http_request insecure = {.insecure = 1};
    tls_get(c, &r, &insecure);
    CHECK_INT(r.code, MS_HTTP_OK);
    reset(&r);

    /* The name verified is tls.server_name's; the Host header stays the URL's. */
    struct ms_http_request named = {.ca = ca, .ca_len = ca_len, .server_name = "kube.test"};
    tls_get(c, &r, &named);
    CHECK_INT(r.code, MS_HTTP_OK);
    CHECK(r.body && strstr(r.body, "Host: 127.0.0.1:"));
    reset(&r);
    struct ms_http_request misnamed = {.ca = ca, .ca_len = ca_len, .server_name = "other.test"};
    tls_get(c, &r, &misnamed);
    CHECK_INT(r.code, MS_HTTP_ETLS);
    reset(&r);

    /* Client certificate and key as data (the server does not ask for one). */
    struct ms_http_request client = {.ca = ca,
                                     .ca_len = ca_len,
                                     .cert = other,
                                     .cert_len = other_len,
                                     .key = key,
                                     .key_len = key_len};
    tls_get(c, &r, &client);
    CHECK_INT(r.code, MS_HTTP_OK);
    reset(&r);
    finish(c);

    /* A new client: curl would reuse the connection made with the same certificate. */
    c = ms_http_new(&loop);
    struct ms_http_request badkey = {.ca = ca,
                                     .ca_len = ca_len,
                                     .cert = other,
                                     .cert_len = other_len,
                                     .key = "junk",
                                     .key_len = 4};
    tls_get(c, &r, &badkey);
    CHECK_INT(r.code, MS_HTTP_ETLS);
    reset(&r);
    finish(c);
    free(ca);
    free(other);
    free(key);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    uv_loop_init(&loop);
    if (server_start(&server, NULL) != 0)
        return 1;
    RUN(test_tokens);
    RUN(test_echo);
    RUN(test_status);
    RUN(test_concurrent);
    RUN(test_stream);
    RUN(test_pause);
    RUN(test_errors);
    RUN(test_cancel);
    RUN(test_reuse);
    RUN(test_kick);
    if (make_certs() == 0) {
        char args[600];
        snprintf(args, sizeof args, "--tls %s/server.crt %s/server.key", tmpdir, tmpdir);
        if (server_start(&tls_server, args) == 0)
            RUN(test_tls);
        else
            CHECK(!"TLS server did not start");
        server_stop(&tls_server);
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", tmpdir);
    } else {
        CHECK(!"openssl could not make certificates");
    }
    server_stop(&server);
    CHECK_INT(uv_loop_close(&loop), 0);
    return TEST_SUMMARY();
}
