/* require "moonship.core".process: child processes on the scheduler's loop (uv_spawn + pipes).
 * process.run captures a command's output; process.spawn gives a Process object to stream
 * lines from and write to. Every call that waits suspends the calling task, never the loop.
 *
 * Lifetime: a Process userdata boxes a malloc'd struct proc by pointer, because libuv owns the
 * handles until their close callbacks run. The struct is freed when the box is gone (closed or
 * collected) and every handle it opened has closed. Closing or collecting a Process closes its
 * pipes; a child still running is not killed (unless the kill_on_close option says so): its
 * process handle stays until the child exits and is reaped. Cancelling a task
 * that waits in a Process method only stops the wait. Cancelling process.run kills its child
 * (SIGTERM, then SIGKILL after kill_grace). process.wait_detached() waits for such children.
 * The child, its handles and its pipes are child.c's; this file is what Lua sees of them. */
#include <lauxlib.h>
#include <lua.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "lua/child.h"
#include "lua/modules.h"
#include "lua/options.h"
#include "lua/sched.h"

extern char **environ;

#define PROCESS_MT "moonship.Process"
#define REGISTRY_KEY "moonship.process"
#define DEFAULT_GRACE 2.0 /* seconds between SIGTERM and SIGKILL */

struct box {
    struct proc *p; /* NULL once closed */
};

/* ---- the registry -------------------------------------------------------------------------- */

static void reap_cancel(struct ms_wait *w)
{
    (void)w; /* nothing to stop: the count is kept by the exit callbacks */
}

/* At lua_close (finalized before the scheduler, which runs the loop to close the handles). */
static int registry_gc(lua_State *L)
{
    struct registry *reg = lua_touserdata(L, 1);
    struct proc *p = reg->all;
    reg->all = NULL;
    while (p) {
        struct proc *next = p->next;
        p->reg = NULL;
        p->next = p->prev = NULL;
        for (int i = 0; i < 3; i++)
            ms_child_stream_close(p, i);
        ms_child_timer_close(p);
        ms_child_process_close(p);
        p = next;
    }
    return 0;
}

static struct registry *registry_get(lua_State *L)
{
    if (lua_getfield(L, LUA_REGISTRYINDEX, REGISTRY_KEY) == LUA_TUSERDATA) {
        struct registry *reg = lua_touserdata(L, -1);
        lua_pop(L, 1);
        return reg;
    }
    lua_pop(L, 1);
    uv_loop_t *loop = ms_sched_loop(L); /* the scheduler first, so it is finalized after us */
    struct registry *reg = lua_newuserdatauv(L, sizeof *reg, 0);
    memset(reg, 0, sizeof *reg);
    reg->loop = loop;
    reg->reap.cancel = reap_cancel;
    lua_newtable(L);
    lua_pushcfunction(L, registry_gc);
    lua_setfield(L, -2, "__gc");
    lua_setmetatable(L, -2);
    lua_setfield(L, LUA_REGISTRYINDEX, REGISTRY_KEY);
    return reg;
}

/* ---- options ------------------------------------------------------------------------------- */

static int signal_number(lua_State *L, int idx, const char *what)
{
    static const struct {
        const char *name;
        int sig;
    } names[] = {{"TERM", SIGTERM}, {"INT", SIGINT},   {"KILL", SIGKILL},
                 {"HUP", SIGHUP},   {"QUIT", SIGQUIT}, {"USR1", SIGUSR1},
                 {"USR2", SIGUSR2}, {"STOP", SIGSTOP}, {"CONT", SIGCONT}};
    if (lua_type(L, idx) == LUA_TNUMBER) {
        lua_Integer n = luaL_checkinteger(L, idx);
        luaL_argcheck(L, n >= 0 && n < 65, idx, "not a signal number");
        return (int)n;
    }
    const char *s = luaL_checkstring(L, idx);
    if (strncmp(s, "SIG", 3) == 0)
        s += 3;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(s, names[i].name) == 0)
            return names[i].sig;
    return luaL_error(L, "%s: unknown signal '%s'", what, lua_tostring(L, idx));
}

/* Adds the string pairs of the table at idx to the env table at envt, checking their types;
 * a false value removes the variable (env_extra={LD_PRELOAD=false}). */
static void env_merge(lua_State *L, int idx, int envt, const char *what, const char *key)
{
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        if (lua_type(L, -2) != LUA_TSTRING || strchr(lua_tostring(L, -2), '=') ||
            !*lua_tostring(L, -2))
            luaL_error(L, "%s: %s keys must be variable names", what, key);
        int unset = lua_type(L, -1) == LUA_TBOOLEAN && !lua_toboolean(L, -1);
        if (!unset && !lua_isstring(L, -1))
            luaL_error(L, "%s: %s value of '%s' must be a string (or false to unset it)", what, key,
                       lua_tostring(L, -2));
        lua_pushvalue(L, -2);
        if (unset)
            lua_pushnil(L);
        else
            lua_pushvalue(L, -2);
        lua_rawset(L, envt);
        lua_pop(L, 1);
    }
}

/* Pushes a NULL-terminated char*[] userdata for the env options of the table at opts, or
 * nothing and returns NULL to inherit. The strings are anchored in the table at keep. */
static char **build_env(lua_State *L, int opts, int keep, const char *what)
{
    int has_env = lua_getfield(L, opts, "env") != LUA_TNIL;
    int env_idx = lua_gettop(L);
    int has_extra = lua_getfield(L, opts, "env_extra") != LUA_TNIL;
    int extra_idx = lua_gettop(L);
    if (has_env && !lua_istable(L, env_idx))
        luaL_error(L, "%s: option 'env' must be a table", what);
    if (has_extra && !lua_istable(L, extra_idx))
        luaL_error(L, "%s: option 'env_extra' must be a table", what);
    if (!has_env && !has_extra) {
        lua_pop(L, 2);
        return NULL;
    }
    lua_newtable(L);
    int envt = lua_gettop(L);
    if (has_env) {
        env_merge(L, env_idx, envt, what, "env");
    } else {
        for (char **e = environ; *e; e++) {
            const char *eq = strchr(*e, '=');
            if (eq == NULL || eq == *e)
                continue;
            lua_pushlstring(L, *e, (size_t)(eq - *e));
            lua_pushstring(L, eq + 1);
            lua_rawset(L, envt);
        }
    }
    if (has_extra)
        env_merge(L, extra_idx, envt, what, "env_extra");
    size_t n = 0;
    lua_pushnil(L);
    while (lua_next(L, envt)) {
        n++;
        lua_pop(L, 1);
    }
    char **env = lua_newuserdatauv(L, (n + 1) * sizeof *env, 0);
    size_t i = 0;
    lua_pushnil(L);
    while (lua_next(L, envt)) {
        env[i++] = (char *)lua_pushfstring(L, "%s=%s", lua_tostring(L, -2), lua_tostring(L, -1));
        lua_rawseti(L, keep, (lua_Integer)(lua_rawlen(L, keep) + 1));
        lua_pop(L, 1);
    }
    env[i] = NULL;
    lua_replace(L, env_idx); /* leave only the array, in env's slot */
    lua_settop(L, env_idx);
    return env;
}

static enum io_mode io_option(lua_State *L, int opts, const char *key, int allow_data,
                              enum io_mode dflt, const char *what)
{
    static const char *const modes[] = {"null", "pipe", "inherit", NULL};
    enum io_mode m = dflt;
    int t = lua_getfield(L, opts, key);
    if (t == LUA_TSTRING) {
        const char *s = lua_tostring(L, -1);
        m = IO_DATA;
        for (int i = 0; modes[i]; i++)
            if (strcmp(s, modes[i]) == 0)
                m = (enum io_mode)i;
        if (m == IO_DATA && !allow_data)
            luaL_error(L, "%s: option '%s' must be \"pipe\", \"inherit\" or \"null\"", what, key);
    } else if (t != LUA_TNIL) {
        luaL_error(L, "%s: option '%s' must be a string", what, key);
    }
    lua_pop(L, 1);
    return m;
}

/* ---- spawning ------------------------------------------------------------------------------ */

static void op_cancel(struct ms_wait *w);

static struct box *check_box(lua_State *L, int idx)
{
    return luaL_checkudata(L, idx, PROCESS_MT);
}

static struct proc *check_proc(lua_State *L, int idx)
{
    struct box *b = check_box(L, idx);
    if (b->p == NULL)
        luaL_error(L, "process: used after close");
    return b->p;
}

/* What proc_start reads from the options table, in the order it checks them. */
struct start_opts {
    struct child_spec spec;
    int kill_on_close;
    double timeout, grace;
};

/* The argv option of the table at index 1 as a NULL-terminated array (a userdata left on the
 * stack with the table); its strings are anchored in the table at keep. */
static char **check_argv(lua_State *L, int keep, const char *what)
{
    if (lua_getfield(L, 1, "argv") != LUA_TTABLE)
        luaL_error(L, "%s: option 'argv' must be a list of strings", what);
    lua_Integer argc = (lua_Integer)lua_rawlen(L, -1);
    if (argc < 1)
        luaL_error(L, "%s: option 'argv' must not be empty", what);
    char **argv = lua_newuserdatauv(L, (size_t)(argc + 1) * sizeof *argv, 0);
    for (lua_Integer i = 1; i <= argc; i++) {
        lua_rawgeti(L, -2, i);
        if (lua_type(L, -1) != LUA_TSTRING && lua_type(L, -1) != LUA_TNUMBER)
            luaL_error(L, "%s: argv[%d] must be a string", what, (int)i);
        argv[i - 1] = (char *)lua_tostring(L, -1);
        lua_rawseti(L, keep, (lua_Integer)(lua_rawlen(L, keep) + 1));
    }
    argv[argc] = NULL;
    return argv;
}

/* Checks the options of the table at index 1 (capture: process.run, whose stdout and stderr
 * are pipes and whose stdin is text or nothing). The strings stay anchored on the stack or in
 * the table at keep until the caller returns. */
static void check_start_options(lua_State *L, int capture, int keep, struct start_opts *so,
                                const char *what)
{
    struct child_spec *spec = &so->spec;
    spec->argv = check_argv(L, keep, what);
    spec->env = build_env(L, 1, keep, what);
    int t = lua_getfield(L, 1, "cwd");
    if (t != LUA_TNIL && t != LUA_TSTRING)
        luaL_error(L, "%s: option 'cwd' must be a string", what);
    spec->cwd = lua_tostring(L, -1);
    enum io_mode in = io_option(L, 1, "stdin", 1, IO_NULL, what);
    spec->modes[S_IN] = in;
    spec->modes[S_OUT] = capture ? IO_PIPE : io_option(L, 1, "stdout", 0, IO_PIPE, what);
    spec->modes[S_ERR] = capture ? IO_PIPE : io_option(L, 1, "stderr", 0, IO_INHERIT, what);
    if (capture && in != IO_NULL && in != IO_DATA)
        luaL_error(L, "%s: option 'stdin' must be the text to write", what);
    so->kill_on_close = 0;
    spec->new_session = 0;
    if (!capture) {
        t = lua_getfield(L, 1, "new_session");
        if (t != LUA_TNIL && t != LUA_TBOOLEAN)
            luaL_error(L, "%s: option 'new_session' must be a boolean", what);
        spec->new_session = lua_toboolean(L, -1);
        lua_pop(L, 1);
        t = lua_getfield(L, 1, "kill_on_close");
        if (t == LUA_TBOOLEAN)
            so->kill_on_close = lua_toboolean(L, -1) ? SIGKILL : 0;
        else if (t != LUA_TNIL)
            so->kill_on_close = signal_number(L, -1, what);
        lua_pop(L, 1);
    }
    so->timeout = capture ? ms_opt_seconds(L, 1, "timeout", -1, what) : -1;
    so->grace = ms_opt_seconds(L, 1, "kill_grace", DEFAULT_GRACE, what);
}

/* Pushes a Process box owning a new struct proc, linked into reg, not yet started. Raises when
 * out of memory. */
static struct box *proc_new(lua_State *L, struct registry *reg, int capture,
                            const struct start_opts *so, const char *what)
{
    struct box *b = lua_newuserdatauv(L, sizeof *b, 0);
    b->p = NULL;
    luaL_setmetatable(L, PROCESS_MT);
    struct proc *p = calloc(1, sizeof *p);
    char *name = strdup(so->spec.argv[0]);
    if (p == NULL || name == NULL) {
        free(p);
        free(name);
        luaL_error(L, "%s: out of memory", what);
    }
    b->p = p;
    p->boxed = 1;
    p->name = name;
    p->reg = reg;
    p->next = reg->all;
    if (reg->all)
        reg->all->prev = p;
    reg->all = p;
    p->capture = capture;
    p->kill_on_close = so->kill_on_close;
    p->timeout = so->timeout;
    p->grace = so->grace;
    for (int i = 0; i < OP_COUNT; i++) {
        p->ops[i].p = p;
        p->ops[i].wait.cancel = op_cancel;
    }
    return b;
}

/* Starts the child described by the options table at index 1 (already checked for unknown
 * keys). Pushes the Process box and returns 0, or pushes nil, message, "spawn" and returns 3. */
static int proc_start(lua_State *L, int capture, const char *what)
{
    luaL_checkstack(L, 16, NULL);
    lua_newtable(L); /* keeps the strings of argv and env alive during uv_spawn */
    int keep = lua_gettop(L);
    struct start_opts so;
    check_start_options(L, capture, keep, &so, what);
    struct registry *reg = registry_get(L);
    struct box *b = proc_new(L, reg, capture, &so, what);
    struct proc *p = b->p;
    int rc = ms_child_spawn(p, reg->loop, &so.spec);
    if (rc != 0) {
        b->p = NULL;
        p->boxed = 0; /* freed once its handles have closed */
        const char *argv0 = so.spec.argv[0], *cwd = so.spec.cwd;
        if (cwd)
            return ms_fail(L, "spawn", "spawn %s: %s: %s (in %s)", argv0, uv_err_name(rc),
                           uv_strerror(rc), cwd);
        return ms_fail(L, "spawn", "spawn %s: %s: %s", argv0, uv_err_name(rc), uv_strerror(rc));
    }
    if (so.spec.modes[S_IN] == IO_DATA) {
        size_t len;
        lua_getfield(L, 1, "stdin");
        const char *data = lua_tolstring(L, -1, &len);
        p->close_stdin_after = 1;
        if (len > 0)
            ms_child_write(p, data, len);
        else
            ms_child_stream_close(p, S_IN);
        lua_pop(L, 1);
    }
    if (so.timeout >= 0)
        ms_child_timer_open(p, reg->loop);
    return 0;
}

/* ---- waiting ------------------------------------------------------------------------------- */

/* A cancelled wait: process.run kills its child; Process methods only stop waiting. */
static void op_cancel(struct ms_wait *w)
{
    struct op *op = (struct op *)w;
    struct proc *p = op->p;
    if (p->capture && op == &p->ops[OP_EXIT]) {
        if (p->reg)
            ms_child_kill(p, SIGTERM);
        ms_child_detach(p);
    }
}

static int wait_on(lua_State *L, struct proc *p, int op, lua_KFunction k, lua_KContext ctx,
                   const char *what)
{
    if (ms_wait_pending(&p->ops[op].wait))
        return luaL_error(L, "%s: another task is already waiting", what);
    return ms_sched_suspend(L, &p->ops[op].wait, k, ctx);
}

static void push_status(lua_State *L, struct proc *p)
{
    if (p->term_signal) {
        lua_pushnil(L);
        lua_pushinteger(L, p->term_signal);
    } else {
        lua_pushinteger(L, (lua_Integer)p->status);
        lua_pushnil(L);
    }
}

/* nil, "what name: ENAME: text", "io": the OS error's name stays in the message. */
static int push_uv_fail(lua_State *L, const char *what, const char *name, int rc)
{
    return ms_fail(L, "io", "%s %s: %s: %s", what, name, uv_err_name(rc), uv_strerror(rc));
}

/* ---- process.run --------------------------------------------------------------------------- */

static int run_k(lua_State *L, int status, lua_KContext ctx)
{
    struct proc *p = check_box(L, 2)->p;
    if (p->exited && p->timed_out) {
        ms_child_detach(p);
        char msg[300]; /* %g, which lua_pushfstring has not */
        snprintf(msg, sizeof msg, "run %.200s: timed out after %g s (killed)", p->name, p->timeout);
        return ms_fail(L, "timeout", "%s", msg);
    }
    if (!p->exited || !p->io[S_OUT].eof || !p->io[S_ERR].eof)
        return wait_on(L, p, OP_EXIT, run_k, 0, "process.run");
    for (int i = S_OUT; i <= S_ERR; i++)
        if (p->io[i].err)
            return push_uv_fail(L, i == S_OUT ? "read stdout of" : "read stderr of", p->name,
                                p->io[i].err);
    lua_createtable(L, 0, 5);
    push_status(L, p);
    lua_setfield(L, -3, "signal");
    lua_setfield(L, -2, "code");
    static const char *const names[] = {NULL, "stdout", "stderr"};
    for (int i = S_OUT; i <= S_ERR; i++) {
        struct buf *b = &p->io[i].buf;
        lua_pushlstring(L, b->data ? b->data + b->off : "", b->len - b->off);
        lua_setfield(L, -2, names[i]);
    }
    lua_pushinteger(L, p->pid);
    lua_setfield(L, -2, "pid");
    ms_child_detach(p);
    return 1;
}

/* process.run{argv=, env=, env_extra=, cwd=, stdin=text, timeout=, kill_grace=}
 *   -> {code=, signal=, stdout=, stderr=, pid=} | nil, message, code
 * Yields until the child has exited and closed its output. Raises on misuse. */
static int l_process_run(lua_State *L)
{
    static const char *const names[] = {"argv",  "env",     "env_extra",  "cwd",
                                        "stdin", "timeout", "kill_grace", NULL};
    ms_check_options(L, 1, "process.run", names);
    ms_sched_current(L, "process.run");
    lua_settop(L, 1);
    int n = proc_start(L, 1, "process.run");
    if (n)
        return n;
    lua_replace(L, 2);
    lua_settop(L, 2);
    struct proc *p = check_box(L, 2)->p;
    ms_child_arm_timeout(p);
    return run_k(L, LUA_OK, 0);
}

/* ---- process.spawn and Process methods ----------------------------------------------------- */

/* process.spawn{argv=, env=, env_extra=, cwd=, stdin="pipe"|"inherit"|"null"|text,
 *               stdout="pipe"|"inherit"|"null", stderr=same, kill_on_close=true|signal,
 *               new_session=bool}
 *   -> Process | nil, message, "spawn". Never yields; raises on misuse. new_session starts the
 * child in a session of its own, so that a Ctrl-C at the terminal reaches only us, and we
 * stop the child when we are done with it (kubesim must outlive the first Ctrl-C: the cleanup
 * hooks still talk to it). */
static int l_process_spawn(lua_State *L)
{
    static const char *const names[] = {"argv",   "env",    "env_extra",     "cwd",         "stdin",
                                        "stdout", "stderr", "kill_on_close", "new_session", NULL};
    ms_check_options(L, 1, "process.spawn", names);
    lua_settop(L, 1);
    int n = proc_start(L, 0, "process.spawn");
    return n ? n : 1;
}

static int check_stream(lua_State *L, int idx)
{
    static const char *const names[] = {"stdout", "stderr", NULL};
    return luaL_checkoption(L, idx, "stdout", names) + S_OUT;
}

static struct stream *readable(lua_State *L, struct proc *p, int i, const char *what)
{
    struct stream *s = &p->io[i];
    if (!s->piped)
        luaL_error(L, "%s: %s is not a pipe", what, i == S_OUT ? "stdout" : "stderr");
    return s;
}

static void consume(struct stream *s, size_t n)
{
    s->buf.off += n;
    if (s->buf.off == s->buf.len)
        s->buf.off = s->buf.len = 0;
    ms_child_stream_resume(s);
}

static int read_eof(lua_State *L, struct proc *p, struct stream *s)
{
    if (s->err)
        return push_uv_fail(L, "read", p->name, s->err);
    lua_pushnil(L);
    return 1;
}

/* Continuation contexts of read_k: what is being read. */
enum { RD_LINE, RD_CHUNK, RD_ALL };

static int read_k(lua_State *L, int status, lua_KContext ctx)
{
    static const char *const what[] = {"process:read_line", "process:read", "process:read_all"};
    struct proc *p = check_proc(L, 1);
    int i = check_stream(L, 2);
    struct stream *s = readable(L, p, i, what[ctx]);
    struct buf *b = &s->buf;
    size_t avail = b->len - b->off;
    if (ctx == RD_LINE) {
        char *nl = avail ? memchr(b->data + b->off, '\n', avail) : NULL;
        if (nl || (s->eof && avail)) {
            size_t n = nl ? (size_t)(nl - (b->data + b->off)) : avail;
            lua_pushlstring(L, b->data + b->off, n);
            consume(s, nl ? n + 1 : n);
            return 1;
        }
    } else if (ctx == RD_CHUNK && avail) {
        lua_pushlstring(L, b->data + b->off, avail);
        consume(s, avail);
        return 1;
    } else if (ctx == RD_ALL) {
        s->unlimited = 1;
        if (s->eof) {
            s->unlimited = 0;
            if (s->err)
                return read_eof(L, p, s);
            lua_pushlstring(L, b->data ? b->data + b->off : "", avail);
            consume(s, avail);
            return 1;
        }
    }
    if (s->eof)
        return read_eof(L, p, s);
    ms_child_stream_resume(s);
    return wait_on(L, p, i == S_OUT ? OP_OUT : OP_ERR, read_k, ctx, what[ctx]);
}

/* p:read_line([stream]) -> line (without "\n") | nil at EOF | nil, message, code.
 * stream is "stdout" (default) or "stderr". Yields until a line arrives. */
static int l_process_read_line(lua_State *L)
{
    struct proc *p = check_proc(L, 1);
    readable(L, p, check_stream(L, 2), "process:read_line");
    lua_settop(L, 2);
    return read_k(L, LUA_OK, RD_LINE);
}

/* p:read([stream]) -> the output that has arrived (at least one byte) | nil at EOF. Yields. */
static int l_process_read(lua_State *L)
{
    struct proc *p = check_proc(L, 1);
    readable(L, p, check_stream(L, 2), "process:read");
    lua_settop(L, 2);
    return read_k(L, LUA_OK, RD_CHUNK);
}

/* p:read_all([stream]) -> everything until EOF ("" if nothing) | nil, message, code. Yields. */
static int l_process_read_all(lua_State *L)
{
    struct proc *p = check_proc(L, 1);
    readable(L, p, check_stream(L, 2), "process:read_all");
    lua_settop(L, 2);
    return read_k(L, LUA_OK, RD_ALL);
}

static int write_k(lua_State *L, int status, lua_KContext ctx)
{
    struct proc *p = check_proc(L, 1);
    if (p->write_err)
        return push_uv_fail(L, "write to", p->name, p->write_err);
    if (p->pending_writes > 0)
        return wait_on(L, p, OP_WRITE, write_k, 0, "process:write");
    lua_pushboolean(L, 1);
    return 1;
}

/* p:write(data) -> true | nil, message, code ("io" with EPIPE in the message when the child
 * closed its stdin, "closed" after close_stdin). Yields until the data is written to the pipe. */
static int l_process_write(lua_State *L)
{
    struct proc *p = check_proc(L, 1);
    size_t len;
    const char *data = luaL_checklstring(L, 2, &len);
    struct stream *s = &p->io[S_IN];
    if (!s->piped)
        luaL_error(L, "process:write: stdin is not a pipe");
    if (p->write_err)
        return push_uv_fail(L, "write to", p->name, p->write_err);
    if (!s->open || p->close_stdin_after)
        return ms_fail(L, "closed", "write to %s: stdin is closed", p->name);
    lua_settop(L, 2); /* data stays anchored until it is written or copied */
    if (len == 0)
        return write_k(L, LUA_OK, 0);
    if (p->pending_writes == 0) {
        uv_buf_t buf = uv_buf_init((char *)data, (unsigned)len);
        int n = uv_try_write((uv_stream_t *)&s->pipe, &buf, 1);
        if (n == (int)len) {
            lua_pushboolean(L, 1);
            return 1;
        }
        if (n < 0 && n != UV_EAGAIN)
            return push_uv_fail(L, "write to", p->name, n);
        if (n > 0) {
            data += n;
            len -= (size_t)n;
        }
    }
    ms_child_write(p, data, len);
    return write_k(L, LUA_OK, 0);
}

/* p:close_stdin() -> nothing. The child reads EOF once the pending writes are done. */
static int l_process_close_stdin(lua_State *L)
{
    struct proc *p = check_proc(L, 1);
    if (p->io[S_IN].piped) {
        p->close_stdin_after = 1;
        if (p->pending_writes == 0)
            ms_child_stream_close(p, S_IN);
    }
    return 0;
}

static int wait_k(lua_State *L, int status, lua_KContext ctx)
{
    struct proc *p = check_proc(L, 1);
    if (!p->exited)
        return wait_on(L, p, OP_EXIT, wait_k, 0, "process:wait");
    push_status(L, p);
    return 2;
}

/* p:wait() -> code, signal: the exit code (nil when a signal ended the child) and the signal
 * number (nil otherwise). Yields until the child exits; cancelling the task only stops the
 * wait. */
static int l_process_wait(lua_State *L)
{
    check_proc(L, 1);
    lua_settop(L, 1);
    return wait_k(L, LUA_OK, 0);
}

/* p:kill([sig]) -> true | nil, message, code. sig: "TERM" (default), "INT", "KILL", ... or a
 * number. Never yields. */
static int l_process_kill(lua_State *L)
{
    struct proc *p = check_proc(L, 1);
    int sig = lua_isnoneornil(L, 2) ? SIGTERM : signal_number(L, 2, "process:kill");
    if (p->exited)
        return ms_fail(L, "exited", "kill %s: the process has exited", p->name);
    int rc = uv_process_kill(&p->process, sig);
    if (rc != 0)
        return push_uv_fail(L, "kill", p->name, rc);
    lua_pushboolean(L, 1);
    return 1;
}

/* p:pid() -> the child's process id. */
static int l_process_pid(lua_State *L)
{
    lua_pushinteger(L, check_proc(L, 1)->pid);
    return 1;
}

/* p:exited() -> false, or true, code, signal without waiting. */
static int l_process_exited(lua_State *L)
{
    struct proc *p = check_proc(L, 1);
    lua_pushboolean(L, p->exited);
    if (!p->exited)
        return 1;
    push_status(L, p);
    return 3;
}

/* p:close() (also __close and __gc) -> nothing. Closes the pipes; sends the kill_on_close
 * signal to a child still running; the object is unusable afterwards. Never raises twice. */
static int l_process_close(lua_State *L)
{
    struct box *b = check_box(L, 1);
    struct proc *p = b->p;
    if (p == NULL)
        return 0;
    b->p = NULL;
    ms_child_detach(p);
    p->boxed = 0;
    ms_child_maybe_free(p);
    return 0;
}

static int l_process_tostring(lua_State *L)
{
    struct box *b = check_box(L, 1);
    if (b->p)
        lua_pushfstring(L, "process %d (%s)", b->p->pid, b->p->name);
    else
        lua_pushliteral(L, "process (closed)");
    return 1;
}

static int reap_k(lua_State *L, int status, lua_KContext ctx)
{
    struct registry *reg = registry_get(L);
    if (reg->ndetached == 0)
        return 0;
    if (ms_wait_pending(&reg->reap))
        return luaL_error(L, "process.wait_detached: another task is already waiting");
    return ms_sched_suspend(L, &reg->reap, reap_k, 0);
}

/* process.wait_detached() -> nothing. Yields until every child whose Process was closed or
 * collected while running (or whose process.run was cancelled) has exited. */
static int l_process_wait_detached(lua_State *L)
{
    ms_sched_current(L, "process.wait_detached");
    return reap_k(L, LUA_OK, 0);
}

/* process.detached() -> the number of detached children still running. */
static int l_process_detached(lua_State *L)
{
    lua_pushinteger(L, registry_get(L)->ndetached);
    return 1;
}

static const luaL_Reg methods[] = {
    {"read_line", l_process_read_line},
    {"read", l_process_read},
    {"read_all", l_process_read_all},
    {"write", l_process_write},
    {"close_stdin", l_process_close_stdin},
    {"wait", l_process_wait},
    {"kill", l_process_kill},
    {"pid", l_process_pid},
    {"exited", l_process_exited},
    {"close", l_process_close},
    {NULL, NULL},
};

static const luaL_Reg meta[] = {
    {"__gc", l_process_close},
    {"__close", l_process_close},
    {"__tostring", l_process_tostring},
    {NULL, NULL},
};

static const luaL_Reg funcs[] = {
    {"run", l_process_run},
    {"spawn", l_process_spawn},
    {"wait_detached", l_process_wait_detached},
    {"detached", l_process_detached},
    {NULL, NULL},
};

int luaopen_moonship_core_process(lua_State *L)
{
    /* Writing to a pipe whose reader has gone must be an EPIPE error, not the end of us. */
    struct sigaction old;
    if (sigaction(SIGPIPE, NULL, &old) == 0 && old.sa_handler == SIG_DFL)
        signal(SIGPIPE, SIG_IGN);
    registry_get(L);
    if (luaL_newmetatable(L, PROCESS_MT)) {
        luaL_setfuncs(L, meta, 0);
        luaL_newlib(L, methods);
        lua_setfield(L, -2, "__index");
    }
    lua_pop(L, 1);
    luaL_newlib(L, funcs);
    return 1;
}
