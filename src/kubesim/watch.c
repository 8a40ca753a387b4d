/* Streaming answers: watches (newline-delimited events replayed from the bounded history,
 * bookmarks, the initial-events-end bookmark of streaming lists, 410 ERROR for expired
 * resourceVersions, timeoutSeconds, injected closes) and `log?follow=true`. Each stream owns
 * its connection's thread (thread-per-connection), so the content callbacks block on the
 * server's event condition variable instead of polling. */
#include "http.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define OUT_HIGH (64 * 1024)

struct wctx {
    struct ks_server *s;
    struct MHD_Connection *conn;
    struct ks_rtype *rt;
    char *ns;                    /* owns; NULL = every namespace */
    struct ks_selector *ls, *fs; /* owns */
    uint64_t cursor;             /* every event up to this rv has been considered */
    struct ks_buf out;
    size_t off;
    int table, bookmarks, done;
    double deadline, next_bookmark, close_at, expire_at; /* monotonic seconds; 0 = none */
};

static void abs_deadline(struct timespec *ts, double secs)
{
    clock_gettime(CLOCK_REALTIME, ts);
    double t = (double)ts->tv_sec + (double)ts->tv_nsec / 1e9 + secs;
    ts->tv_sec = (time_t)t;
    ts->tv_nsec = (long)((t - (double)ts->tv_sec) * 1e9);
}

/* The peer hung up: stop streaming to it (a blocked stream would otherwise live until its
 * timeout and keep counting as an open watch). */
static int peer_gone(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!ci) return 0;
    struct pollfd p = {ci->connect_fd, POLLRDHUP, 0};
    return poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR));
}

static void add_bookmark(struct wctx *w, uint64_t rv, int initial_end)
{
    char *gv = ks_rtype_gv(w->rt);
    ks_buf_printf(&w->out,
                  "{\"type\":\"BOOKMARK\",\"object\":{\"kind\":\"%s\",\"apiVersion\":\"%s\",\"metadata\":{"
                  "\"resourceVersion\":\"%llu\"%s}}}\n",
                  w->rt->kind, gv ? gv : "v1", (unsigned long long)rv,
                  initial_end ? ",\"annotations\":{\"k8s.io/initial-events-end\":\"true\"}" : "");
    free(gv);
}

static void add_expired(struct wctx *w, uint64_t asked, uint64_t oldest)
{
    ks_buf_printf(&w->out,
                  "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},"
                  "\"status\":\"Failure\",\"message\":\"too old resource version: %llu (%llu)\",\"reason\":"
                  "\"Expired\",\"code\":410}}\n",
                  (unsigned long long)asked, (unsigned long long)oldest);
    w->done = 1;
}

static int matches(struct wctx *w, const cJSON *obj) { return ks_sel_match(w->ls, obj) && ks_sel_match(w->fs, obj); }

static void add_event(struct wctx *w, const char *type, const cJSON *obj, const char *line, size_t len)
{
    if (!w->table) {
        if (line) {
            ks_buf_add(&w->out, line, len);
            return;
        }
        char *o = ks_jprint(obj);
        if (o) ks_buf_printf(&w->out, "{\"type\":\"%s\",\"object\":%s}\n", type, o);
        free(o);
        return;
    }
    cJSON *items = cJSON_CreateArray();
    if (items) cJSON_AddItemToArray(items, cJSON_Duplicate(obj, 1));
    const char *rv = ks_jstr(ks_j(obj, "metadata"), "resourceVersion");
    cJSON *t = ks_table_of(w->s, w->rt, items, rv);
    char *o = ks_jprint(t);
    cJSON_Delete(t);
    if (o) ks_buf_printf(&w->out, "{\"type\":\"%s\",\"object\":%s}\n", type, o);
    free(o);
}

/* The event's object, parsed from its line on first use (under the lock): printing it is
 * needed for every write, a parsed copy only for filtered and Table watches. NULL on OOM. */
static const cJSON *event_obj(struct ks_event *e)
{
    static const char key[] = ",\"object\":";
    if (e->obj || !e->line) return e->obj;
    const char *p = strstr(e->line, key);
    if (!p) return NULL;
    p += sizeof key - 1;
    size_t len = (size_t)(e->line + e->line_len - p);
    if (len < 2) return NULL;
    e->obj = cJSON_ParseWithLength(p, len - 2); /* without the closing "}\n" */
    cJSON_DeleteItemFromObjectCaseSensitive(ks_j(e->obj, "metadata"), "managedFields");
    return e->obj;
}

/* A MODIFIED event sent under another type. Entering the selection (ADDED) it is the stored
 * line with its type swapped (the snapshot lacks managedFields, the line has the whole object);
 * leaving it (DELETED) it is the state before, the last one that matched, at the event's
 * resourceVersion, as the apiserver's watch cache sends it (kept without its managedFields). */
static void add_retyped(struct wctx *w, const char *type, struct ks_event *e)
{
    static const char prefix[] = "{\"type\":\"MODIFIED\",\"object\":";
    if (!strcmp(type, "DELETED") && e->prev) {
        cJSON *last = cJSON_Duplicate(e->prev, 1);
        char rv[24];
        snprintf(rv, sizeof rv, "%llu", (unsigned long long)e->rv);
        if (last) ks_jset_str(ks_jobj(last, "metadata"), "resourceVersion", rv);
        if (last) add_event(w, type, last, NULL, 0);
        cJSON_Delete(last);
        return;
    }
    if (w->table || e->line_len < sizeof prefix - 1 || strncmp(e->line, prefix, sizeof prefix - 1)) {
        const cJSON *obj = event_obj(e);
        if (obj) add_event(w, type, obj, NULL, 0);
        return;
    }
    ks_buf_printf(&w->out, "{\"type\":\"%s\",\"object\":", type);
    ks_buf_add(&w->out, e->line + sizeof prefix - 1, e->line_len - (sizeof prefix - 1));
}

/* Index (0..ring_len) of the first history entry with rv > cursor. */
static size_t first_after(struct ks_server *s, uint64_t cursor)
{
    size_t lo = 0, hi = s->ring_len;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (s->ring[(s->ring_start + mid) % s->ring_cap].rv <= cursor)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static void pump(struct wctx *w)
{
    static const char *names[] = {"ADDED", "MODIFIED", "DELETED"};
    struct ks_server *s = w->s;
    if (w->cursor < s->evicted_rv) {
        add_expired(w, w->cursor, s->evicted_rv + 1);
        return;
    }
    for (size_t i = first_after(s, w->cursor); i < s->ring_len && w->out.len < OUT_HIGH; i++) {
        struct ks_event *e = &s->ring[(s->ring_start + i) % s->ring_cap];
        w->cursor = e->rv;
        if (e->rt != w->rt || (w->ns && strcmp(e->ns, w->ns))) continue;
        int filtered = w->ls || w->fs;
        const cJSON *obj = filtered || w->table ? event_obj(e) : NULL;
        if ((filtered || w->table) && !obj) continue; /* out of memory: lost, as when not recorded */
        int now_in = !filtered || matches(w, obj);
        if (e->type != KS_MODIFIED || !filtered) {
            if (now_in) add_event(w, names[e->type], obj, e->line, e->line_len);
            continue;
        }
        /* a filtered watch: entering the selection is ADDED, leaving it DELETED */
        int was_in = e->prev ? matches(w, e->prev) : now_in;
        if (now_in && was_in)
            add_event(w, "MODIFIED", obj, e->line, e->line_len);
        else if (now_in || was_in)
            add_retyped(w, now_in ? "ADDED" : "DELETED", e);
    }
}

static ssize_t watch_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    struct wctx *w = cls;
    struct ks_server *s = w->s;
    if (w->off >= w->out.len) {
        w->out.len = 0;
        w->off = 0;
        if (w->done) return MHD_CONTENT_READER_END_OF_STREAM;
        pthread_mutex_lock(&s->mu);
        while (!w->done && w->out.len == 0) {
            pump(w);
            if (w->out.len) break;
            double now = ks_mono();
            if (s->stopping) {
                w->done = 1;
            } else if (w->expire_at && now >= w->expire_at) {
                pthread_mutex_lock(&s->stats_mu);
                ks_stat_inc(&s->stats.faults, "watch_expire");
                pthread_mutex_unlock(&s->stats_mu);
                add_expired(w, w->cursor, s->rv);
            } else if (w->close_at && now >= w->close_at) {
                pthread_mutex_lock(&s->stats_mu);
                ks_stat_inc(&s->stats.faults, "watch_close");
                pthread_mutex_unlock(&s->stats_mu);
                w->done = 1;
            } else if (now >= w->deadline) {
                if (w->bookmarks) add_bookmark(w, s->rv, 0);
                w->done = 1;
            } else if (w->bookmarks && now >= w->next_bookmark) {
                w->cursor = s->rv;
                add_bookmark(w, s->rv, 0);
                w->next_bookmark = now + s->bookmark_every;
            } else if (peer_gone(w->conn)) {
                pthread_mutex_unlock(&s->mu);
                return MHD_CONTENT_READER_END_WITH_ERROR;
            } else {
                double wake = w->deadline;
                if (w->bookmarks && w->next_bookmark < wake) wake = w->next_bookmark;
                if (w->close_at && w->close_at < wake) wake = w->close_at;
                if (w->expire_at && w->expire_at < wake) wake = w->expire_at;
                double wait = wake - now;
                if (wait > 1.0) wait = 1.0; /* re-check the peer every second */
                struct timespec ts;
                abs_deadline(&ts, wait > 0 ? wait : 0.001);
                pthread_cond_timedwait(&s->ev_cond, &s->mu, &ts);
            }
        }
        pthread_mutex_unlock(&s->mu);
        if (!w->out.len) return MHD_CONTENT_READER_END_OF_STREAM;
        if (w->out.oom) return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    size_t n = w->out.len - w->off;
    if (n > max) n = max;
    memcpy(buf, w->out.data + w->off, n);
    w->off += n;
    return (ssize_t)n;
}

static void watch_free(void *cls)
{
    struct wctx *w = cls;
    pthread_mutex_lock(&w->s->stats_mu);
    w->s->stats.watches_open--;
    pthread_mutex_unlock(&w->s->stats_mu);
    free(w->ns);
    ks_sel_free(w->ls);
    ks_sel_free(w->fs);
    ks_buf_free(&w->out);
    free(w);
}

void ks_watch_start(struct ks_req *r, struct ks_resp *resp, struct ks_selector *ls, struct ks_selector *fs,
                    const char *ns)
{
    struct ks_server *s = r->s;
    struct wctx *w = calloc(1, sizeof *w);
    if (!w) {
        ks_sel_free(ls), ks_sel_free(fs);
        ks_resp_error(resp, 500, "InternalError", "out of memory");
        return;
    }
    w->s = s;
    w->conn = r->conn;
    w->rt = r->rt;
    w->ns = ns ? ks_strdup(ns) : NULL;
    w->ls = ls;
    w->fs = fs;
    w->table = ks_wants_table(r);
    w->bookmarks = ks_qbool(r, "allowWatchBookmarks");
    ks_buf_init(&w->out);
    const char *rvs = ks_q(r, "resourceVersion");
    const char *sie = ks_q(r, "sendInitialEvents");
    int initial = sie && !strcmp(sie, "true");
    const char *ts = ks_q(r, "timeoutSeconds");
    double now = ks_mono(), timeout = ts ? atof(ts) : 0;
    pthread_mutex_lock(&s->mu);
    pthread_mutex_lock(&s->stats_mu);
    if (timeout <= 0) timeout = 1800 + 1800 * ks_rng_unit(&s->frng);
    s->stats.watches_open++;
    s->stats.watches_total++;
    pthread_mutex_unlock(&s->stats_mu);
    w->deadline = now + timeout;
    w->next_bookmark = now + s->bookmark_every;
    if (s->faults.watch_close_every > 0) w->close_at = now + s->faults.watch_close_every;
    if (s->faults.expire_every > 0) w->expire_at = now + s->faults.expire_every;
    uint64_t asked = rvs && *rvs ? strtoull(rvs, NULL, 10) : 0;
    if (initial || !rvs || !*rvs || asked == 0) {
        /* synthetic ADDED events for the current state, then changes */
        size_t n;
        struct ks_obj **all = ks_obj_list(s, r->rt, w->ns, &n);
        for (size_t i = 0; all && i < n; i++) {
            if (!ks_sel_match(ls, all[i]->json) || !ks_sel_match(fs, all[i]->json)) continue;
            size_t len;
            const char *t = w->table ? NULL : ks_obj_text(all[i], &len);
            if (t) {
                ks_buf_adds(&w->out, "{\"type\":\"ADDED\",\"object\":");
                ks_buf_add(&w->out, t, len);
                ks_buf_adds(&w->out, "}\n");
            } else {
                add_event(w, "ADDED", all[i]->json, NULL, 0);
            }
        }
        free(all);
        w->cursor = s->rv;
        if (initial) add_bookmark(w, s->rv, 1);
    } else if (asked < s->evicted_rv) {
        add_expired(w, asked, s->evicted_rv + 1);
    } else {
        w->cursor = asked > s->rv ? s->rv : asked;
    }
    pthread_mutex_unlock(&s->mu);
    resp->stream = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024, watch_read, w, watch_free);
    if (!resp->stream) {
        watch_free(w);
        ks_resp_error(resp, 500, "InternalError", "out of memory");
        return;
    }
    MHD_add_response_header(resp->stream, "Content-Type",
                            w->table ? "application/json;as=Table;v=v1;g=meta.k8s.io" : "application/json");
    resp->code = 200;
}

/* ---- logs ---- */

struct lctx {
    struct ks_server *s;
    struct MHD_Connection *conn;
    char uid[64];
    char *container; /* owns */
    size_t cursor;
    struct ks_buf out;
    size_t off;
    int done;
};

static ssize_t log_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    struct lctx *l = cls;
    struct ks_server *s = l->s;
    if (l->off >= l->out.len) {
        l->out.len = 0;
        l->off = 0;
        if (l->done) return MHD_CONTENT_READER_END_OF_STREAM;
        pthread_mutex_lock(&s->mu);
        while (!l->done && !l->out.len) {
            struct ks_obj *pod = ks_obj_by_uid(s, l->uid);
            char *err = NULL;
            int finished = 0;
            if (!pod || s->stopping) {
                l->done = 1;
                break;
            }
            ks_ctl_pod_log(s, pod, l->container, 0, &l->cursor, &l->out, &finished, &err);
            free(err);
            if (finished) l->done = 1;
            if (l->out.len || l->done) break;
            if (peer_gone(l->conn)) {
                pthread_mutex_unlock(&s->mu);
                return MHD_CONTENT_READER_END_WITH_ERROR;
            }
            struct timespec ts;
            abs_deadline(&ts, 0.05);
            pthread_cond_timedwait(&s->ev_cond, &s->mu, &ts);
        }
        pthread_mutex_unlock(&s->mu);
        if (!l->out.len) return MHD_CONTENT_READER_END_OF_STREAM;
    }
    size_t n = l->out.len - l->off;
    if (n > max) n = max;
    memcpy(buf, l->out.data + l->off, n);
    l->off += n;
    return (ssize_t)n;
}

static void log_free(void *cls)
{
    struct lctx *l = cls;
    free(l->container);
    ks_buf_free(&l->out);
    free(l);
}

/* Called with the lock held. */
void ks_log_start(struct ks_req *r, struct ks_resp *resp, struct ks_obj *pod, const char *container)
{
    struct ks_server *s = r->s;
    const cJSON *cs = ks_jpath(pod->json, "spec.containers");
    int n = cJSON_GetArraySize(cs);
    if (!container || !*container) {
        if (n == 1) {
            container = ks_jstr(cJSON_GetArrayItem(cs, 0), "name");
        } else {
            struct ks_buf names;
            ks_buf_init(&names);
            const cJSON *c;
            cJSON_ArrayForEach(c, cs)
                ks_buf_printf(&names, "%s%s", names.len ? " " : "", ks_jstr(c, "name") ? ks_jstr(c, "name") : "");
            char *m = ks_sprintf("a container name must be specified for pod %s, choose one of: [%s]", pod->name,
                                 names.data ? names.data : "");
            ks_resp_error(resp, 400, "BadRequest", m ? m : "a container name must be specified");
            free(m);
            ks_buf_free(&names);
            return;
        }
    }
    int found = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, cs) if (ks_streq(ks_jstr(c, "name"), container)) found = 1;
    if (!found) {
        char *m = ks_sprintf("container %s is not valid for pod %s", container ? container : "", pod->name);
        ks_resp_error(resp, 400, "BadRequest", m ? m : "invalid container");
        free(m);
        return;
    }
    struct ks_buf out;
    ks_buf_init(&out);
    size_t cursor = 0;
    int finished = 0;
    char *err = NULL;
    int previous = ks_qbool(r, "previous");
    if (ks_ctl_pod_log(s, pod, container, previous, &cursor, &out, &finished, &err) < 0) {
        ks_resp_error(resp, 400, "BadRequest", err ? err : "cannot read logs");
        free(err);
        ks_buf_free(&out);
        return;
    }
    free(err);
    const char *tl = ks_q(r, "tailLines");
    if (tl && out.data) {
        long want = atol(tl), seen = 0;
        size_t i = out.len;
        while (i > 0) {
            if (out.data[i - 1] == '\n' && i != out.len && ++seen >= want) break;
            i--;
        }
        if (want <= 0) i = out.len;
        memmove(out.data, out.data + i, out.len - i);
        out.len -= i;
        out.data[out.len] = 0;
    }
    if (!ks_qbool(r, "follow") || finished || previous) {
        resp->code = 200;
        resp->body = ks_buf_steal(&out);
        resp->len = resp->body ? strlen(resp->body) : 0;
        resp->ctype = "text/plain";
        return;
    }
    struct lctx *l = calloc(1, sizeof *l);
    if (!l) {
        ks_buf_free(&out);
        ks_resp_error(resp, 500, "InternalError", "out of memory");
        return;
    }
    l->s = s;
    l->conn = r->conn;
    snprintf(l->uid, sizeof l->uid, "%s", pod->uid);
    l->container = ks_strdup(container);
    l->cursor = cursor;
    l->out = out;
    resp->stream = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, log_read, l, log_free);
    if (!resp->stream) {
        log_free(l);
        ks_resp_error(resp, 500, "InternalError", "out of memory");
        return;
    }
    MHD_add_response_header(resp->stream, "Content-Type", "text/plain");
    resp->code = 200;
}
