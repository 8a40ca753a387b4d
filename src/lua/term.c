/* require("moonship.core").term: what the live progress view needs from the terminal: whether a
 * descriptor is one, its size, whole-frame writes, and resize notices on the scheduler's loop.
 *   term.isatty(fd) -> boolean                                       never raises on a bad fd
 *   term.size(fd) -> columns, rows | nil, message, code       (code "io": "...: ENOTTY: ...")
 *   term.write(fd, data) -> true | nil, message, code         never yields
 *   term.resize_watcher() -> watcher                           SIGWINCH, coalesced
 *   watcher:wait() -> n | nil, "closed", "closed"              yields; raises "cancelled"
 *   watcher:close()
 * The watcher's signal handle does not keep the loop alive: a task waiting on it alone is a
 * deadlock, as with any wait that nothing else can end. */
#include <errno.h>
#include <lauxlib.h>
#include <limits.h>
#include <lua.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "lua/modules.h"
#include "lua/sched.h"

#define WATCHER_MT "moonship.ResizeWatcher"

/* libuv owns the signal handle until its close callback runs, so the state is malloc'd and the
 * userdata boxes it by pointer. */
struct resize {
    uv_signal_t sig;
    struct ms_wait wait;
    lua_Integer count; /* signals since the last wait returned */
};

struct box {
    struct resize *r; /* owns until close; NULL once closed */
};

static int check_fd(lua_State *L, int idx)
{
    lua_Integer fd = luaL_checkinteger(L, idx);
    luaL_argcheck(L, fd >= 0 && fd <= INT_MAX, idx, "not a file descriptor");
    return (int)fd;
}

/* nil, "what: ENAME: text", "io": the OS error's name stays in the message. */
static int push_errno(lua_State *L, const char *what, int err)
{
    int rc = uv_translate_sys_error(err);
    return ms_fail(L, "io", "%s: %s: %s", what, uv_err_name(rc), uv_strerror(rc));
}

/* term.isatty(fd) -> boolean. Raises only on a non-integer or negative fd. */
static int l_term_isatty(lua_State *L)
{
    lua_pushboolean(L, isatty(check_fd(L, 1)) == 1);
    return 1;
}

/* term.size(fd) -> columns, rows | nil, message, code. A terminal that reports 0x0 (a serial
 * line, some ptys before their first resize) gives nil, "...", "unknown". Never yields. */
static int l_term_size(lua_State *L)
{
    int fd = check_fd(L, 1);
    struct winsize ws;
    if (ioctl(fd, TIOCGWINSZ, &ws) != 0)
        return push_errno(L, "terminal size", errno);
    if (ws.ws_col == 0 || ws.ws_row == 0)
        return ms_fail(L, "unknown", "terminal size: the terminal does not report one");
    lua_pushinteger(L, ws.ws_col);
    lua_pushinteger(L, ws.ws_row);
    return 2;
}

/* term.write(fd, data) -> true | nil, message, code. Writes all of data, retrying on EINTR and
 * waiting (poll) when fd is non-blocking and full, so a frame reaches the terminal in one
 * write(2) whenever the kernel takes it whole. Blocks the loop as long as the terminal does. */
static int l_term_write(lua_State *L)
{
    int fd = check_fd(L, 1);
    size_t len;
    const char *data = luaL_checklstring(L, 2, &len);
    size_t off = 0;
    while (off < len) {
        ssize_t n = write(fd, data + off, len - off);
        if (n >= 0) {
            off += (size_t)n;
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            struct pollfd p = {.fd = fd, .events = POLLOUT};
            if (poll(&p, 1, -1) < 0 && errno != EINTR)
                return push_errno(L, "terminal write", errno);
        } else if (errno != EINTR) {
            return push_errno(L, "terminal write", errno);
        }
    }
    lua_pushboolean(L, 1);
    return 1;
}

static void on_resize(uv_signal_t *h, int signum)
{
    struct resize *r = h->data;
    r->count++;
    if (ms_wait_pending(&r->wait)) {
        lua_pushinteger(ms_wait_thread(&r->wait), r->count);
        r->count = 0;
        ms_sched_wake(&r->wait, 1);
    }
}

static void resize_cancel(struct ms_wait *w)
{
    (void)w; /* nothing to stop: signals keep counting for the next wait */
}

static void on_close_free(uv_handle_t *h)
{
    free(h->data);
}

/* term.resize_watcher() -> watcher. Raises when the loop refuses the signal handle. */
static int l_term_resize_watcher(lua_State *L)
{
    uv_loop_t *loop = ms_sched_loop(L); /* the scheduler first, so it is finalized after us */
    struct box *b = lua_newuserdatauv(L, sizeof *b, 0);
    b->r = NULL; /* born closed so __gc is always safe */
    luaL_setmetatable(L, WATCHER_MT);
    struct resize *r = calloc(1, sizeof *r);
    if (r == NULL)
        return luaL_error(L, "resize watcher: out of memory");
    r->wait.cancel = resize_cancel;
    int rc = uv_signal_init(loop, &r->sig);
    if (rc != 0) {
        free(r);
        return luaL_error(L, "resize watcher: %s", uv_strerror(rc));
    }
    r->sig.data = r;
    b->r = r;
    rc = uv_signal_start(&r->sig, on_resize, SIGWINCH);
    if (rc != 0)
        return luaL_error(L, "resize watcher: %s", uv_strerror(rc)); /* __gc closes it */
    uv_unref((uv_handle_t *)&r->sig);
    return 1;
}

static struct resize *check_open(lua_State *L)
{
    struct box *b = luaL_checkudata(L, 1, WATCHER_MT);
    if (b->r == NULL)
        luaL_error(L, "resize watcher is closed");
    return b->r;
}

/* watcher:wait() -> n: the number of SIGWINCH since the previous wait returned (at once when
 * there were some), or nil, "closed", "closed" when the watcher is closed meanwhile. Yields; raises
 * "cancelled" when the task is cancelled, and when another task already waits. */
static int l_watcher_wait(lua_State *L)
{
    struct resize *r = check_open(L);
    if (ms_wait_pending(&r->wait))
        return luaL_error(L, "resize watcher: another task is waiting on it");
    if (r->count > 0) {
        lua_pushinteger(L, r->count);
        r->count = 0;
        return 1;
    }
    return ms_sched_suspend(L, &r->wait, NULL, 0);
}

/* watcher:close(): stops watching; a task waiting gets nil, "closed", "closed". Idempotent. */
static int l_watcher_close(lua_State *L)
{
    struct box *b = luaL_checkudata(L, 1, WATCHER_MT);
    struct resize *r = b->r;
    if (r == NULL)
        return 0;
    b->r = NULL;
    if (ms_wait_pending(&r->wait)) {
        ms_sched_wake(&r->wait, ms_fail(ms_wait_thread(&r->wait), "closed", "closed"));
    }
    uv_signal_stop(&r->sig);
    uv_close((uv_handle_t *)&r->sig, on_close_free);
    return 0;
}

static const luaL_Reg watcher_methods[] = {
    {"wait", l_watcher_wait},
    {"close", l_watcher_close},
    {NULL, NULL},
};

static const luaL_Reg watcher_meta[] = {
    {"__gc", l_watcher_close},
    {"__close", l_watcher_close},
    {NULL, NULL},
};

static const luaL_Reg funcs[] = {
    {"isatty", l_term_isatty},
    {"size", l_term_size},
    {"write", l_term_write},
    {"resize_watcher", l_term_resize_watcher},
    {NULL, NULL},
};

int luaopen_moonship_core_term(lua_State *L)
{
    if (luaL_newmetatable(L, WATCHER_MT)) {
        luaL_setfuncs(L, watcher_meta, 0);
        luaL_newlib(L, watcher_methods);
        lua_setfield(L, -2, "__index");
    }
    lua_pop(L, 1);
    luaL_newlib(L, funcs);
    return 1;
}
