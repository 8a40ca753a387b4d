/* The scheduler's C side: what a binding needs to suspend the running task on a pending
 * operation and to wake it from a loop callback. Only the scheduler calls lua_resume. */
#ifndef MS_SCHED_H
#define MS_SCHED_H

#include <lua.h>
#include <uv.h>

struct ms_task;
struct ms_wait;

/* Stops the pending operation. After it returns, no callback of the operation may wake the
 * task: the scheduler has already detached the wait and will raise "cancelled" in the task. */
typedef void (*ms_wait_cancel_fn)(struct ms_wait *w);

/* Embedded in an operation's state; owned by the operation. */
struct ms_wait {
    struct ms_task *task;     /* the suspended task, NULL when not pending */
    ms_wait_cancel_fn cancel; /* required */
};

/* The loop every task runs on (created on first use, one per Lua state). */
uv_loop_t *ms_sched_loop(lua_State *L);

/* The task running on L; raises "<what> must be called inside a task (use sched.run)" when L is
 * not a task's thread. */
struct ms_task *ms_sched_current(lua_State *L, const char *what);

/* Suspends the task running on L until ms_sched_wake(w, n): then k(L, LUA_YIELD, ctx) runs
 * with the n woken values on top of the stack (with k NULL, those n values are returned).
 * If the task is cancelled meanwhile, w->cancel runs and the call raises "cancelled".
 * Use as: return ms_sched_suspend(L, w, k, ctx); */
int ms_sched_suspend(lua_State *L, struct ms_wait *w, lua_KFunction k, lua_KContext ctx);

/* The suspended task's thread, to push the values of a wake onto. */
lua_State *ms_wait_thread(const struct ms_wait *w);

/* Queues the task of w with the n values on top of ms_wait_thread(w); w is no longer pending.
 * Safe from any loop callback: the task resumes on a later turn, never inside this call. */
void ms_sched_wake(struct ms_wait *w, int n);

#define ms_wait_pending(w) ((w)->task != NULL)

/* A call a binding wants made as soon as the running task's step ends, before the next ready
 * task runs (or on the next loop turn when no task runs): an HTTP request started by a task
 * goes out while the tasks after it still compute, instead of after all of them. Embedded in
 * the binding's state; ms_defer_cancel before that state goes. */
struct ms_defer {
    void (*fn)(void *ud);
    void *ud;
    struct ms_sched *sched; /* set by ms_defer_init */
    struct ms_defer *next;  /* the scheduler's queue */
    int queued;
};

void ms_defer_init(lua_State *L, struct ms_defer *d, void (*fn)(void *ud), void *ud);
/* Queues the call once (queuing a queued call again does nothing). Safe from any callback. */
void ms_defer_queue(struct ms_defer *d);
void ms_defer_cancel(struct ms_defer *d);

#endif
