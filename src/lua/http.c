/* require "moonship.core".http: http.request on the C client (core/http.c), suspending the calling
 * task until the response is complete; on_data streams the body into the task. One client (one
 * curl multi handle, one connection pool) per Lua state, on the scheduler's loop. */
#include <lauxlib.h>
#include <lua.h>
#include <stdlib.h>
#include <string.h>

#include "core/http.h"
#include "lua/modules.h"
#include "lua/options.h"
#include "lua/sched.h"

#define CLIENT_KEY "moonship.http.client"
#define OP_MT "moonship.HttpRequest"

/* Chunks queued beyond this are refused (the transfer is paused) until on_data catches up. */
#define QUEUE_HIGH (1u << 20)

/* Stack slots of http.request, fixed before the first yield. */
enum { SLOT_OPTS = 1, SLOT_ON_DATA = 2, SLOT_OP = 3 };

/* Continuation contexts of request_k. */
enum { CTX_WAKE = 0, CTX_CALL = 1 };

struct chunk {
    struct chunk *next;
    size_t len;
    char data[];
};

/* One request; a userdata in SLOT_OP of the calling task, so it lives while the task waits. */
struct op {
    struct ms_wait wait;
    struct ms_http_transfer *t; /* NULL once done, stopped or cancelled */
    int streaming, done, stopped, paused, result;
    long status;
    char *message; /* owns, once done */
    char *headers; /* owns: "name\0value\0" pairs */
    size_t headers_len, nheaders;
    char *body; /* owns: the buffered body (not streaming) */
    size_t body_len, body_cap;
    struct chunk *head, *tail; /* owns: chunks not yet given to on_data */
    size_t queued;
};

struct client {
    struct ms_http *http; /* owns */
    struct ms_defer act;  /* curl's work to do at once, done between task steps */
};

/* ---- the per-state client ---- */

static int client_gc(lua_State *L)
{
    struct client *c = lua_touserdata(L, 1);
    ms_defer_cancel(&c->act);
    ms_http_free(c->http);
    c->http = NULL;
    return 0;
}

static void act_now(void *ud)
{
    struct client *c = ud;
    ms_http_act(c->http);
}

static void kick(void *ud)
{
    struct client *c = ud;
    ms_defer_queue(&c->act);
}

/* The client of this Lua state, made on first use. It is made after the scheduler's loop, so at
 * lua_close its __gc runs first and the scheduler's drains the handles it closes. */
static struct ms_http *client_get(lua_State *L)
{
    if (lua_getfield(L, LUA_REGISTRYINDEX, CLIENT_KEY) == LUA_TUSERDATA) {
        struct client *c = lua_touserdata(L, -1);
        lua_pop(L, 1);
        return c->http;
    }
    lua_pop(L, 1);
    uv_loop_t *loop = ms_sched_loop(L);
    struct client *c = lua_newuserdatauv(L, sizeof *c, 0);
    c->http = NULL;
    lua_newtable(L);
    lua_pushcfunction(L, client_gc);
    lua_setfield(L, -2, "__gc");
    lua_setmetatable(L, -2);
    ms_defer_init(L, &c->act, act_now, c);
    c->http = ms_http_new(loop);
    if (!c->http)
        luaL_error(L, "http: cannot set up libcurl");
    ms_http_set_kick(c->http, kick, c);
    lua_setfield(L, LUA_REGISTRYINDEX, CLIENT_KEY);
    return c->http;
}

/* ---- the operation ---- */

static void free_queue(struct op *op)
{
    while (op->head) {
        struct chunk *ch = op->head;
        op->head = ch->next;
        free(ch);
    }
    op->tail = NULL;
    op->queued = 0;
}

/* Stops the transfer and frees everything the op owns. Idempotent. */
static void op_cleanup(struct op *op)
{
    ms_http_cancel(op->t);
    op->t = NULL;
    free_queue(op);
    free(op->message);
    free(op->headers);
    free(op->body);
    op->message = op->headers = op->body = NULL;
    op->headers_len = op->nheaders = op->body_len = op->body_cap = 0;
}

static int op_gc(lua_State *L)
{
    op_cleanup(luaL_checkudata(L, 1, OP_MT));
    return 0;
}

/* The scheduler cancels the task: stop the transfer, nothing wakes it afterwards. */
static void op_cancel(struct ms_wait *w)
{
    struct op *op = (struct op *)w;
    ms_http_cancel(op->t);
    op->t = NULL;
    free_queue(op);
}

static void wake(struct op *op)
{
    if (ms_wait_pending(&op->wait))
        ms_sched_wake(&op->wait, 0);
}

static void on_headers(void *ud, long status, const struct ms_http_header *h, size_t n)
{
    struct op *op = ud;
    /* An error's body is an answer (a Status), not the stream asked for: it is kept whole for
     * the caller, not given to on_data. Headers come before any chunk of their body. */
    if (status >= 300 && op->head == NULL)
        op->streaming = 0;
    size_t len = 0;
    for (size_t i = 0; i < n; i++)
        len += strlen(h[i].name) + strlen(h[i].value) + 2;
    op->status = status;
    char *buf = malloc(len ? len : 1);
    if (!buf)
        return; /* headers lost, status kept: reported as they are */
    char *p = buf;
    for (size_t i = 0; i < n; i++) {
        size_t a = strlen(h[i].name) + 1, b = strlen(h[i].value) + 1;
        memcpy(p, h[i].name, a);
        memcpy(p + a, h[i].value, b);
        p += a + b;
    }
    free(op->headers);
    op->headers = buf;
    op->headers_len = len;
    op->nheaders = n;
}

static enum ms_http_data_action on_data(void *ud, const char *data, size_t len)
{
    struct op *op = ud;
    if (!op->streaming) {
        if (op->body_len + len > op->body_cap) {
            size_t cap = op->body_cap ? op->body_cap : 16384;
            while (cap < op->body_len + len)
                cap *= 2;
            char *b = realloc(op->body, cap);
            if (!b)
                return MS_HTTP_STOP;
            op->body = b;
            op->body_cap = cap;
        }
        memcpy(op->body + op->body_len, data, len);
        op->body_len += len;
        return MS_HTTP_CONTINUE;
    }
    if (op->queued >= QUEUE_HIGH) {
        op->paused = 1; /* curl keeps the chunk and gives it again after ms_http_resume */
        return MS_HTTP_PAUSE;
    }
    struct chunk *ch = malloc(sizeof *ch + len);
    if (!ch)
        return MS_HTTP_STOP;
    ch->next = NULL;
    ch->len = len;
    memcpy(ch->data, data, len);
    if (op->tail)
        op->tail->next = ch;
    else
        op->head = ch;
    op->tail = ch;
    op->queued += len;
    wake(op);
    return MS_HTTP_CONTINUE;
}

static void on_done(void *ud, int result, const char *message)
{
    struct op *op = ud;
    op->t = NULL;
    op->done = 1;
    op->result = result;
    op->message = strdup(message);
    if (result == MS_HTTP_ECANCELLED)
        return; /* the client is closing with the state: no task is resumed any more */
    wake(op);
}

/* ---- results ---- */

static void push_headers(lua_State *L, const struct op *op)
{
    lua_createtable(L, 0, (int)op->nheaders);
    const char *p = op->headers;
    for (size_t i = 0; p && i < op->nheaders; i++) {
        const char *name = p, *value = p + strlen(p) + 1;
        p = value + strlen(value) + 1;
        if (lua_getfield(L, -1, name) == LUA_TSTRING) /* repeated: joined as HTTP allows */
            lua_pushfstring(L, "%s, %s", lua_tostring(L, -1), value);
        else
            lua_pushstring(L, value);
        lua_setfield(L, -3, name);
        lua_pop(L, 1);
    }
}

static int push_result(lua_State *L, struct op *op)
{
    if (op->done && op->result != MS_HTTP_OK) {
        lua_getfield(L, SLOT_OPTS, "method");
        const char *method = lua_isstring(L, -1) ? lua_tostring(L, -1) : "GET";
        lua_getfield(L, SLOT_OPTS, "url");
        int n = ms_fail(L, ms_http_result_token(op->result), "%s %s: %s", method,
                        lua_tostring(L, -1), op->message ? op->message : "out of memory");
        op_cleanup(op);
        return n;
    }
    lua_createtable(L, 0, 3);
    lua_pushinteger(L, op->status);
    lua_setfield(L, -2, "status");
    push_headers(L, op);
    lua_setfield(L, -2, "headers");
    if (!op->streaming) {
        lua_pushlstring(L, op->body ? op->body : "", op->body_len);
        lua_setfield(L, -2, "body");
    }
    op_cleanup(op);
    return 1;
}

/* on_data raised (or its task was cancelled inside it): stop the transfer, raise again. */
static int data_failed(lua_State *L, struct op *op)
{
    op_cleanup(op);
    return lua_error(L);
}

static int request_k(lua_State *L, int status, lua_KContext ctx);

/* Gives queued chunks to on_data one by one, then waits for more or for the end. */
static int pump(lua_State *L, struct op *op)
{
    for (;;) {
        lua_settop(L, SLOT_OP);
        if (op->head && !op->stopped) {
            struct chunk *ch = op->head;
            lua_pushvalue(L, SLOT_ON_DATA);
            lua_pushlstring(L, ch->data, ch->len);
            op->head = ch->next;
            if (!op->head)
                op->tail = NULL;
            op->queued -= ch->len;
            free(ch);
            if (op->paused && op->queued < QUEUE_HIGH / 2 && op->t) {
                op->paused = 0;
                ms_http_resume(op->t); /* may queue more chunks right away */
            }
            int st = lua_pcallk(L, 1, 1, 0, CTX_CALL, request_k);
            if (st != LUA_OK)
                return data_failed(L, op);
            if (lua_isboolean(L, -1) && !lua_toboolean(L, -1)) {
                op->stopped = 1;
                op_cancel(&op->wait);
            }
            continue;
        }
        if (op->done || op->stopped)
            return push_result(L, op);
        return ms_sched_suspend(L, &op->wait, request_k, CTX_WAKE);
    }
}

static int request_k(lua_State *L, int status, lua_KContext ctx)
{
    struct op *op = luaL_checkudata(L, SLOT_OP, OP_MT);
    if (ctx == CTX_CALL) {
        if (status != LUA_OK && status != LUA_YIELD)
            return data_failed(L, op);
        if (lua_isboolean(L, -1) && !lua_toboolean(L, -1)) {
            op->stopped = 1;
            op_cancel(&op->wait);
        }
    }
    return pump(L, op);
}

/* ---- options ---- */

static const char *const request_keys[] = {
    "method",       "url",     "headers", "body",  "timeout", "connect_timeout",
    "idle_timeout", "on_data", "tls",     "proxy", NULL,
};
static const char *const tls_keys[] = {"ca", "cert", "key", "insecure", "server_name", NULL};

/* Header lines "Name: value" as strings pushed on the stack; req->headers points into a
 * userdata array also on the stack. Names and values are checked so no line can be injected. */
static void build_headers(lua_State *L, struct ms_http_request *req)
{
    if (!ms_opt_field(L, SLOT_OPTS, "headers", LUA_TTABLE, "http.request")) {
        lua_pop(L, 1);
        return;
    }
    int tbl = lua_gettop(L);
    size_t n = 0;
    lua_pushnil(L);
    while (lua_next(L, tbl)) {
        lua_pop(L, 1);
        n++;
    }
    const char **lines = lua_newuserdatauv(L, (n ? n : 1) * sizeof *lines, 0);
    luaL_checkstack(L, (int)n + 4, "too many headers");
    size_t i = 0;
    lua_pushnil(L);
    while (lua_next(L, tbl)) {
        if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING)
            luaL_error(L, "http.request: headers must map names to strings");
        const char *name = lua_tostring(L, -2), *value = lua_tostring(L, -1);
        if (!name[0] || strpbrk(name, ": \t\r\n") || strpbrk(value, "\r\n") ||
            strlen(value) != lua_rawlen(L, -1))
            luaL_error(L, "http.request: invalid header '%s'", name);
        lua_pushfstring(L, "%s: %s", name, value);
        lua_insert(L, tbl + 1); /* keep the line alive below the iteration state */
        lines[i++] = lua_tostring(L, tbl + 1);
        lua_pop(L, 1); /* the value: the key stays for lua_next */
    }
    req->headers = lines;
    req->nheaders = i;
}

/* http.request{method=, url=, headers=, body=, timeout=, connect_timeout=, idle_timeout=,
 *              on_data=, tls={ca=, cert=, key=, insecure=, server_name=}, proxy=}
 *   -> {status=, headers={name -> value}, body=} | nil, message, code
 * Yields until the response is complete. Raises outside a task, on a bad option, and with
 * "cancelled" when the task is cancelled (the transfer is stopped). With on_data, the body of a
 * 1xx/2xx answer is not kept: each chunk is passed to on_data(chunk) inside this task (it may
 * yield); returning false stops the transfer, and the result then has status and headers. The
 * body of an answer of status 300 or more is kept in body as without on_data. */
static int l_http_request(lua_State *L)
{
    const char *what = "http.request";
    ms_sched_current(L, what);
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    ms_check_options(L, SLOT_OPTS, what, request_keys);
    struct ms_http_request req = {0};
    req.url = ms_opt_string(L, SLOT_OPTS, "url", NULL, what);
    if (!req.url)
        return luaL_error(L, "%s: option 'url' is required", what);
    req.method = ms_opt_string(L, SLOT_OPTS, "method", NULL, what);
    req.body = ms_opt_string(L, SLOT_OPTS, "body", &req.body_len, what);
    req.timeout = ms_opt_seconds(L, SLOT_OPTS, "timeout", 0, what);
    req.connect_timeout = ms_opt_seconds(L, SLOT_OPTS, "connect_timeout", 0, what);
    req.idle_timeout = ms_opt_seconds(L, SLOT_OPTS, "idle_timeout", 0, what);
    req.proxy = ms_opt_string(L, SLOT_OPTS, "proxy", NULL, what);
    if (req.method && (!req.method[0] || strpbrk(req.method, " \t\r\n")))
        return luaL_error(L, "%s: invalid method '%s'", what, req.method);

    ms_opt_field(L, SLOT_OPTS, "on_data", LUA_TFUNCTION, what); /* SLOT_ON_DATA, maybe nil */
    struct op *op = lua_newuserdatauv(L, sizeof *op, 0);        /* SLOT_OP */
    memset(op, 0, sizeof *op);
    op->wait.cancel = op_cancel;
    op->streaming = !lua_isnil(L, SLOT_ON_DATA);
    luaL_setmetatable(L, OP_MT);

    if (ms_opt_field(L, SLOT_OPTS, "tls", LUA_TTABLE, what)) {
        int tls = lua_gettop(L);
        ms_check_options(L, tls, "http.request: tls", tls_keys);
        req.ca = ms_opt_string(L, tls, "ca", &req.ca_len, "http.request: tls");
        req.cert = ms_opt_string(L, tls, "cert", &req.cert_len, "http.request: tls");
        req.key = ms_opt_string(L, tls, "key", &req.key_len, "http.request: tls");
        req.server_name = ms_opt_string(L, tls, "server_name", NULL, "http.request: tls");
        if (ms_opt_field(L, tls, "insecure", LUA_TBOOLEAN, "http.request: tls"))
            req.insecure = lua_toboolean(L, -1);
        lua_pop(L, 1);
    }
    build_headers(L, &req);

    struct ms_http *http = client_get(L);
    static const struct ms_http_callbacks cbs = {on_headers, on_data, on_done};
    char errbuf[256];
    int err = 0;
    /* The request's strings are borrowed from the stack for this call only: curl copies them. */
    op->t = ms_http_start(http, &req, &cbs, op, &err, errbuf, sizeof errbuf);
    lua_settop(L, SLOT_OP);
    if (!op->t)
        return ms_fail(L, ms_http_result_token(err), "%s %s: %s", req.method ? req.method : "GET",
                       req.url, errbuf);
    return ms_sched_suspend(L, &op->wait, request_k, CTX_WAKE);
}

/* http.stats() -> {transfers=, sockets=}: transfers in flight and sockets watched. */
static int l_http_stats(lua_State *L)
{
    struct ms_http_stats st = {0};
    if (lua_getfield(L, LUA_REGISTRYINDEX, CLIENT_KEY) == LUA_TUSERDATA)
        ms_http_stats(((struct client *)lua_touserdata(L, -1))->http, &st);
    lua_createtable(L, 0, 2);
    lua_pushinteger(L, (lua_Integer)st.transfers);
    lua_setfield(L, -2, "transfers");
    lua_pushinteger(L, (lua_Integer)st.sockets);
    lua_setfield(L, -2, "sockets");
    return 1;
}

static const luaL_Reg funcs[] = {
    {"request", l_http_request},
    {"stats", l_http_stats},
    {NULL, NULL},
};

static const luaL_Reg op_meta[] = {
    {"__gc", op_gc},
    {NULL, NULL},
};

int luaopen_moonship_core_http(lua_State *L)
{
    if (luaL_newmetatable(L, OP_MT))
        luaL_setfuncs(L, op_meta, 0);
    lua_pop(L, 1);
    luaL_newlib(L, funcs);
    return 1;
}
