/* The coroutine scheduler: tasks are Lua threads resumed only from the libuv loop. A task
 * suspends on one pending operation at a time (struct ms_wait); cancellation stops that
 * operation and raises "cancelled" in the task. Exposed as require "moonship.core".sched;
 * lua/moonship/sched.lua builds all/any/timeout/semaphore/groups on these primitives. */
#include <lauxlib.h>
#include <lua.h>
#include <math.h>
#include <stdint.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "modules.h"
#include "sched.h"

#define TASK_MT "moonship.Task"
#define SCHED_KEY "moonship.sched"
#define THREADS_KEY "moonship.sched.threads"
#define CANCELLED_KEY "moonship.sched.cancelled"

enum task_state { TASK_READY, TASK_RUNNING, TASK_WAITING, TASK_DONE };

/* Uservalue slots of a task userdata. */
enum { UV_THREAD = 1, UV_RESULT = 2, UV_REASON = 3, UV_COUNT = 3 };

struct ms_sched;

struct ms_task {
    struct ms_sched *sched;
    lua_State *co; /* borrows: the thread is anchored in uservalue UV_THREAD */
    int ref;       /* registry ref to the userdata while not done, else LUA_NOREF */
    enum task_state state;
    struct ms_wait *wait; /* the pending operation while WAITING */
    lua_KFunction k;      /* continuation of the pending C call */
    lua_KContext kctx;
    int nargs; /* values to pass to the next resume */
    unsigned started : 1, cancel_pending : 1, cancelled : 1, ok : 1, preempted : 1;
    unsigned long cancels; /* how many times it was cancelled (sched.check compares) */
    struct ms_task *next_ready;
    struct ms_task *prev_live, *next_live;
    struct join_wait *joiners;
    unsigned long id;
};

struct ms_sched {
    lua_State *L;    /* the main thread */
    lua_State *from; /* the thread running uv_run (sched.run's caller) */
    uv_loop_t loop;
    uv_idle_t idle;           /* active while the ready queue is not empty */
    uv_async_t signal_wakeup; /* sent by the signal handler: the loop handles the signal */
    struct ms_task *ready_head, *ready_tail;
    struct ms_task *preempted; /* tasks a guard made yield: ready after the loop has polled */
    struct ms_defer *deferred; /* calls to make between task steps (LIFO; each runs once) */
    struct ms_task *live;      /* every task not yet done */
    struct ms_task *root;
    int running;         /* inside sched.run */
    int interrupted;     /* the signal that cancelled the root task, or 0 */
    int signals_handled; /* signals of this run handled so far (1: interrupted, 2: urgent) */
    int nwaiting;        /* tasks suspended on an operation */
    unsigned long next_id;
};

/* ---- the scheduler state, one per Lua state ---------------------------------------------- */

static void on_idle(uv_idle_t *h);
static void on_signal_wakeup(uv_async_t *h);

static void close_walk(uv_handle_t *h, void *arg)
{
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

/* __gc of the scheduler userdata, at lua_close: close what is left and drain the loop. */
static int sched_gc(lua_State *L)
{
    struct ms_sched *s = lua_touserdata(L, 1);
    uv_walk(&s->loop, close_walk, NULL);
    uv_run(&s->loop, UV_RUN_DEFAULT);
    uv_loop_close(&s->loop);
    return 0;
}

static int cancelled_tostring(lua_State *L)
{
    lua_pushvalue(L, lua_upvalueindex(1));
    return 1;
}

static struct ms_sched *sched_get(lua_State *L)
{
    if (lua_getfield(L, LUA_REGISTRYINDEX, SCHED_KEY) == LUA_TUSERDATA) {
        struct ms_sched *s = lua_touserdata(L, -1);
        lua_pop(L, 1);
        return s;
    }
    lua_pop(L, 1);
    struct ms_sched *s = lua_newuserdatauv(L, sizeof *s, 0);
    memset(s, 0, sizeof *s);
    int rc = uv_loop_init(&s->loop);
    if (rc != 0)
        luaL_error(L, "sched: cannot create the event loop: %s", uv_strerror(rc));
    lua_newtable(L);
    lua_pushcfunction(L, sched_gc);
    lua_setfield(L, -2, "__gc");
    lua_setmetatable(L, -2);
    lua_setfield(L, LUA_REGISTRYINDEX, SCHED_KEY);
    lua_newtable(L); /* the cancellation */
    lua_newtable(L);
    lua_pushliteral(L, "cancelled");
    lua_pushcclosure(L, cancelled_tostring, 1);
    lua_setfield(L, -2, "__tostring");
    lua_pushliteral(L, "moonship.Cancelled");
    lua_setfield(L, -2, "__name");
    lua_setmetatable(L, -2);
    lua_setfield(L, LUA_REGISTRYINDEX, CANCELLED_KEY);
    lua_newtable(L); /* weak-keyed: a dropped thread must not be kept alive by the map */
    lua_newtable(L);
    lua_pushliteral(L, "k");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua_setfield(L, LUA_REGISTRYINDEX, THREADS_KEY);
    lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
    s->L = lua_tothread(L, -1);
    lua_pop(L, 1);
    uv_idle_init(&s->loop, &s->idle);
    s->idle.data = s;
    if (uv_async_init(&s->loop, &s->signal_wakeup, on_signal_wakeup) != 0)
        luaL_error(L, "sched: cannot create the signal wakeup of the event loop");
    s->signal_wakeup.data = s;
    uv_unref((uv_handle_t *)&s->signal_wakeup);
    s->next_id = 1;
    return s;
}

uv_loop_t *ms_sched_loop(lua_State *L)
{
    return &sched_get(L)->loop;
}

/* The task whose thread is L, or NULL. A registry table maps threads to tasks: a thread's
 * extra space is not ours to trust, since threads made before this module was loaded hold
 * whatever the main thread's held. */
static struct ms_task *task_of_thread(lua_State *L)
{
    lua_getfield(L, LUA_REGISTRYINDEX, THREADS_KEY);
    if (!lua_istable(L, -1)) {
        lua_pop(L, 1);
        return NULL;
    }
    lua_pushthread(L);
    lua_rawget(L, -2);
    struct ms_task *t = lua_touserdata(L, -1);
    lua_pop(L, 2);
    return t;
}

/* threads[co] = t (or nil when t is NULL); uses the stack of L. */
static void set_task_of_thread(lua_State *L, lua_State *co, struct ms_task *t)
{
    lua_getfield(L, LUA_REGISTRYINDEX, THREADS_KEY);
    lua_pushthread(co);
    lua_xmove(co, L, 1);
    if (t)
        lua_pushlightuserdata(L, t);
    else
        lua_pushnil(L);
    lua_rawset(L, -3);
    lua_pop(L, 1);
}

struct ms_task *ms_sched_current(lua_State *L, const char *what)
{
    struct ms_task *t = task_of_thread(L);
    if (t == NULL || t->state != TASK_RUNNING)
        luaL_error(L, "%s must be called inside a task (use sched.run)", what);
    return t;
}

/* ---- the ready queue ---------------------------------------------------------------------- */

static void make_ready(struct ms_task *t, int nargs)
{
    struct ms_sched *s = t->sched;
    t->state = TASK_READY;
    t->nargs = nargs;
    t->next_ready = NULL;
    if (s->ready_tail)
        s->ready_tail->next_ready = t;
    else
        s->ready_head = t;
    s->ready_tail = t;
    if (!uv_is_active((uv_handle_t *)&s->idle))
        uv_idle_start(&s->idle, on_idle);
}

lua_State *ms_wait_thread(const struct ms_wait *w)
{
    return w->task->co;
}

void ms_sched_wake(struct ms_wait *w, int n)
{
    struct ms_task *t = w->task;
    w->task = NULL;
    t->wait = NULL;
    t->sched->nwaiting--;
    make_ready(t, n);
}

/* ---- suspending and resuming -------------------------------------------------------------- */

/* The one value a cancelled task's wait raises (sched.cancelled): a table of its own, so no
 * error message can be mistaken for it; tostring gives "cancelled". */
static void push_cancellation(lua_State *L)
{
    lua_getfield(L, LUA_REGISTRYINDEX, CANCELLED_KEY);
}

static int is_cancellation(lua_State *L, int idx)
{
    idx = lua_absindex(L, idx);
    push_cancellation(L);
    int same = lua_rawequal(L, idx, -1);
    lua_pop(L, 1);
    return same;
}

static int push_cancelled(lua_State *L)
{
    push_cancellation(L);
    return lua_error(L);
}

/* Every suspended C call resumes here: deliver a pending cancellation, else hand over to the
 * binding's continuation with the woken values on top of the stack. */
static int resume_k(lua_State *L, int status, lua_KContext ctx)
{
    struct ms_task *t = task_of_thread(L);
    if (t == NULL || t->sched->from == NULL || t->state != TASK_RUNNING)
        return luaL_error(L, "a task was resumed outside the scheduler");
    if (t->cancel_pending) {
        t->cancel_pending = 0;
        return push_cancelled(L);
    }
    lua_KFunction k = t->k;
    t->k = NULL;
    if (k)
        return k(L, status, t->kctx);
    return t->nargs;
}

int ms_sched_suspend(lua_State *L, struct ms_wait *w, lua_KFunction k, lua_KContext ctx)
{
    struct ms_task *t = ms_sched_current(L, "a waiting call");
    if (t->cancel_pending) {
        if (w->cancel)
            w->cancel(w);
        t->cancel_pending = 0;
        return push_cancelled(L);
    }
    w->task = t;
    t->wait = w;
    t->k = k;
    t->kctx = ctx;
    t->state = TASK_WAITING;
    t->sched->nwaiting++;
    return lua_yieldk(L, 0, 0, resume_k);
}

static void task_unlink_live(struct ms_task *t)
{
    struct ms_sched *s = t->sched;
    if (t->prev_live)
        t->prev_live->next_live = t->next_live;
    else
        s->live = t->next_live;
    if (t->next_live)
        t->next_live->prev_live = t->prev_live;
    t->prev_live = t->next_live = NULL;
}

struct join_wait {
    struct ms_wait wait;
    struct ms_task *target;
    struct join_wait *next, *prev;
};

/* Records the outcome of a finished task: pushes the task userdata to look it up, stores a
 * results table {ok=, n=, ...} in UV_RESULT, drops the thread so its memory can go. */
static void task_finish(struct ms_task *t, int status)
{
    struct ms_sched *s = t->sched;
    lua_State *L = s->from ? s->from : s->L, *co = t->co;
    lua_checkstack(L, 8);
    lua_rawgeti(L, LUA_REGISTRYINDEX, t->ref);
    int ud = lua_gettop(L);
    int n = lua_gettop(co);
    lua_createtable(L, status == LUA_OK ? n : 1, 2);
    if (status == LUA_OK) {
        t->ok = 1;
        lua_checkstack(co, 1);
        for (int i = 1; i <= n; i++) {
            lua_pushvalue(co, i);
            lua_xmove(co, L, 1);
            lua_rawseti(L, -2, i);
        }
    } else {
        t->ok = 0;
        if (status == -1 || (t->cancelled && is_cancellation(co, -1))) {
            push_cancellation(L); /* cancelled while waiting, or before it ever ran */
        } else if (lua_type(co, -1) == LUA_TSTRING) {
            luaL_traceback(L, co, lua_tostring(co, -1), 0);
        } else {
            lua_pushvalue(co, -1);
            lua_xmove(co, L, 1);
        }
        lua_rawseti(L, -2, 1);
        n = 1;
    }
    lua_pushboolean(L, t->ok);
    lua_setfield(L, -2, "ok");
    lua_pushinteger(L, n);
    lua_setfield(L, -2, "n");
    lua_setiuservalue(L, ud, UV_RESULT);

    /* Close pending to-be-closed variables of a failed task, then let the thread go. */
    if (status != LUA_OK && status != -1)
        lua_resetthread(co);
    set_task_of_thread(L, co, NULL);
    lua_pushnil(L);
    lua_setiuservalue(L, ud, UV_THREAD);
    t->co = NULL;
    t->state = TASK_DONE;
    task_unlink_live(t);

    for (struct join_wait *j = t->joiners; j; j = j->next)
        if (ms_wait_pending(&j->wait))
            ms_sched_wake(&j->wait, 0);
    t->joiners = NULL;
    luaL_unref(L, LUA_REGISTRYINDEX, t->ref);
    t->ref = LUA_NOREF;
    lua_pop(L, 1);
    if (t == s->root)
        uv_stop(&s->loop);
}

static void task_step(struct ms_sched *s, struct ms_task *t)
{
    if (!t->started && t->cancel_pending) {
        task_finish(t, -1);
        return;
    }
    t->started = 1;
    t->state = TASK_RUNNING;
    int nres = 0;
    int status = lua_resume(t->co, s->from, t->nargs, &nres);
    if (status == LUA_YIELD) {
        lua_pop(t->co, nres);
        if (t->state == TASK_RUNNING && t->preempted) {
            /* A guard made it yield: it waits until the loop has run timers and I/O. */
            t->preempted = 0;
            t->state = TASK_READY;
            t->next_ready = s->preempted;
            s->preempted = t;
        } else if (t->state == TASK_RUNNING) { /* a bare coroutine.yield(): let others run first */
            make_ready(t, 0);
        }
        return;
    }
    task_finish(t, status);
}

/* The calls queued so far; those they queue wait for the next pass. */
static void run_deferred(struct ms_sched *s)
{
    struct ms_defer *d = s->deferred;
    s->deferred = NULL;
    while (d) {
        struct ms_defer *next = d->next;
        d->next = NULL;
        d->queued = 0;
        d->fn(d->ud);
        d = next;
    }
}

static void on_idle(uv_idle_t *h)
{
    struct ms_sched *s = h->data;
    struct ms_task *t;
    run_deferred(s);
    while ((t = s->ready_head) != NULL) {
        s->ready_head = t->next_ready;
        if (s->ready_head == NULL)
            s->ready_tail = NULL;
        t->next_ready = NULL;
        task_step(s, t);
        if (t == s->root && t->state == TASK_DONE)
            break; /* sched.run returns now; the others are cancelled, not stepped */
        run_deferred(s);
    }
    while ((t = s->preempted) != NULL) {
        s->preempted = t->next_ready;
        make_ready(t, 0);
    }
    if (s->ready_head == NULL && s->deferred == NULL)
        uv_idle_stop(&s->idle);
}

void ms_defer_init(lua_State *L, struct ms_defer *d, void (*fn)(void *ud), void *ud)
{
    *d = (struct ms_defer){fn, ud, sched_get(L), NULL, 0};
}

void ms_defer_queue(struct ms_defer *d)
{
    struct ms_sched *s = d->sched;
    if (d->queued)
        return;
    d->queued = 1;
    d->next = s->deferred;
    s->deferred = d;
    if (!uv_is_active((uv_handle_t *)&s->idle))
        uv_idle_start(&s->idle, on_idle);
}

void ms_defer_cancel(struct ms_defer *d)
{
    if (!d->queued)
        return;
    for (struct ms_defer **p = &d->sched->deferred; *p; p = &(*p)->next) {
        if (*p == d) {
            *p = d->next;
            break;
        }
    }
    d->next = NULL;
    d->queued = 0;
}

/* ---- tasks ---------------------------------------------------------------------------------- */

static struct ms_task *check_task(lua_State *L, int idx)
{
    return luaL_checkudata(L, idx, TASK_MT);
}

/* Creates a task running the function at index `fn` with the nargs values after it. Pushes the
 * task userdata. */
static struct ms_task *task_new(lua_State *L, int fn, int nargs)
{
    struct ms_sched *s = sched_get(L);
    struct ms_task *t = lua_newuserdatauv(L, sizeof *t, UV_COUNT);
    memset(t, 0, sizeof *t);
    t->ref = LUA_NOREF;
    luaL_setmetatable(L, TASK_MT);
    lua_State *co = lua_newthread(L);
    lua_setiuservalue(L, -2, UV_THREAD);
    set_task_of_thread(L, co, t);
    lua_checkstack(co, nargs + 1);
    lua_pushvalue(L, fn);
    lua_xmove(L, co, 1);
    for (int i = 1; i <= nargs; i++) {
        lua_pushvalue(L, fn + i);
        lua_xmove(L, co, 1);
    }
    t->sched = s;
    t->co = co;
    t->id = s->next_id++;
    lua_pushvalue(L, -1);
    t->ref = luaL_ref(L, LUA_REGISTRYINDEX);
    t->next_live = s->live;
    if (s->live)
        s->live->prev_live = t;
    s->live = t;
    make_ready(t, nargs);
    return t;
}

static void task_cancel(struct ms_task *t)
{
    if (t->state == TASK_DONE)
        return;
    t->cancelled = 1;
    t->cancel_pending = 1;
    t->cancels++;
    if (t->state == TASK_WAITING) {
        struct ms_wait *w = t->wait;
        w->task = NULL;
        t->wait = NULL;
        t->sched->nwaiting--;
        w->cancel(w);
        make_ready(t, 0);
    }
}

/* sched.spawn(fn, ...) -> task. Raises on a non-function. */
static int l_sched_spawn(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TFUNCTION);
    task_new(L, 1, lua_gettop(L) - 1);
    return 1;
}

/* Pushes a finished task's outcome: true, results... or false, err. */
static int push_outcome(lua_State *L, int idx)
{
    lua_getiuservalue(L, idx, UV_RESULT);
    int res = lua_gettop(L);
    lua_getfield(L, res, "n");
    int n = (int)lua_tointeger(L, -1);
    lua_pop(L, 1);
    luaL_checkstack(L, n + 1, "too many results");
    lua_getfield(L, res, "ok");
    for (int i = 1; i <= n; i++)
        lua_rawgeti(L, res, i);
    return n + 1;
}

static void join_cancel(struct ms_wait *w)
{
    struct join_wait *j = (struct join_wait *)w;
    if (j->prev)
        j->prev->next = j->next;
    else
        j->target->joiners = j->next;
    if (j->next)
        j->next->prev = j->prev;
}

static int join_k(lua_State *L, int status, lua_KContext ctx)
{
    return push_outcome(L, 1);
}

/* task:join() -> true, results... | false, err. Yields until the task is done. */
static int l_task_join(lua_State *L)
{
    struct ms_task *t = check_task(L, 1);
    lua_settop(L, 1);
    if (t->state == TASK_DONE)
        return push_outcome(L, 1);
    struct ms_task *self = ms_sched_current(L, "task:join");
    if (self == t)
        return luaL_error(L, "task:join: a task cannot join itself");
    struct join_wait *j = lua_newuserdatauv(L, sizeof *j, 0); /* lives on our stack */
    memset(j, 0, sizeof *j);
    j->wait.cancel = join_cancel;
    j->target = t;
    j->next = t->joiners;
    if (t->joiners)
        t->joiners->prev = j;
    t->joiners = j;
    return ms_sched_suspend(L, &j->wait, join_k, 0);
}

/* task:cancel([reason]) -> nothing. The task's pending wait raises "cancelled". */
static int l_task_cancel(lua_State *L)
{
    struct ms_task *t = check_task(L, 1);
    if (t->state != TASK_DONE) {
        lua_settop(L, 2);
        if (lua_isnil(L, 2))
            lua_pushliteral(L, "cancelled");
        lua_setiuservalue(L, 1, UV_REASON);
        task_cancel(t);
    }
    return 0;
}

/* task:status() -> "ready" | "running" | "waiting" | "done" */
static int l_task_status(lua_State *L)
{
    static const char *const names[] = {"ready", "running", "waiting", "done"};
    lua_pushstring(L, names[check_task(L, 1)->state]);
    return 1;
}

/* task:done() -> boolean; task:result() -> like join, but never waits (nil while running). */
static int l_task_done(lua_State *L)
{
    lua_pushboolean(L, check_task(L, 1)->state == TASK_DONE);
    return 1;
}

static int l_task_result(lua_State *L)
{
    struct ms_task *t = check_task(L, 1);
    if (t->state != TASK_DONE)
        return 0;
    return push_outcome(L, 1);
}

/* task:cancelled() -> boolean, reason */
static int l_task_cancelled(lua_State *L)
{
    struct ms_task *t = check_task(L, 1);
    lua_pushboolean(L, t->cancelled);
    lua_getiuservalue(L, 1, UV_REASON);
    return 2;
}

static int l_task_tostring(lua_State *L)
{
    static const char *const names[] = {"ready", "running", "waiting", "done"};
    struct ms_task *t = check_task(L, 1);
    lua_pushfstring(L, "task %d (%s)", (int)t->id, names[t->state]);
    return 1;
}

static int l_task_id(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)check_task(L, 1)->id);
    return 1;
}

/* sched.current() -> the running task, or nil outside tasks. */
static int l_sched_current(lua_State *L)
{
    struct ms_task *t = task_of_thread(L);
    if (t == NULL || t->ref == LUA_NOREF)
        return 0;
    lua_rawgeti(L, LUA_REGISTRYINDEX, t->ref);
    return 1;
}

/* ---- sleeping and parking ------------------------------------------------------------------- */

/* A timer-backed wait: sleep, and park with a timeout. Freed when its handle has closed. */
struct timer_op {
    struct ms_wait wait;
    uv_timer_t timer;
    int parked; /* a park: unpark may wake it, the timer is a timeout */
    int timed;  /* the timer was started */
};

static void timer_op_free(uv_handle_t *h)
{
    free(h->data);
}

static void timer_op_close(struct timer_op *op)
{
    if (op->timed) {
        uv_timer_stop(&op->timer);
        uv_close((uv_handle_t *)&op->timer, timer_op_free);
    } else {
        free(op);
    }
}

static void timer_op_cancel(struct ms_wait *w)
{
    timer_op_close((struct timer_op *)w);
}

static void timer_op_fire(uv_timer_t *h)
{
    struct timer_op *op = h->data;
    if (ms_wait_pending(&op->wait)) {
        int n = 0;
        if (op->parked)
            n = ms_fail(ms_wait_thread(&op->wait), "timeout", "timeout");
        ms_sched_wake(&op->wait, n);
    }
    timer_op_close(op);
}

static struct timer_op *timer_op_new(lua_State *L, double seconds, int parked)
{
    struct timer_op *op = calloc(1, sizeof *op);
    if (op == NULL)
        luaL_error(L, "sched: out of memory");
    op->wait.cancel = timer_op_cancel;
    op->parked = parked;
    op->timer.data = op;
    if (seconds >= 0) {
        uint64_t ms = (uint64_t)ceil(seconds * 1000.0);
        uv_timer_init(ms_sched_loop(L), &op->timer);
        uv_timer_start(&op->timer, timer_op_fire, ms, 0);
        op->timed = 1;
    }
    return op;
}

/* sched.sleep(seconds) -> nothing. Yields; sleep(0) lets every ready task run first. */
static int l_sched_sleep(lua_State *L)
{
    double seconds = luaL_checknumber(L, 1);
    luaL_argcheck(L, seconds >= 0 && seconds == seconds, 1, "must be a non-negative number");
    ms_sched_current(L, "sched.sleep");
    lua_settop(L, 0);
    if (seconds == 0) {
        struct ms_task *t = task_of_thread(L);
        if (t->cancel_pending) {
            t->cancel_pending = 0;
            return push_cancelled(L);
        }
        t->k = NULL;
        t->nargs = 0;
        /* Still RUNNING when it yields, so task_step requeues it behind the ready tasks. */
        return lua_yieldk(L, 0, 0, resume_k);
    }
    struct timer_op *op = timer_op_new(L, seconds, 0);
    return ms_sched_suspend(L, &op->wait, NULL, 0);
}

static int park_k(lua_State *L, int status, lua_KContext ctx)
{
    return lua_gettop(L) - (int)ctx;
}

/* sched.park([timeout]) -> the values given to task:unpark(...), or nil, "timeout", "timeout".
 * Yields until another task unparks this one. */
static int l_sched_park(lua_State *L)
{
    double timeout = luaL_optnumber(L, 1, -1);
    ms_sched_current(L, "sched.park");
    lua_settop(L, 0);
    struct timer_op *op = timer_op_new(L, timeout, 1);
    return ms_sched_suspend(L, &op->wait, park_k, 0);
}

/* task:unpark(...) -> true if the task was parked and now wakes with those values. */
static int l_task_unpark(lua_State *L)
{
    struct ms_task *t = check_task(L, 1);
    if (t->state != TASK_WAITING || t->wait->cancel != timer_op_cancel ||
        !((struct timer_op *)t->wait)->parked) {
        lua_pushboolean(L, 0);
        return 1;
    }
    struct timer_op *op = (struct timer_op *)t->wait;
    int n = lua_gettop(L) - 1;
    lua_State *co = ms_wait_thread(&op->wait);
    luaL_checkstack(co, n, "too many values");
    lua_rotate(L, 2, 0);
    lua_xmove(L, co, n);
    ms_sched_wake(&op->wait, n);
    timer_op_close(op);
    lua_pushboolean(L, 1);
    return 1;
}

/* sched.now() -> monotonic seconds (float). Never yields. */
static int l_sched_now(lua_State *L)
{
    lua_pushnumber(L, (double)uv_hrtime() / 1e9);
    return 1;
}

/* ---- running the loop ------------------------------------------------------------------------ */

/* SIGINT and SIGTERM. The handler is ours, not uv_signal's, so that Lua code that has not
 * yielded for a while still hears a signal: the handler only counts it and wakes the loop, and
 * sched.check (called by instruction-count hooks) sees the count between two yields. The
 * first signal cancels the root task (the orderly stop: cleanups run, the journal is
 * finished); the second cancels it again (cleanup hooks are cut short, the journal is still
 * finished); the third ends the process by the signal at once. */
static volatile sig_atomic_t signals_received, last_signal;
static uv_async_t *volatile signal_target; /* the running scheduler's wakeup, or NULL */

static void on_signal(int signum)
{
    last_signal = signum;
    if (++signals_received >= 3) {
        signal(signum, SIG_DFL);
        raise(signum);
        return;
    }
    uv_async_t *target = signal_target;
    if (target)
        uv_async_send(target); /* async-signal-safe */
}

static void signals_install(struct ms_sched *s)
{
    signals_received = 0;
    signal_target = &s->signal_wakeup;
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

static void signals_uninstall(void)
{
    signal_target = NULL;
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
}

/* The signals received and not yet acted on: each cancels the root task. Safe from a loop
 * callback and from a running task (sched.check). */
static void handle_signals(struct ms_sched *s)
{
    while (s->signals_handled < signals_received) {
        s->signals_handled++;
        if (!s->interrupted)
            s->interrupted = last_signal;
        if (s->root)
            task_cancel(s->root);
    }
}

static void on_signal_wakeup(uv_async_t *h)
{
    handle_signals(h->data);
}

/* Runs the loop until the root task is done, then cancels the tasks it left behind and runs
 * until they are done too, so no timer or transfer outlives sched.run. Returns -1 when every
 * task waited with nothing left that could wake one (a deadlock). */
static int run_loop(struct ms_sched *s)
{
    int rc = 0;
    while (s->root->state != TASK_DONE) {
        int more = uv_run(&s->loop, UV_RUN_ONCE);
        if (!more && s->root->state != TASK_DONE && s->ready_head == NULL) {
            rc = -1;
            break;
        }
    }
    while (s->live) {
        for (struct ms_task *t = s->live; t; t = t->next_live)
            task_cancel(t);
        uv_run(&s->loop, UV_RUN_ONCE);
    }
    return rc;
}

/* sched.run(fn, ...) -> fn's results. Raises fn's error (with its traceback), "interrupted"
 * after SIGINT/SIGTERM cancelled it, or on a deadlock. Not callable from inside a task. */
static int l_sched_run(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TFUNCTION);
    struct ms_sched *s = sched_get(L);
    if (s->running || task_of_thread(L) != NULL)
        return luaL_error(L, "sched.run: already running (call sched.spawn inside a task)");
    int nargs = lua_gettop(L) - 1;
    s->running = 1;
    s->interrupted = 0;
    s->signals_handled = 0;
    s->from = L;
    s->root = task_new(L, 1, nargs);
    int root = lua_gettop(L);
    signals_install(s);
    int rc = run_loop(s);
    signals_uninstall();
    s->root = NULL;
    s->running = 0;
    s->from = NULL;
    if (rc < 0)
        return luaL_error(L, "sched.run: deadlock: every task is waiting and nothing can wake one");
    int n = push_outcome(L, root);
    int first = lua_gettop(L) - n + 1;
    if (!lua_toboolean(L, first)) {
        lua_pushvalue(L, first + 1);
        if (s->interrupted && is_cancellation(L, -1))
            lua_pushliteral(L, "interrupted");
        return lua_error(L);
    }
    return n - 1;
}

/* sched.interrupted() -> the signal number that interrupted the current run and how many
 * signals have been acted on (2: the stop was asked to be quick), or false. */
static int l_sched_interrupted(lua_State *L)
{
    struct ms_sched *s = sched_get(L);
    if (!s->interrupted) {
        lua_pushboolean(L, 0);
        return 1;
    }
    lua_pushinteger(L, s->interrupted);
    lua_pushinteger(L, s->signals_handled);
    return 2;
}

/* ---- guards: code that computes without waiting -------------------------------------------- */

/* A guard runs a function (a hook, the loading of a template) that may compute for long
 * without waiting: an instruction-count hook looks at it every GUARD_EVERY instructions.
 * There it yields to the loop after GUARD_SLICE of computing (when it can: inside a task, not
 * under a C call that cannot yield), so timers, I/O and signals are served and other tasks
 * run; and it stops the function once it has run its budget of instructions, or when a
 * signal arrived or its task was cancelled since the guard began (a step timeout or a halt,
 * which now can fire). Once stopped, every further instruction raises again: a pcall inside
 * the function can catch the error but not get past its next instruction. */
#define GUARD_EVERY 100000
#define GUARD_SLICE 20000000 /* ns */

struct guard {
    lua_Integer budget; /* instructions, or 0 for no limit */
    lua_Integer used;
    lua_Integer signals;   /* signals_received when it began */
    unsigned long cancels; /* its task's cancellations when it began */
    uint64_t slice_start;  /* uv_hrtime() when it last began to compute */
    int stopped;           /* 1: over budget, 2: cancelled */
    struct guard *outer;   /* the guard it runs inside, on the same thread */
    lua_Hook outer_hook;
    int outer_mask, outer_count;
};

/* The innermost guard of a thread lives in the thread's extra space. A thread made while one
 * ran inherits the count hook but not the guard (new threads copy the main thread's space,
 * which holds none): the hook then removes itself. */
static struct guard **guard_slot(lua_State *L)
{
    return (struct guard **)lua_getextraspace(L);
}

static void guard_stop(lua_State *L, lua_Debug *ar, struct guard *g)
{
    lua_sethook(L, lua_gethook(L), LUA_MASKCOUNT, 1);
    if (g->stopped == 2) {
        push_cancellation(L);
    } else {
        lua_getinfo(L, "Sl", ar);
        lua_pushfstring(L, "%s:%d: hook ran past its budget of %I instructions", ar->short_src,
                        ar->currentline, (LUAI_UACINT)g->budget);
    }
    lua_error(L);
}

static void guard_hook(lua_State *L, lua_Debug *ar)
{
    struct guard *g = *guard_slot(L);
    if (g == NULL) {
        lua_sethook(L, NULL, 0, 0);
        return;
    }
    if (g->stopped)
        guard_stop(L, ar, g);
    g->used += GUARD_EVERY;
    struct ms_task *t = task_of_thread(L);
    struct ms_sched *s = t ? t->sched : NULL;
    if (s && s->running)
        handle_signals(s);
    if (signals_received > g->signals || (t && t->cancels > g->cancels)) {
        g->stopped = 2;
        if (t)
            t->cancel_pending = 0; /* delivered now, not again at its next wait */
        guard_stop(L, ar, g);
    }
    if (g->budget > 0 && g->used > g->budget) {
        g->stopped = 1;
        guard_stop(L, ar, g);
    }
    uint64_t now = uv_hrtime();
    if (t && t->state == TASK_RUNNING && now - g->slice_start >= GUARD_SLICE &&
        lua_isyieldable(L)) {
        g->slice_start = now;
        t->preempted = 1;
        lua_yield(L, 0);
    }
}

/* Puts the error of a guarded function together: a traceback for a message; anything else (a
 * cancellation) passes through as it is. */
static int guard_msgh(lua_State *L)
{
    if (lua_type(L, 1) != LUA_TSTRING)
        return 1;
    const char *msg = lua_tostring(L, 1);
    luaL_traceback(L, L, msg, 1);
    return 1;
}

static int guard_finish(lua_State *L, int status, lua_KContext ctx)
{
    struct guard *g = lua_touserdata(L, 1);
    *guard_slot(L) = g->outer;
    lua_sethook(L, g->outer_hook, g->outer_mask, g->outer_count);
    lua_remove(L, 2); /* the message handler: results or the error follow the guard */
    lua_pushboolean(L, status == LUA_OK || status == LUA_YIELD);
    lua_replace(L, 1);
    return lua_gettop(L);
}

/* sched.guard(budget, fn, ...) -> true, fn's results... | false, error (with its traceback;
 * "cancelled" as it is). budget: instructions, or 0 for no limit. May yield (fn may wait, and
 * the guard yields to the loop while fn computes). */
static int l_sched_guard(lua_State *L)
{
    lua_Integer budget = luaL_checkinteger(L, 1);
    luaL_argcheck(L, budget >= 0, 1, "must be a non-negative number of instructions");
    luaL_checktype(L, 2, LUA_TFUNCTION);
    struct ms_task *t = task_of_thread(L);
    struct guard *g = lua_newuserdatauv(L, sizeof *g, 0);
    *g = (struct guard){
        .budget = budget,
        .signals = signals_received,
        .cancels = t ? t->cancels : 0,
        .slice_start = uv_hrtime(),
        .outer = *guard_slot(L),
        .outer_hook = lua_gethook(L),
        .outer_mask = lua_gethookmask(L),
        .outer_count = lua_gethookcount(L),
    };
    lua_replace(L, 1); /* 1: the guard, 2: fn, 3...: its arguments */
    lua_pushcfunction(L, guard_msgh);
    lua_insert(L, 2); /* 2: the message handler, 3: fn */
    *guard_slot(L) = g;
    lua_sethook(L, guard_hook, LUA_MASKCOUNT, GUARD_EVERY);
    int status = lua_pcallk(L, lua_gettop(L) - 3, LUA_MULTRET, 2, 0, guard_finish);
    return guard_finish(L, status, 0);
}

static void count_active(uv_handle_t *h, void *arg)
{
    if (uv_is_active(h) && !uv_is_closing(h))
        (*(int *)arg)++;
}

/* sched.stats() -> {tasks=, waiting=, ready=, handles=}: live tasks, tasks suspended on an
 * operation, and active loop handles other than the scheduler's own. */
static int l_sched_stats(lua_State *L)
{
    struct ms_sched *s = sched_get(L);
    int tasks = 0, ready = 0, handles = 0;
    for (struct ms_task *t = s->live; t; t = t->next_live)
        tasks++;
    for (struct ms_task *t = s->ready_head; t; t = t->next_ready)
        ready++;
    uv_walk(&s->loop, count_active, &handles);
    handles -=
        uv_is_active((uv_handle_t *)&s->idle) + uv_is_active((uv_handle_t *)&s->signal_wakeup);
    lua_createtable(L, 0, 4);
    lua_pushinteger(L, tasks);
    lua_setfield(L, -2, "tasks");
    lua_pushinteger(L, s->nwaiting);
    lua_setfield(L, -2, "waiting");
    lua_pushinteger(L, ready);
    lua_setfield(L, -2, "ready");
    lua_pushinteger(L, handles);
    lua_setfield(L, -2, "handles");
    return 1;
}

static const luaL_Reg task_methods[] = {
    {"join", l_task_join},     {"cancel", l_task_cancel}, {"status", l_task_status},
    {"done", l_task_done},     {"result", l_task_result}, {"cancelled", l_task_cancelled},
    {"unpark", l_task_unpark}, {"id", l_task_id},         {NULL, NULL},
};

static const luaL_Reg task_meta[] = {
    {"__tostring", l_task_tostring},
    {NULL, NULL},
};

static const luaL_Reg funcs[] = {
    {"run", l_sched_run},     {"spawn", l_sched_spawn},
    {"sleep", l_sched_sleep}, {"now", l_sched_now},
    {"park", l_sched_park},   {"current", l_sched_current},
    {"stats", l_sched_stats}, {"interrupted", l_sched_interrupted},
    {"guard", l_sched_guard}, {NULL, NULL},
};

int luaopen_moonship_core_sched(lua_State *L)
{
    /* No guard yet: threads made from now on copy this (lua_newstate leaves it undefined). */
    lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
    *guard_slot(lua_tothread(L, -1)) = NULL;
    lua_pop(L, 1);
    if (luaL_newmetatable(L, TASK_MT)) {
        luaL_setfuncs(L, task_meta, 0);
        luaL_newlib(L, task_methods);
        lua_setfield(L, -2, "__index");
    }
    lua_pop(L, 1);
    luaL_newlib(L, funcs);
    sched_get(L);
    push_cancellation(L);
    lua_setfield(L, -2, "cancelled");
    return 1;
}
