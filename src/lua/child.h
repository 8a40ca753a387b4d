/* A child process and its pipes on the scheduler's loop, as process.c's Lua surface drives
 * it: the state of one child (struct proc), the per-Lua-state list of children, and the
 * operations that libuv calls back into or that several Process methods share. Internal to
 * process.c and child.c. */
#ifndef MS_CHILD_H
#define MS_CHILD_H

#include <stdint.h>
#include <uv.h>

#include "lua/sched.h"

enum { S_IN, S_OUT, S_ERR };
enum { OP_OUT, OP_ERR, OP_WRITE, OP_EXIT, OP_COUNT };

struct buf {
    char *data; /* owns */
    size_t off, len, cap;
};

struct proc;

/* One kind of wait on a process; at most one task waits in each. */
struct op {
    struct ms_wait wait;
    struct proc *p;
};

struct stream {
    uv_pipe_t pipe;
    unsigned piped : 1;     /* the stream is a pipe we created */
    unsigned open : 1;      /* the pipe handle is initialized and not closing */
    unsigned eof : 1;       /* nothing more will arrive (EOF, error or closed) */
    unsigned reading : 1;   /* uv_read_start is active */
    unsigned unlimited : 1; /* no high-water mark (run, read_all) */
    int err;                /* a read error (negative uv code) */
    struct buf buf;
};

/* The per-Lua-state list of processes, so lua_close can close what is still open. */
struct registry {
    struct proc *all;
    struct ms_wait reap; /* a task in wait_detached */
    int ndetached;       /* detached children not yet exited */
    uv_loop_t *loop;
};

struct proc {
    struct registry *reg; /* NULL once lua_close has started */
    struct proc *next, *prev;
    uv_process_t process;
    uv_timer_t timer;
    struct stream io[3];
    struct op ops[OP_COUNT];
    char *name; /* owns: argv[0], for messages */
    int nopen;  /* handles whose close callback has not run yet */
    int pid;
    unsigned boxed : 1, spawned : 1, exited : 1, process_open : 1, timer_open : 1, detached : 1,
        capture : 1, timed_out : 1, close_stdin_after : 1, kill_phase : 1;
    int kill_on_close; /* signal sent when the box closes with the child running, or 0 */
    int64_t status;
    int term_signal;
    int pending_writes;
    int write_err;
    double timeout, grace;
};

/* How a standard stream of the child is connected (IO_DATA: a pipe that gets the given text). */
enum io_mode { IO_NULL, IO_PIPE, IO_INHERIT, IO_DATA };

/* What to start; borrowed for the duration of ms_child_spawn. */
struct child_spec {
    char **argv;           /* NULL-terminated; argv[0] is the program */
    char **env;            /* NULL-terminated "NAME=value", or NULL to inherit ours */
    const char *cwd;       /* or NULL */
    enum io_mode modes[3]; /* stdin, stdout, stderr */
    int new_session;       /* setsid: out of the terminal's foreground group */
};

/* Opens the pipes spec asks for and starts the child on loop. Returns 0, or a negative uv code
 * with p's handles closing (p is freed once they have closed and it is no longer boxed). */
int ms_child_spawn(struct proc *p, uv_loop_t *loop, const struct child_spec *spec);

/* Frees p once it is unboxed and all its handles have closed. */
void ms_child_maybe_free(struct proc *p);
void ms_child_stream_close(struct proc *p, int i);
void ms_child_timer_open(struct proc *p, uv_loop_t *loop);
void ms_child_timer_close(struct proc *p);
void ms_child_process_close(struct proc *p);
/* Stops using p from Lua: closes the pipes and the timer (unless it escalates a kill); a child
 * still running keeps its process handle until it exits. Idempotent. */
void ms_child_detach(struct proc *p);

/* Reads again into the stream's buffer when it is open and below the high-water mark. */
void ms_child_stream_resume(struct stream *s);
/* Queues data[0..len) on stdin (copied). A failure is recorded in p->write_err. */
void ms_child_write(struct proc *p, const char *data, size_t len);
/* Sends sig, then SIGKILL after the grace period unless the child has exited by then. */
void ms_child_kill(struct proc *p, int sig);
/* Starts p->timeout (process.run): when it expires the child is killed as by ms_child_kill. */
void ms_child_arm_timeout(struct proc *p);

#endif
