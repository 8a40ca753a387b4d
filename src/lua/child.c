/* A child process and its pipes on the scheduler's loop (uv_spawn): the handles and their single
 * cleanup path, reading into a buffer per stream with a high-water mark, queued writes to stdin,
 * and the kill that escalates from SIGTERM to SIGKILL. Apart from process.c, which is the Lua
 * surface (options, the Process userdata, the waits), because this is the part libuv calls back
 * into: it never touches a Lua stack, it only wakes the tasks waiting on the child. It stays in
 * src/lua because those waits are the scheduler's (lua/sched.h). */
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "lua/child.h"

#define READ_CHUNK 65536
#define HIGH_WATER (1u << 20) /* a spawned child's unread output beyond this pauses the pipe */

/* ---- handles and their single cleanup path ------------------------------------------------- */

static void proc_unlink_free(struct proc *p)
{
    if (p->reg) {
        if (p->prev)
            p->prev->next = p->next;
        else
            p->reg->all = p->next;
        if (p->next)
            p->next->prev = p->prev;
    }
    for (int i = 0; i < 3; i++)
        free(p->io[i].buf.data);
    free(p->name);
    free(p);
}

void ms_child_maybe_free(struct proc *p)
{
    if (p && p->nopen == 0 && !p->boxed)
        proc_unlink_free(p);
}

static void on_close(uv_handle_t *h)
{
    struct proc *p = h->data;
    p->nopen--;
    ms_child_maybe_free(p);
}

void ms_child_stream_close(struct proc *p, int i)
{
    struct stream *s = &p->io[i];
    s->eof = 1;
    s->reading = 0;
    if (s->open) {
        s->open = 0;
        uv_close((uv_handle_t *)&s->pipe, on_close);
    }
}

void ms_child_timer_open(struct proc *p, uv_loop_t *loop)
{
    uv_timer_init(loop, &p->timer);
    p->timer.data = p;
    p->nopen++;
    p->timer_open = 1;
}

void ms_child_timer_close(struct proc *p)
{
    if (p->timer_open) {
        p->timer_open = 0;
        uv_close((uv_handle_t *)&p->timer, on_close);
    }
}

void ms_child_process_close(struct proc *p)
{
    if (p->process_open) {
        p->process_open = 0;
        uv_close((uv_handle_t *)&p->process, on_close);
    }
}

/* Wakes every task waiting on p: each re-checks what it waits for and may wait again. */
static void proc_notify(struct proc *p)
{
    for (int i = 0; i < OP_COUNT; i++)
        if (ms_wait_pending(&p->ops[i].wait))
            ms_sched_wake(&p->ops[i].wait, 0);
}

static void reg_reaped(struct registry *reg)
{
    reg->ndetached--;
    if (reg->ndetached == 0 && ms_wait_pending(&reg->reap))
        ms_sched_wake(&reg->reap, 0);
}

static void on_child_exit(uv_process_t *h, int64_t status, int term_signal)
{
    struct proc *p = h->data;
    p->exited = 1;
    p->status = status;
    p->term_signal = term_signal;
    ms_child_process_close(p);
    ms_child_timer_close(p);
    if (p->detached && p->reg)
        reg_reaped(p->reg);
    proc_notify(p);
}

/* Stops using p from Lua: closes the pipes and the timer (unless it escalates a kill); a child
 * still running keeps its process handle until it exits. Idempotent. */
void ms_child_detach(struct proc *p)
{
    if (p->detached)
        return;
    p->detached = 1;
    if (p->process_open && !p->exited && p->kill_on_close)
        uv_process_kill(&p->process, p->kill_on_close);
    for (int i = 0; i < 3; i++)
        ms_child_stream_close(p, i);
    if (!p->kill_phase || p->exited)
        ms_child_timer_close(p);
    /* The handles stay referenced, so a task in wait_detached keeps the loop alive. */
    if (p->process_open && !p->exited && p->reg)
        p->reg->ndetached++;
    proc_notify(p);
}

/* ---- reading ------------------------------------------------------------------------------- */

static struct stream *stream_of(const uv_handle_t *h, struct proc *p)
{
    for (int i = 0; i < 3; i++)
        if ((const uv_handle_t *)&p->io[i].pipe == h)
            return &p->io[i];
    return NULL;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *out)
{
    struct stream *s = stream_of(h, h->data);
    struct buf *b = &s->buf;
    if (b->off > 0 && b->off == b->len)
        b->off = b->len = 0;
    if (b->cap - b->len < READ_CHUNK) {
        if (b->off > 0) { /* reclaim what was consumed before growing */
            memmove(b->data, b->data + b->off, b->len - b->off);
            b->len -= b->off;
            b->off = 0;
        }
        size_t cap = b->cap ? b->cap : READ_CHUNK;
        while (cap - b->len < READ_CHUNK)
            cap *= 2;
        char *d = cap == b->cap ? b->data : realloc(b->data, cap);
        if (d == NULL) {
            *out = uv_buf_init(NULL, 0); /* libuv reports UV_ENOBUFS to on_read */
            return;
        }
        b->data = d;
        b->cap = cap;
    }
    *out = uv_buf_init(b->data + b->len, (unsigned)(b->cap - b->len));
}

static void stream_pause_if_full(struct stream *s)
{
    if (s->reading && !s->unlimited && s->buf.len - s->buf.off > HIGH_WATER) {
        uv_read_stop((uv_stream_t *)&s->pipe);
        s->reading = 0;
    }
}

static void on_read(uv_stream_t *h, ssize_t n, const uv_buf_t *unused)
{
    struct proc *p = h->data;
    struct stream *s = stream_of((uv_handle_t *)h, p);
    if (n > 0) {
        s->buf.len += (size_t)n;
        stream_pause_if_full(s);
    } else if (n < 0) {
        if (n != UV_EOF)
            s->err = (int)n;
        ms_child_stream_close(p, (int)(s - p->io));
    }
    if (n != 0)
        proc_notify(p);
}

void ms_child_stream_resume(struct stream *s)
{
    if (s->open && !s->reading && !s->eof &&
        (s->unlimited || s->buf.len - s->buf.off <= HIGH_WATER)) {
        if (uv_read_start((uv_stream_t *)&s->pipe, on_alloc, on_read) == 0)
            s->reading = 1;
    }
}

/* ---- spawning ------------------------------------------------------------------------------ */

/* Connects the child's standard stream i as its mode says: a pipe of ours, our own descriptor,
 * or nothing. */
static void open_stdio(struct proc *p, uv_loop_t *loop, int i, enum io_mode mode,
                       uv_stdio_container_t *c)
{
    struct stream *s = &p->io[i];
    s->eof = 1;
    if (mode == IO_PIPE || mode == IO_DATA) {
        uv_pipe_init(loop, &s->pipe, 0);
        s->pipe.data = p;
        p->nopen++;
        s->open = s->piped = 1;
        s->eof = 0;
        s->unlimited = p->capture;
        c->flags = UV_CREATE_PIPE | (i == S_IN ? UV_READABLE_PIPE : UV_WRITABLE_PIPE);
        c->data.stream = (uv_stream_t *)&s->pipe;
    } else if (mode == IO_INHERIT) {
        c->flags = UV_INHERIT_FD;
        c->data.fd = i;
    } else {
        c->flags = UV_IGNORE;
    }
}

int ms_child_spawn(struct proc *p, uv_loop_t *loop, const struct child_spec *spec)
{
    uv_stdio_container_t stdio[3];
    for (int i = 0; i < 3; i++)
        open_stdio(p, loop, i, spec->modes[i], &stdio[i]);
    uv_process_options_t o;
    memset(&o, 0, sizeof o);
    o.exit_cb = on_child_exit;
    o.file = spec->argv[0];
    o.args = spec->argv;
    o.env = spec->env;
    o.cwd = spec->cwd;
    o.stdio_count = 3;
    o.stdio = stdio;
    if (spec->new_session)
        o.flags |= UV_PROCESS_DETACHED; /* setsid: out of the terminal's foreground group */
    p->process.data = p;
    int rc = uv_spawn(loop, &p->process, &o);
    p->nopen++;
    p->process_open = 1;
    if (rc != 0) {
        p->exited = 1; /* nothing to wait for */
        for (int i = 0; i < 3; i++)
            ms_child_stream_close(p, i);
        ms_child_process_close(p);
        return rc;
    }
    p->spawned = 1;
    p->pid = p->process.pid;
    for (int i = S_OUT; i <= S_ERR; i++)
        ms_child_stream_resume(&p->io[i]);
    return 0;
}

/* ---- writing ------------------------------------------------------------------------------- */

struct write_req {
    uv_write_t req;
    struct proc *p;
    char data[];
};

static void on_write(uv_write_t *req, int status)
{
    struct write_req *w = (struct write_req *)req;
    struct proc *p = w->p;
    free(w);
    p->pending_writes--;
    if (status < 0 && status != UV_ECANCELED && p->write_err == 0)
        p->write_err = status;
    if (p->pending_writes == 0 && p->close_stdin_after)
        ms_child_stream_close(p, S_IN);
    proc_notify(p);
}

/* Queues data[0..len) on stdin (copied). A failure is recorded in p->write_err. */
void ms_child_write(struct proc *p, const char *data, size_t len)
{
    struct write_req *w = malloc(sizeof *w + len);
    if (w == NULL) {
        p->write_err = UV_ENOMEM;
        return;
    }
    memcpy(w->data, data, len);
    w->p = p;
    uv_buf_t buf = uv_buf_init(w->data, (unsigned)len);
    int rc = uv_write(&w->req, (uv_stream_t *)&p->io[S_IN].pipe, &buf, 1, on_write);
    if (rc < 0) {
        free(w);
        p->write_err = rc;
        return;
    }
    p->pending_writes++;
}

/* ---- killing ------------------------------------------------------------------------------- */

static void on_timer(uv_timer_t *h)
{
    struct proc *p = h->data;
    if (p->exited)
        return;
    if (!p->kill_phase) {
        p->timed_out = 1;
        ms_child_kill(p, SIGTERM);
    } else {
        uv_process_kill(&p->process, SIGKILL);
    }
}

/* Sends sig, then SIGKILL after the grace period unless the child has exited by then. */
void ms_child_kill(struct proc *p, int sig)
{
    if (p->exited || !p->process_open)
        return;
    p->kill_phase = 1;
    uv_process_kill(&p->process, sig);
    if (!p->timer_open)
        ms_child_timer_open(p, p->process.loop);
    uv_timer_start(&p->timer, on_timer, (uint64_t)ceil(p->grace * 1000.0), 0);
}

void ms_child_arm_timeout(struct proc *p)
{
    if (p->timeout >= 0 && p->timer_open)
        uv_timer_start(&p->timer, on_timer, (uint64_t)ceil(p->timeout * 1000.0), 0);
}
