/* The controller loop: one thread, one timer heap in simulated time and one FIFO of objects to
 * reconcile, all under the server lock. A timer's work (and everything it causes) runs at the
 * timer's own simulated time, so a run's transitions come in the same order whatever the
 * machine's load. Also: Events, deletion with propagation, garbage collection, namespaces and
 * CRD registration. */
#include "ctl.h"

#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_EVENTS 2000

/* ---- timers and queue ---- */

static int timer_less(const struct ks_timer *a, const struct ks_timer *b)
{
    return a->due < b->due || (a->due == b->due && a->seq < b->seq);
}

void ks_ctl_at(struct ks_server *s, const char *uid, double due)
{
    struct ks_ctl *c = s->ctl;
    if (!c) return;
    if (c->nheap == c->capheap) {
        size_t cap = c->capheap ? c->capheap * 2 : 256;
        struct ks_timer *h = realloc(c->heap, cap * sizeof *h);
        if (!h) return;
        c->heap = h;
        c->capheap = cap;
    }
    struct ks_timer t = {due, c->seq++, {0}};
    snprintf(t.uid, sizeof t.uid, "%s", uid);
    size_t i = c->nheap++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!timer_less(&t, &c->heap[p])) break;
        c->heap[i] = c->heap[p];
        i = p;
    }
    c->heap[i] = t;
    pthread_cond_signal(&s->ctl_cond);
}

static struct ks_timer timer_pop(struct ks_ctl *c)
{
    struct ks_timer top = c->heap[0], last = c->heap[--c->nheap];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        const struct ks_timer *best = &last;
        if (l < c->nheap && timer_less(&c->heap[l], best)) m = l, best = &c->heap[l];
        if (r < c->nheap && timer_less(&c->heap[r], best)) m = r;
        if (m == i) break;
        c->heap[i] = c->heap[m];
        i = m;
    }
    if (c->nheap) c->heap[i] = last;
    return top;
}

void ks_ctl_enqueue(struct ks_server *s, const char *uid)
{
    struct ks_ctl *c = s->ctl;
    if (!c || !uid || ks_map_get(&c->queued, uid)) return;
    if (c->qlen == c->qcap) {
        size_t cap = c->qcap ? c->qcap * 2 : 256;
        struct ks_work *q = malloc(cap * sizeof *q);
        if (!q) return;
        for (size_t i = 0; i < c->qlen; i++) q[i] = c->queue[(c->qhead + i) % c->qcap];
        free(c->queue);
        c->queue = q;
        c->qcap = cap;
        c->qhead = 0;
    }
    struct ks_work *w = &c->queue[(c->qhead + c->qlen) % c->qcap];
    snprintf(w->uid, sizeof w->uid, "%s", uid);
    w->at = ks_ctl_now(s);
    c->qlen++;
    ks_map_put(&c->queued, uid, (void *)1);
    pthread_cond_signal(&s->ctl_cond);
}

/* On the controller thread: the simulated time of the work at hand (a timer's due time);
 * elsewhere (an API write that schedules a pod) the current simulated time. */
double ks_ctl_now(struct ks_server *s)
{
    struct ks_ctl *c = s->ctl;
    if (c && c->started && pthread_equal(pthread_self(), c->thread)) return c->now;
    return ks_sim_now(s);
}

void ks_ctl_wall_str(struct ks_server *s, char out[32]) { ks_rfc3339(s->wall0 + ks_ctl_now(s) * s->time_scale, out); }

struct ks_rtype *ks_ctl_type(struct ks_server *s, const char *group, const char *plural)
{
    return ks_rtype_find(s, group, group[0] ? "v1" : "v1", plural);
}

/* ---- helpers for controllers ---- */

const cJSON *ks_ctl_condition(const cJSON *status, const char *type)
{
    const cJSON *c;
    cJSON_ArrayForEach(c, ks_j(status, "conditions")) if (ks_streq(ks_jstr(c, "type"), type)) return c;
    return NULL;
}

void ks_ctl_set_condition(cJSON *status, const char *type, const char *st, const char *reason, const char *msg,
                          const char *now, int touch_update)
{
    cJSON *conds = ks_j(status, "conditions");
    if (!cJSON_IsArray(conds)) {
        conds = cJSON_CreateArray();
        if (!conds) return;
        ks_jset(status, "conditions", conds);
    }
    cJSON *c = NULL, *e;
    cJSON_ArrayForEach(e, conds) if (ks_streq(ks_jstr(e, "type"), type)) c = e;
    if (!c) {
        c = cJSON_CreateObject();
        if (!c) return;
        cJSON_AddStringToObject(c, "type", type);
        cJSON_AddItemToArray(conds, c);
    }
    int changed = !ks_streq(ks_jstr(c, "status"), st);
    int moved = changed || !ks_streq(ks_jstr(c, "reason"), reason) || !ks_streq(ks_jstr(c, "message"), msg);
    ks_jset_str(c, "status", st);
    if (reason) ks_jset_str(c, "reason", reason);
    if (msg) ks_jset_str(c, "message", msg);
    if (changed || !ks_j(c, "lastTransitionTime")) ks_jset_str(c, "lastTransitionTime", now);
    if (touch_update >= 0 && (moved || touch_update || !ks_j(c, "lastUpdateTime")))
        ks_jset_str(c, "lastUpdateTime", now);
}

cJSON *ks_ctl_owner_ref(struct ks_obj *owner)
{
    cJSON *refs = cJSON_CreateArray(), *r = cJSON_CreateObject();
    if (!refs || !r) {
        cJSON_Delete(refs), cJSON_Delete(r);
        return NULL;
    }
    char *gv = ks_rtype_gv(owner->rt);
    cJSON_AddStringToObject(r, "apiVersion", gv ? gv : "v1");
    free(gv);
    cJSON_AddStringToObject(r, "kind", owner->rt->kind);
    cJSON_AddStringToObject(r, "name", owner->name);
    cJSON_AddStringToObject(r, "uid", owner->uid);
    cJSON_AddBoolToObject(r, "controller", 1);
    cJSON_AddBoolToObject(r, "blockOwnerDeletion", 1);
    cJSON_AddItemToArray(refs, r);
    return refs;
}

static const char *controller_uid(const cJSON *obj)
{
    const cJSON *r;
    cJSON_ArrayForEach(r, ks_jpath(obj, "metadata.ownerReferences")) if (ks_jbool(r, "controller", 0)) return ks_jstr(
        r, "uid");
    return NULL;
}

struct ks_obj **ks_ctl_owned(struct ks_server *s, struct ks_rtype *rt, const char *ns, const char *owner_uid, size_t *n)
{
    /* the owner's children (an index lookup), sorted by type, namespace and name, so the ones
     * kept here come in the order a list of the type would give */
    struct ks_obj **all = ks_obj_children(s, owner_uid, n);
    if (!all) return NULL;
    size_t k = 0;
    for (size_t i = 0; i < *n; i++) {
        struct ks_obj *o = all[i];
        if (o->rt != rt || (ns && rt->namespaced && strcmp(o->ns, ns))) continue;
        if (ks_streq(controller_uid(o->json), owner_uid)) all[k++] = o;
    }
    *n = k;
    return all;
}

cJSON *ks_ctl_copy(const struct ks_obj *o)
{
    cJSON *copy = cJSON_CreateObject();
    const cJSON *c;
    int placed = 0;
    cJSON_ArrayForEach(c, o->json)
    {
        cJSON *d;
        if (!placed && cJSON_IsObject(c) && !strcmp(c->string, "metadata")) {
            d = cJSON_CreateObject();
            const cJSON *m;
            cJSON_ArrayForEach(m, c)
            {
                cJSON *dm;
                if (!placed && cJSON_IsArray(m) && !strcmp(m->string, "managedFields"))
                    dm = cJSON_CreateNull(), placed = 1;
                else
                    dm = cJSON_Duplicate(m, 1);
                if (!d || !dm) {
                    cJSON_Delete(dm);
                    cJSON_Delete(d);
                    d = NULL;
                    break;
                }
                cJSON_AddItemToObject(d, m->string, dm);
            }
            placed = 1; /* the first metadata only, as ks_ctl_write looks it up */
        } else {
            d = cJSON_Duplicate(c, 1);
        }
        if (!copy || !d) {
            cJSON_Delete(d);
            cJSON_Delete(copy);
            return NULL;
        }
        cJSON_AddItemToObject(copy, c->string, d);
    }
    return copy;
}

/* nw, a ks_ctl_copy of cur, has the same content in the same order, its placeholder aside
 * (stricter than ks_jequal: a reordered copy goes on to the full comparison). */
static int same_but_managed(const cJSON *nw, const cJSON *cur)
{
    const cJSON *x = nw->child, *y = cur->child;
    for (; x && y; x = x->next, y = y->next) {
        if (!x->string || !y->string || strcmp(x->string, y->string)) return 0;
        if (strcmp(x->string, "metadata")) {
            if (!ks_jequal(x, y)) return 0;
            continue;
        }
        const cJSON *m = x->child, *n = y->child;
        for (; m && n; m = m->next, n = n->next) {
            if (!m->string || !n->string || strcmp(m->string, n->string)) return 0;
            if (strcmp(m->string, "managedFields") && !ks_jequal(m, n)) return 0;
        }
        if (m || n) return 0;
    }
    return !x && !y;
}

void ks_ctl_write(struct ks_server *s, struct ks_obj *o, cJSON *nw, const char *manager, int status_only)
{
    cJSON *md = ks_j(nw, "metadata");
    const cJSON *omf = ks_jpath(o->json, "metadata.managedFields");
    if (cJSON_IsNull(ks_j(md, "managedFields")) && cJSON_IsArray(omf)) {
        /* a ks_ctl_copy: most passes change nothing, and are told so without copying the
         * managedFields; a change gets them back in their place */
        cJSON *mf = same_but_managed(nw, o->json) ? NULL : cJSON_Duplicate(omf, 1);
        if (!mf) {
            cJSON_Delete(nw);
            return;
        }
        cJSON_ReplaceItemInObjectCaseSensitive(md, "managedFields", mf);
    }
    if (ks_jequal(nw, o->json)) {
        cJSON_Delete(nw);
        return;
    }
    ks_fields_record_update(s, o->json, nw, manager, status_only ? "status" : NULL);
    ks_obj_update(s, o, nw);
}

/* ---- Events ---- */

void ks_ctl_event(struct ks_server *s, struct ks_obj *about, const char *type, const char *reason,
                  const char *component, const char *fmt, ...)
{
    struct ks_rtype *ert = ks_rtype_find(s, "", "v1", "events");
    struct ks_ctl *c = s->ctl;
    if (!ert || !c || !about->ns[0]) return;
    char msg[1024], ts[32], name[400], suffix[20];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    ks_ctl_wall_str(s, ts);
    /* fixed-width and increasing, like the apiserver's time-based suffixes: sorting Events by
     * name (what a list returns) is sorting them by when they happened */
    snprintf(suffix, sizeof suffix, "%016llx", (unsigned long long)(s->rv + 1));
    snprintf(name, sizeof name, "%s.%s", about->name, suffix);
    cJSON *e = cJSON_CreateObject();
    if (!e) return;
    cJSON *md = cJSON_AddObjectToObject(e, "metadata");
    cJSON_AddStringToObject(md, "name", name);
    cJSON_AddStringToObject(md, "namespace", about->ns);
    cJSON *io = cJSON_AddObjectToObject(e, "involvedObject");
    char *gv = ks_rtype_gv(about->rt);
    cJSON_AddStringToObject(io, "apiVersion", gv ? gv : "v1");
    free(gv);
    cJSON_AddStringToObject(io, "kind", about->rt->kind);
    cJSON_AddStringToObject(io, "name", about->name);
    cJSON_AddStringToObject(io, "namespace", about->ns);
    cJSON_AddStringToObject(io, "uid", about->uid);
    char rv[24];
    snprintf(rv, sizeof rv, "%llu", (unsigned long long)about->rv);
    cJSON_AddStringToObject(io, "resourceVersion", rv);
    cJSON_AddStringToObject(e, "reason", reason);
    cJSON_AddStringToObject(e, "message", msg);
    cJSON *src = cJSON_AddObjectToObject(e, "source");
    cJSON_AddStringToObject(src, "component", component);
    if (!strcmp(component, "kubelet")) cJSON_AddStringToObject(src, "host", "kubesim-node-1");
    cJSON_AddStringToObject(e, "firstTimestamp", ts);
    cJSON_AddStringToObject(e, "lastTimestamp", ts);
    cJSON_AddNumberToObject(e, "count", 1);
    cJSON_AddStringToObject(e, "type", type);
    cJSON_AddNullToObject(e, "eventTime");
    cJSON_AddStringToObject(e, "reportingComponent", component);
    cJSON_AddStringToObject(e, "reportingInstance", "kubesim-node-1");
    ks_fields_record_update(s, NULL, e, component, NULL);
    struct ks_obj *o = ks_obj_insert(s, ert, e);
    if (!o) return;
    /* keep the newest MAX_EVENTS: Events are bookkeeping, not state */
    if (!c->events) {
        c->events = calloc(MAX_EVENTS, sizeof *c->events);
        if (!c->events) return;
    }
    if (c->elen == MAX_EVENTS) {
        struct ks_obj *old = ks_obj_by_uid(s, c->events[c->ehead]);
        if (old) ks_obj_remove(s, old);
        c->ehead = (c->ehead + 1) % MAX_EVENTS;
        c->elen--;
    }
    snprintf(c->events[(c->ehead + c->elen) % MAX_EVENTS], 40, "%s", o->uid);
    c->elen++;
}

/* ---- deletion ---- */

/* uids of the objects owned by uid (snapshot: deleting may change the maps). */
static char (*dependents(struct ks_server *s, const char *uid, size_t *n))[40]
{
    struct ks_obj **kids = ks_obj_children(s, uid, n);
    char(*out)[40] = kids ? malloc((*n ? *n : 1) * sizeof *out) : NULL;
    for (size_t i = 0; out && i < *n; i++) snprintf(out[i], 40, "%s", kids[i]->uid);
    if (!out) *n = 0;
    free(kids);
    return out;
}

/* Marks o for deletion as the registry does, in one write: deletionTimestamp,
 * deletionGracePeriodSeconds (grace; < 0: none, as a Namespace gets), generation bumped for
 * the kinds that keep one, the finalizer when given, and phase Terminating for a Namespace. */
static void set_deleting(struct ks_server *s, struct ks_obj *o, const char *finalizer, double grace)
{
    if (ks_jpath(o->json, "metadata.deletionTimestamp") && !finalizer) return; /* marked already */
    cJSON *nw = cJSON_Duplicate(o->json, 1);
    if (!nw) return;
    cJSON *md = ks_jobj(nw, "metadata");
    if (!ks_j(md, "deletionTimestamp")) {
        char ts[32];
        ks_now_str(s, ts);
        ks_jset_str(md, "deletionTimestamp", ts);
        if (grace >= 0) ks_jset_num(md, "deletionGracePeriodSeconds", grace);
        if (o->rt->generation) ks_jset_num(md, "generation", ks_jnum(md, "generation", 1) + 1);
    }
    if (finalizer) {
        cJSON *f = ks_j(md, "finalizers");
        if (!cJSON_IsArray(f)) {
            f = cJSON_CreateArray();
            ks_jset(md, "finalizers", f);
        }
        int have = 0;
        const cJSON *x;
        cJSON_ArrayForEach(x, f) if (cJSON_IsString(x) && !strcmp(x->valuestring, finalizer)) have = 1;
        if (!have && f) cJSON_AddItemToArray(f, cJSON_CreateString(finalizer));
    }
    if (o->rt->builtin && !strcmp(o->rt->kind, "Namespace")) ks_jset_str(ks_jobj(nw, "status"), "phase", "Terminating");
    ks_obj_update_as_server(s, o, nw);
}

/* kube-controller-manager's namespace controller waits this long after a namespace's deletion
 * before it deletes the content (its namespaceDeletionGracePeriod), so objects deleted right
 * after their namespace (`kubectl delete -f` of a file that lists the Namespace first) are
 * still there; and retries this long after while content with finalizers remains (half its
 * 15 s estimate, plus one). Simulated seconds. */
#define NAMESPACE_GRACE 5.0
#define NAMESPACE_RETRY 8.0

/* Namespace conditions carry lastTransitionTime only. */
static void set_ns_condition(cJSON *status, const char *type, const char *st, const char *reason, const char *msg,
                             const char *now)
{
    ks_ctl_set_condition(status, type, st, reason, msg, now, -1);
}

/* NULL (a string out of memory) sorts last, where sorted_join skips it */
static int cmp_str(const void *a, const void *b)
{
    const char *x = *(char *const *)a, *y = *(char *const *)b;
    if (!x || !y) return !x - !y;
    return strcmp(x, y);
}

/* "a, b, c" of the strings, sorted as the namespace controller sorts them for stable updates;
 * frees them. NULL when there are none. */
static char *sorted_join(char **v, size_t n)
{
    if (!n) return NULL;
    qsort(v, n, sizeof *v, cmp_str);
    struct ks_buf b;
    ks_buf_init(&b);
    for (size_t i = 0; i < n; i++) {
        if (v[i]) ks_buf_printf(&b, "%s%s", b.len ? ", " : "", v[i]);
        free(v[i]);
    }
    return ks_buf_steal(&b);
}

/* The namespace controller's pass over a terminating namespace: pods first, then everything
 * else in it is deleted (Background); what stays (someone's finalizer) is reported in the
 * status conditions and looked at again later; once nothing stays the controller removes its
 * "kubernetes" finalizer, and the Namespace goes when no finalizer is left. */
static void namespace_clean(struct ks_server *s, struct ks_obj *ns)
{
    char name[256], uid[40];
    snprintf(name, sizeof name, "%s", ns->name);
    snprintf(uid, sizeof uid, "%s", ns->uid);
    struct ks_rtype *pods = ks_rtype_find(s, "", "v1", "pods");
    char *res[64]; /* "configmaps. has 1 resource instances", per type that stays */
    size_t nres = 0;
    struct ks_map fins; /* finalizer -> (uintptr_t) objects held by it */
    ks_map_init(&fins);
    for (int pass = 0; pass < 2 && !nres; pass++) { /* pods that stay hold the rest back */
        for (struct ks_rtype *rt = s->types; rt; rt = rt->next) {
            if (!rt->namespaced || (pass == 0) != (rt == pods)) continue;
            size_t n;
            struct ks_obj **all = ks_obj_list(s, rt, name, &n);
            char(*uids)[40] = all ? malloc((n ? n : 1) * sizeof *uids) : NULL;
            for (size_t i = 0; uids && i < n; i++) snprintf(uids[i], 40, "%s", all[i]->uid);
            free(all);
            size_t left = 0;
            for (size_t i = 0; uids && i < n; i++) {
                struct ks_obj *o = ks_obj_by_uid(s, uids[i]);
                if (!o || !ks_ctl_delete(s, o, "Background", NULL)) continue;
                left++;
                const cJSON *f;
                cJSON_ArrayForEach(f, ks_jpath(o->json, "metadata.finalizers")) if (cJSON_IsString(f))
                    ks_map_put(&fins, f->valuestring, (void *)((uintptr_t)ks_map_get(&fins, f->valuestring) + 1));
            }
            free(uids);
            if (left && nres < sizeof res / sizeof res[0])
                res[nres++] = ks_sprintf("%s.%s has %zu resource instances", rt->plural, rt->group, left);
        }
    }
    char *fin[64];
    size_t nfin = 0;
    for (size_t i = 0; i < fins.nb; i++)
        for (struct ks_map_ent *e = fins.b[i]; e && nfin < sizeof fin / sizeof fin[0]; e = e->next)
            fin[nfin++] = ks_sprintf("%s in %zu resource instances", e->key, (size_t)(uintptr_t)e->val);
    ks_map_free(&fins);
    char *remaining = sorted_join(res, nres), *finalizers = sorted_join(fin, nfin);
    ns = ks_obj_by_uid(s, uid);
    if (!ns) goto out;
    char ts[32];
    ks_ctl_wall_str(s, ts);
    cJSON *nw = ks_ctl_copy(ns);
    cJSON *st = ks_jobj(nw, "status");
    set_ns_condition(st, "NamespaceDeletionDiscoveryFailure", "False", "ResourcesDiscovered",
                     "All resources successfully discovered", ts);
    set_ns_condition(st, "NamespaceDeletionGroupVersionParsingFailure", "False", "ParsedGroupVersions",
                     "All legacy kube types successfully parsed", ts);
    set_ns_condition(st, "NamespaceDeletionContentFailure", "False", "ContentDeleted",
                     "All content successfully deleted, may be waiting on finalization", ts);
    char *msg = remaining ? ks_sprintf("Some resources are remaining: %s", remaining) : NULL;
    set_ns_condition(st, "NamespaceContentRemaining", remaining ? "True" : "False",
                     remaining ? "SomeResourcesRemain" : "ContentRemoved",
                     msg ? msg : "All content successfully removed", ts);
    free(msg);
    msg = finalizers ? ks_sprintf("Some content in the namespace has finalizers remaining: %s", finalizers) : NULL;
    set_ns_condition(st, "NamespaceFinalizersRemaining", finalizers ? "True" : "False",
                     finalizers ? "SomeFinalizersRemain" : "ContentHasNoFinalizers",
                     msg ? msg : "All content-preserving finalizers finished", ts);
    free(msg);
    ks_ctl_write(s, ns, nw, "kube-controller-manager", 1);
    if (remaining) {
        ks_ctl_at(s, uid, ks_ctl_now(s) + NAMESPACE_RETRY);
        goto out;
    }
    /* finalize: its own finalizer goes, and with it the Namespace, as it was last stored (the
     * finalize request removes it in the same write); another's finalizer keeps it until a
     * /finalize drops that one too */
    const cJSON *f;
    int others = cJSON_GetArraySize(ks_jpath(ns->json, "metadata.finalizers")) > 0;
    cJSON_ArrayForEach(f, ks_jpath(ns->json, "spec.finalizers")) if (!ks_streq(f->valuestring, "kubernetes")) others =
        1;
    if (!others) {
        ks_obj_remove(s, ns);
    } else {
        nw = ks_ctl_copy(ns);
        cJSON *kept = cJSON_CreateArray();
        cJSON_ArrayForEach(f, ks_jpath(ns->json, "spec.finalizers")) if (!ks_streq(f->valuestring, "kubernetes"))
            cJSON_AddItemToArray(kept, cJSON_Duplicate(f, 1));
        ks_jset(ks_jobj(nw, "spec"), "finalizers", kept);
        ks_ctl_write(s, ns, nw, "kube-controller-manager", 0);
    }
out:
    free(remaining);
    free(finalizers);
}

struct ks_obj *ks_ctl_delete(struct ks_server *s, struct ks_obj *o, const char *propagation, cJSON **marked)
{
    if (marked) *marked = NULL;
    if (!strcmp(o->rt->kind, "Namespace") && o->rt->builtin) {
        /* Terminating now; the namespace controller deletes the content after its grace */
        if (!ks_jpath(o->json, "metadata.deletionTimestamp")) {
            set_deleting(s, o, NULL, -1);
            o->progress_at = ks_ctl_now(s) + NAMESPACE_GRACE;
            ks_ctl_at(s, o->uid, o->progress_at);
        }
        return o;
    }
    const cJSON *fin = ks_jpath(o->json, "metadata.finalizers");
    if (cJSON_GetArraySize(fin) > 0) {
        /* someone else's finalizer: the object stays until it is removed by an update */
        set_deleting(s, o, NULL, 0);
        return o;
    }
    char uid[40];
    snprintf(uid, sizeof uid, "%s", o->uid);
    size_t n = 0;
    char(*deps)[40] = dependents(s, uid, &n);
    int foreground = !strcmp(propagation, "Foreground"), orphan = !strcmp(propagation, "Orphan");
    /* Foreground and Orphan hold the owner with their finalizer while the garbage collector
     * works (here at once); the answer is the object as it was marked */
    if (foreground || orphan) {
        set_deleting(s, o, foreground ? "foregroundDeletion" : "orphan", 0);
        if (marked) *marked = cJSON_Duplicate(o->json, 1);
    } else if (o->rt->builtin && !strcmp(o->rt->kind, "Pod")) {
        /* graceful: the kubelet has the pod's grace period to stop it; the simulated one
         * confirms at once */
        set_deleting(s, o, NULL, ks_jnum(ks_j(o->json, "spec"), "terminationGracePeriodSeconds", 30));
        if (marked) *marked = cJSON_Duplicate(o->json, 1);
    }
    if (orphan) {
        for (size_t i = 0; deps && i < n; i++) {
            struct ks_obj *d = ks_obj_by_uid(s, deps[i]);
            if (!d) continue;
            cJSON *nw = ks_ctl_copy(d);
            cJSON *refs = ks_jpath(nw, "metadata.ownerReferences");
            int idx = 0;
            cJSON *r = refs ? refs->child : NULL;
            while (r) {
                cJSON *next = r->next;
                if (ks_streq(ks_jstr(r, "uid"), uid))
                    cJSON_DeleteItemFromArray(refs, idx);
                else
                    idx++;
                r = next;
            }
            if (refs && !refs->child) cJSON_DeleteItemFromObjectCaseSensitive(ks_j(nw, "metadata"), "ownerReferences");
            ks_ctl_write(s, d, nw, "kube-controller-manager", 0);
        }
        free(deps);
        struct ks_obj *still = ks_obj_by_uid(s, uid);
        if (still) ks_obj_remove(s, still);
        return NULL;
    }
    if (!foreground) ks_obj_remove(s, o); /* Background: the owner goes first */
    for (size_t i = 0; deps && i < n; i++) {
        struct ks_obj *d = ks_obj_by_uid(s, deps[i]);
        if (!d) continue;
        /* a dependent with another live owner stays (the GC only drops the dangling reference) */
        int other = 0;
        const cJSON *r;
        cJSON_ArrayForEach(r, ks_jpath(d->json, "metadata.ownerReferences"))
        {
            const char *ou = ks_jstr(r, "uid");
            if (!ks_streq(ou, uid) && ks_obj_by_uid(s, ou)) other = 1;
        }
        if (!other) ks_ctl_delete(s, d, propagation, NULL);
    }
    free(deps);
    if (foreground) {
        struct ks_obj *still = ks_obj_by_uid(s, uid);
        if (still) ks_obj_remove(s, still);
    }
    return NULL;
}

/* ---- CRDs ---- */

static void crd_register(struct ks_server *s, struct ks_obj *crd)
{
    const cJSON *spec = ks_j(crd->json, "spec"), *names = ks_j(spec, "names");
    const char *group = ks_jstr(spec, "group"), *plural = ks_jstr(names, "plural"), *kind = ks_jstr(names, "kind");
    if (!group || !plural || !kind) return;
    int namespaced = !ks_streq(ks_jstr(spec, "scope"), "Cluster");
    const cJSON *v;
    cJSON_ArrayForEach(v, ks_j(spec, "versions"))
    {
        if (!ks_jbool(v, "served", 1) || !ks_jstr(v, "name")) continue;
        struct ks_rtype *rt = ks_rtype_add(s, group, ks_jstr(v, "name"), kind, plural, namespaced);
        if (!rt) continue;
        const char *singular = ks_jstr(names, "singular");
        if (singular) {
            char *d = ks_strdup(singular);
            if (d) free(rt->singular), rt->singular = d;
        }
        const cJSON *sn = ks_j(names, "shortNames"), *x;
        struct ks_buf b;
        ks_buf_init(&b);
        cJSON_ArrayForEach(x, sn) if (cJSON_IsString(x)) ks_buf_printf(&b, "%s%s", b.len ? "," : "", x->valuestring);
        if (b.data) {
            free(rt->short_names);
            rt->short_names = ks_buf_steal(&b);
        }
        ks_buf_free(&b);
        ks_buf_init(&b);
        cJSON_ArrayForEach(x, ks_j(names, "categories")) if (cJSON_IsString(x))
            ks_buf_printf(&b, "%s%s", b.len ? "," : "", x->valuestring);
        if (b.data) {
            free(rt->categories);
            rt->categories = ks_buf_steal(&b);
        }
        ks_buf_free(&b);
        rt->status_sub = ks_jpath(v, "subresources.status") != NULL;
    }
}

static void crd_reconcile(struct ks_server *s, struct ks_obj *crd)
{
    char ts[32];
    ks_ctl_wall_str(s, ts);
    cJSON *nw = ks_ctl_copy(crd);
    cJSON *st = ks_jobj(nw, "status");
    ks_ctl_set_condition(st, "NamesAccepted", "True", "NoConflicts", "no conflicts found", ts, -1);
    ks_ctl_set_condition(st, "Established", "True", "InitialNamesAccepted", "the initial names have been accepted", ts,
                         -1);
    const cJSON *names = ks_jpath(nw, "spec.names");
    if (names) ks_jset(st, "acceptedNames", cJSON_Duplicate(names, 1));
    /* the versions its objects were ever stored in: the storage version, since created */
    if (!ks_j(st, "storedVersions")) {
        cJSON *stored = cJSON_CreateArray();
        const cJSON *v;
        cJSON_ArrayForEach(v, ks_jpath(nw, "spec.versions")) if (ks_jbool(v, "storage", 0) && ks_jstr(v, "name"))
            cJSON_AddItemToArray(stored, cJSON_CreateString(ks_jstr(v, "name")));
        ks_jset(st, "storedVersions", stored);
    }
    ks_ctl_write(s, crd, nw, "kube-apiserver", 1);
}

/* ---- the hook and the loop ---- */

static int controlled(const struct ks_obj *o)
{
    static const char *kinds[] = {
        "Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "Job", "Pod", "CustomResourceDefinition", "Service"};
    if (!o->rt->builtin) return 0;
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (!strcmp(o->rt->kind, kinds[i])) return 1;
    return 0;
}

void ks_ctl_changed(struct ks_server *s, struct ks_obj *o, enum ks_evtype t, const cJSON *old)
{
    if (!s->ctl) return;
    if (t != KS_DELETED && controlled(o)) {
        if (!strcmp(o->rt->kind, "Pod") && !o->pod) ks_pod_init(s, o);
        if (!strcmp(o->rt->kind, "CustomResourceDefinition")) crd_register(s, o);
        ks_ctl_enqueue(s, o->uid);
    }
    if (t == KS_ADDED && o->rt->builtin && !strcmp(o->rt->kind, "Namespace")) ks_ctl_enqueue(s, o->uid);
    /* a pod's change may change the endpoints of the Services that select it, before or after */
    if (o->rt->builtin && !strcmp(o->rt->kind, "Pod")) {
        struct ks_rtype *srt = ks_rtype_find(s, "", "v1", "services");
        const cJSON *labels = ks_jpath(o->json, "metadata.labels");
        const cJSON *was = old ? ks_jpath(old, "metadata.labels") : labels;
        size_t n;
        struct ks_obj **svcs = srt ? ks_obj_selecting(s, srt, o->ns, labels, was, &n) : NULL; /* by index */
        for (size_t i = 0; svcs && i < n; i++) ks_ctl_enqueue(s, svcs[i]->uid);
        free(svcs);
    }
    /* a Service's Endpoints removed by hand come back, as the endpoints controller does it */
    if (t == KS_DELETED && o->rt->builtin && !strcmp(o->rt->kind, "Endpoints")) {
        struct ks_rtype *srt = ks_rtype_find(s, "", "v1", "services");
        struct ks_obj *svc = srt ? ks_obj_get(s, srt, o->ns, o->name) : NULL;
        if (svc) ks_ctl_enqueue(s, svc->uid);
    }
    /* the controller of a changed object reconciles too (pod -> replicaset -> deployment) */
    const char *owner = controller_uid(o->json);
    if (owner) ks_ctl_enqueue(s, owner);
}

static void namespace_reconcile(struct ks_server *s, struct ks_obj *ns)
{
    if (ks_jpath(ns->json, "metadata.deletionTimestamp")) {
        if (ks_ctl_now(s) >= ns->progress_at) namespace_clean(s, ns); /* else its timer comes */
        return;
    }
    /* every namespace gets its "default" ServiceAccount, as the token controller does */
    struct ks_rtype *sa = ks_rtype_find(s, "", "v1", "serviceaccounts");
    if (!sa || ks_obj_get(s, sa, ns->name, "default")) return;
    cJSON *o = cJSON_CreateObject();
    if (!o) return;
    cJSON *md = cJSON_AddObjectToObject(o, "metadata");
    cJSON_AddStringToObject(md, "name", "default");
    cJSON_AddStringToObject(md, "namespace", ns->name);
    ks_fields_record_update(s, NULL, o, "kube-controller-manager", NULL);
    ks_obj_insert(s, sa, o);
}

static void reconcile(struct ks_server *s, const char *uid)
{
    struct ks_obj *o = ks_obj_by_uid(s, uid);
    if (!o || !o->rt->builtin) return;
    const char *k = o->rt->kind;
    if (!strcmp(k, "Pod"))
        ks_pod_reconcile(s, o);
    else if (!strcmp(k, "ReplicaSet"))
        ks_rs_reconcile(s, o);
    else if (!strcmp(k, "Deployment"))
        ks_deploy_reconcile(s, o);
    else if (!strcmp(k, "Job"))
        ks_job_reconcile(s, o);
    else if (!strcmp(k, "StatefulSet"))
        ks_sts_reconcile(s, o);
    else if (!strcmp(k, "DaemonSet"))
        ks_ds_reconcile(s, o);
    else if (!strcmp(k, "Namespace"))
        namespace_reconcile(s, o);
    else if (!strcmp(k, "CustomResourceDefinition"))
        crd_reconcile(s, o);
    else if (!strcmp(k, "Service"))
        ks_endpoints_reconcile(s, o);
}

/* Lets the API and the watches in: the controller holds the lock for all its work, and a burst
 * of it (a few hundred pods coming ready at once) kept every watch from sending the changes
 * already made, and every request from being answered, until the burst was over. */
static void let_others_in(struct ks_server *s)
{
    double now = ks_mono();
    if (now - s->ctl->held_since < 0.001) return;
    pthread_mutex_unlock(&s->mu);
    sched_yield();
    pthread_mutex_lock(&s->mu);
    s->ctl->held_since = ks_mono();
}

static void drain_queue(struct ks_server *s)
{
    struct ks_ctl *c = s->ctl;
    /* bounded: a controller that keeps re-queueing itself cannot starve the timers */
    size_t budget = c->qlen * 4 + 64;
    while (c->qlen && budget--) {
        struct ks_work w = c->queue[c->qhead];
        c->qhead = (c->qhead + 1) % c->qcap;
        c->qlen--;
        ks_map_del(&c->queued, w.uid);
        c->now = w.at;
        reconcile(s, w.uid);
        let_others_in(s);
    }
}

static void *loop(void *arg)
{
    struct ks_server *s = arg;
    struct ks_ctl *c = s->ctl;
    pthread_mutex_lock(&s->mu);
    c->held_since = ks_mono();
    while (!s->stopping) {
        let_others_in(s);
        double now = ks_sim_now(s);
        int timer_due = c->nheap && c->heap[0].due <= now;
        /* in simulated-time order: what was queued before the next due timer goes first */
        if (c->qlen && (!timer_due || c->queue[c->qhead].at <= c->heap[0].due)) {
            drain_queue(s);
            continue;
        }
        if (timer_due) {
            struct ks_timer t = timer_pop(c);
            /* how far the controller runs behind: the measure of whether it distorts timings */
            pthread_mutex_lock(&s->stats_mu);
            s->stats.timers_fired++;
            if ((now - t.due) * s->time_scale > s->stats.timer_late_max)
                s->stats.timer_late_max = (now - t.due) * s->time_scale;
            pthread_mutex_unlock(&s->stats_mu);
            c->now = t.due;
            reconcile(s, t.uid);
            drain_queue(s);
            continue;
        }
        double wait = 1.0;
        if (c->nheap) {
            double real = (c->heap[0].due - now) * s->time_scale;
            if (real < wait) wait = real;
        }
        if (wait < 0.0005) wait = 0.0005;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        double abs_t = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9 + wait;
        ts.tv_sec = (time_t)abs_t;
        ts.tv_nsec = (long)((abs_t - (double)ts.tv_sec) * 1e9);
        pthread_cond_timedwait(&s->ctl_cond, &s->mu, &ts);
        c->held_since = ks_mono();
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

int ks_ctl_start(struct ks_server *s)
{
    struct ks_ctl *c = calloc(1, sizeof *c);
    if (!c) return -1;
    ks_map_init(&c->queued);
    pthread_mutex_lock(&s->mu);
    s->ctl = c;
    /* objects that exist before the controllers started (bootstrap) get their reconcile */
    for (struct ks_rtype *rt = s->types; rt; rt = rt->next)
        for (size_t i = 0; i < rt->objs.nb; i++)
            for (struct ks_map_ent *e = rt->objs.b[i]; e; e = e->next) ks_ctl_changed(s, e->val, KS_ADDED, NULL);
    pthread_mutex_unlock(&s->mu);
    if (pthread_create(&c->thread, NULL, loop, s)) {
        pthread_mutex_lock(&s->mu);
        s->ctl = NULL;
        pthread_mutex_unlock(&s->mu);
        ks_map_free(&c->queued);
        free(c);
        return -1;
    }
    c->started = 1;
    return 0;
}

void ks_ctl_stop(struct ks_server *s)
{
    struct ks_ctl *c = s->ctl;
    if (!c) return;
    pthread_mutex_lock(&s->mu);
    s->stopping = 1;
    pthread_cond_broadcast(&s->ctl_cond);
    pthread_mutex_unlock(&s->mu);
    if (c->started) pthread_join(c->thread, NULL);
    pthread_mutex_lock(&s->mu);
    s->ctl = NULL;
    pthread_mutex_unlock(&s->mu);
    free(c->heap);
    free(c->queue);
    free(c->events);
    ks_map_free(&c->queued);
    free(c);
}
