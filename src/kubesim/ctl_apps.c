/* The apps/v1 controllers: Deployment (rolling update and Recreate over ReplicaSets, the
 * Progressing/Available conditions and the progress deadline exactly as `kubectl rollout
 * status` reads them), ReplicaSet, and simple StatefulSet and DaemonSet controllers. */
#include "ctl.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MGR "kube-controller-manager"

static int pod_available(struct ks_obj *pod, double min_ready, double now)
{
    if (!ks_pod_ready(pod)) return 0;
    if (min_ready <= 0 || !pod->pod) return 1;
    return pod->pod->stage == PS_READY && now - pod->pod->ready_at >= min_ready;
}

/* ---- ReplicaSet ---- */

static int cmp_delete_order(const void *a, const void *b)
{
    /* not-ready pods go first, then the newest */
    struct ks_obj *x = *(struct ks_obj *const *)a, *y = *(struct ks_obj *const *)b;
    int rx = ks_pod_ready(x), ry = ks_pod_ready(y);
    if (rx != ry) return rx - ry;
    return x->rv < y->rv ? 1 : x->rv > y->rv ? -1 : 0;
}

void ks_rs_reconcile(struct ks_server *s, struct ks_obj *rs)
{
    if (ks_jpath(rs->json, "metadata.deletionTimestamp")) return;
    const cJSON *spec = ks_j(rs->json, "spec");
    int want = (int)ks_jnum(spec, "replicas", 1);
    double min_ready = ks_jnum(spec, "minReadySeconds", 0), now = ks_ctl_now(s);
    struct ks_rtype *prt = ks_rtype_find(s, "", "v1", "pods");
    size_t n;
    struct ks_obj **pods = ks_ctl_owned(s, prt, rs->ns, rs->uid, &n);
    if (!pods) return;
    if ((int)n < want) {
        for (int k = (int)n; k < want; k++) {
            struct ks_obj *p = ks_pod_create(s, rs, ks_j(spec, "template"), NULL, NULL);
            if (!p) break;
            ks_ctl_event(s, rs, "Normal", "SuccessfulCreate", "replicaset-controller", "Created pod: %s", p->name);
        }
        free(pods);
        pods = ks_ctl_owned(s, prt, rs->ns, rs->uid, &n);
        if (!pods) return;
    } else if ((int)n > want) {
        qsort(pods, n, sizeof *pods, cmp_delete_order);
        size_t extra = n - (size_t)want;
        char(*uids)[40] = malloc(extra * sizeof *uids);
        for (size_t i = 0; uids && i < extra; i++) snprintf(uids[i], 40, "%s", pods[i]->uid);
        for (size_t i = 0; uids && i < extra; i++) {
            struct ks_obj *p = ks_obj_by_uid(s, uids[i]);
            if (!p) continue;
            ks_ctl_event(s, rs, "Normal", "SuccessfulDelete", "replicaset-controller", "Deleted pod: %s", p->name);
            ks_ctl_delete(s, p, "Background", NULL);
        }
        free(uids);
        free(pods);
        pods = ks_ctl_owned(s, prt, rs->ns, rs->uid, &n);
        if (!pods) return;
    }
    int ready = 0, available = 0;
    double next_avail = -1;
    for (size_t i = 0; i < n; i++) {
        if (ks_pod_ready(pods[i])) ready++;
        if (pod_available(pods[i], min_ready, now))
            available++;
        else if (ks_pod_ready(pods[i]) && pods[i]->pod) {
            double at = pods[i]->pod->ready_at + min_ready;
            if (next_avail < 0 || at < next_avail) next_avail = at;
        }
    }
    free(pods);
    if (next_avail >= 0) ks_ctl_at(s, rs->uid, next_avail);
    cJSON *nw = ks_ctl_copy(rs);
    cJSON *st = cJSON_CreateObject();
    if (!nw || !st) {
        cJSON_Delete(nw), cJSON_Delete(st);
        return;
    }
    cJSON_AddNumberToObject(st, "replicas", (double)n);
    cJSON_AddNumberToObject(st, "fullyLabeledReplicas", (double)n);
    if (ready) cJSON_AddNumberToObject(st, "readyReplicas", ready);
    if (available) cJSON_AddNumberToObject(st, "availableReplicas", available);
    cJSON_AddNumberToObject(st, "terminatingReplicas", 0); /* pods go at once here */
    cJSON_AddNumberToObject(st, "observedGeneration", ks_jnum(ks_j(rs->json, "metadata"), "generation", 1));
    ks_jset(nw, "status", st);
    ks_ctl_write(s, rs, nw, MGR, 1);
}

/* ---- Deployment ---- */

static int resolve(const cJSON *v, int total, int round_up, int dflt)
{
    if (cJSON_IsNumber(v)) return (int)v->valuedouble;
    if (cJSON_IsString(v)) {
        double pct = atof(v->valuestring);
        double x = pct * total / 100.0;
        return (int)(round_up ? ceil(x) : floor(x));
    }
    return dflt;
}

/* The pod-template-hash: of the template without that label (a rollback copies a ReplicaSet's
 * template, label included, back into the Deployment), independent of member order. */
static char *template_hash(const cJSON *tpl)
{
    cJSON *copy = cJSON_Duplicate(tpl, 1);
    if (!copy && tpl) return NULL;
    cJSON_DeleteItemFromObjectCaseSensitive(ks_jpath(copy, "metadata.labels"), "pod-template-hash");
    char h[16];
    ks_hash_name(ks_jhash(copy), h, sizeof h);
    cJSON_Delete(copy);
    return ks_strdup(h);
}

static int rs_replicas(const struct ks_obj *rs) { return (int)ks_jnum(ks_j(rs->json, "spec"), "replicas", 0); }
static int rs_status(const struct ks_obj *rs, const char *k) { return (int)ks_jnum(ks_j(rs->json, "status"), k, 0); }
static int revision_of(const struct ks_obj *o)
{
    const char *r = ks_jstr(ks_jpath(o->json, "metadata.annotations"), "deployment.kubernetes.io/revision");
    return r ? atoi(r) : 0;
}

static void scale_rs(struct ks_server *s, struct ks_obj *d, struct ks_obj *rs, int to, int max_surge)
{
    int from = rs_replicas(rs);
    if (from == to) return;
    cJSON *nw = ks_ctl_copy(rs);
    if (!nw) return;
    ks_jset_num(ks_jobj(nw, "spec"), "replicas", to);
    cJSON *ann = ks_jobj(ks_jobj(nw, "metadata"), "annotations");
    char buf[32];
    int want = (int)ks_jnum(ks_j(d->json, "spec"), "replicas", 1);
    snprintf(buf, sizeof buf, "%d", want);
    ks_jset_str(ann, "deployment.kubernetes.io/desired-replicas", buf);
    snprintf(buf, sizeof buf, "%d", want + max_surge);
    ks_jset_str(ann, "deployment.kubernetes.io/max-replicas", buf);
    char name[300];
    snprintf(name, sizeof name, "%s", rs->name);
    ks_ctl_write(s, rs, nw, MGR, 0);
    ks_ctl_event(s, d, "Normal", "ScalingReplicaSet", "deployment-controller", "Scaled %s replica set %s from %d to %d",
                 to > from ? "up" : "down", name, from, to);
}

static struct ks_obj *create_rs(struct ks_server *s, struct ks_obj *d, const char *hash, int replicas, int revision,
                                int max_surge)
{
    struct ks_rtype *rst = ks_rtype_find(s, "apps", "v1", "replicasets");
    const cJSON *spec = ks_j(d->json, "spec");
    cJSON *rs = cJSON_CreateObject();
    if (!rs) return NULL;
    /* first, so the controller's managedFields entry names the version it wrote */
    cJSON_AddStringToObject(rs, "apiVersion", "apps/v1");
    cJSON_AddStringToObject(rs, "kind", "ReplicaSet");
    cJSON *md = cJSON_AddObjectToObject(rs, "metadata");
    char name[320], buf[32];
    snprintf(name, sizeof name, "%s-%s", d->name, hash);
    cJSON_AddStringToObject(md, "name", name);
    cJSON_AddStringToObject(md, "namespace", d->ns);
    cJSON *tpl = cJSON_Duplicate(ks_j(spec, "template"), 1);
    cJSON *tlabels = ks_jobj(ks_jobj(tpl, "metadata"), "labels");
    ks_jset_str(tlabels, "pod-template-hash", hash);
    cJSON_AddItemToObject(md, "labels", cJSON_Duplicate(tlabels, 1));
    cJSON *ann = cJSON_AddObjectToObject(md, "annotations");
    snprintf(buf, sizeof buf, "%d", (int)ks_jnum(spec, "replicas", 1));
    cJSON_AddStringToObject(ann, "deployment.kubernetes.io/desired-replicas", buf);
    snprintf(buf, sizeof buf, "%d", (int)ks_jnum(spec, "replicas", 1) + max_surge);
    cJSON_AddStringToObject(ann, "deployment.kubernetes.io/max-replicas", buf);
    snprintf(buf, sizeof buf, "%d", revision);
    cJSON_AddStringToObject(ann, "deployment.kubernetes.io/revision", buf);
    cJSON_AddItemToObject(md, "ownerReferences", ks_ctl_owner_ref(d));
    cJSON *rspec = cJSON_AddObjectToObject(rs, "spec");
    cJSON_AddNumberToObject(rspec, "replicas", replicas);
    if (ks_j(spec, "minReadySeconds"))
        cJSON_AddNumberToObject(rspec, "minReadySeconds", ks_jnum(spec, "minReadySeconds", 0));
    cJSON *sel = cJSON_Duplicate(ks_j(spec, "selector"), 1);
    if (!sel) sel = cJSON_CreateObject();
    ks_jset_str(ks_jobj(sel, "matchLabels"), "pod-template-hash", hash);
    cJSON_AddItemToObject(rspec, "selector", sel);
    cJSON_AddItemToObject(rspec, "template", tpl);
    ks_defaults_apply(s, rst, rs, NULL);
    ks_fields_record_update(s, NULL, rs, MGR, NULL);
    struct ks_obj *o = ks_obj_insert(s, rst, rs);
    if (o)
        ks_ctl_event(s, d, "Normal", "ScalingReplicaSet", "deployment-controller",
                     "Scaled up replica set %s from 0 to %d", o->name, replicas);
    return o;
}

static int cmp_oldest(const void *a, const void *b)
{
    const struct ks_obj *x = *(struct ks_obj *const *)a, *y = *(struct ks_obj *const *)b;
    int rx = revision_of(x), ry = revision_of(y);
    return rx != ry ? rx - ry : (x->rv < y->rv ? -1 : 1);
}

/* One pass of the Deployment controller over a deployment and its replica sets. */
struct rollout {
    struct ks_server *s;
    struct ks_obj *d;
    const cJSON *spec;
    double now;
    char ts[32]; /* the wall time of the pass, for the conditions' transition times */
    int want, surge, unavail, recreate, paused;
    char *hash; /* owns: the template's pod-template-hash */
    struct ks_rtype *rst;
    struct ks_obj **rss; /* owns: the replica sets it owns, oldest revision first */
    size_t n;
    struct ks_obj *nrs; /* the replica set of the current template, or NULL */
    char new_name[320];
    int maxrev, progress, created;
};

/* The replica-set counts the status reports, summed over the replica sets as they are now. */
struct rollout_counts {
    int replicas, updated, ready, available, spec_total;
};

static void rollout_free(struct rollout *r)
{
    free(r->rss);
    free(r->hash);
}

/* Reads the spec and finds the replica sets. Returns 0, or -1 when out of memory. */
static int rollout_begin(struct ks_server *s, struct ks_obj *d, struct rollout *r)
{
    memset(r, 0, sizeof *r);
    r->s = s;
    r->d = d;
    r->spec = ks_j(d->json, "spec");
    r->now = ks_ctl_now(s);
    ks_ctl_wall_str(s, r->ts);
    r->want = (int)ks_jnum(r->spec, "replicas", 1);
    const cJSON *strat = ks_j(r->spec, "strategy");
    r->recreate = ks_streq(ks_jstr(strat, "type"), "Recreate");
    r->surge = r->recreate ? 0 : resolve(ks_jpath(strat, "rollingUpdate.maxSurge"), r->want, 1, 1);
    r->unavail = r->recreate ? 0 : resolve(ks_jpath(strat, "rollingUpdate.maxUnavailable"), r->want, 0, 0);
    if (!r->recreate && r->surge == 0 && r->unavail == 0) r->unavail = 1;
    r->paused = ks_jbool(r->spec, "paused", 0);
    r->hash = template_hash(ks_j(r->spec, "template"));
    if (!r->hash) return -1;
    r->rst = ks_rtype_find(s, "apps", "v1", "replicasets");
    r->rss = ks_ctl_owned(s, r->rst, d->ns, d->uid, &r->n);
    if (!r->rss) return -1;
    qsort(r->rss, r->n, sizeof *r->rss, cmp_oldest);
    for (size_t i = 0; i < r->n; i++) {
        struct ks_obj *rs = r->rss[i];
        if (ks_streq(ks_jstr(ks_jpath(rs->json, "metadata.labels"), "pod-template-hash"), r->hash)) r->nrs = rs;
        if (revision_of(rs) > r->maxrev) r->maxrev = revision_of(rs);
    }
    return 0;
}

/* A new template gets its replica set (unless paused); a template rolled back to becomes the
 * newest revision again. Returns 0, or -1 when the replica set could not be made. */
static int ensure_new_rs(struct rollout *r)
{
    struct ks_server *s = r->s;
    struct ks_obj *d = r->d;
    if (!r->nrs && !r->paused) {
        int total = 0;
        for (size_t i = 0; i < r->n; i++) total += rs_replicas(r->rss[i]);
        int initial = r->recreate ? 0 : r->want + r->surge - total;
        if (r->n == 0) initial = r->want;
        if (initial > r->want) initial = r->want;
        if (initial < 0) initial = 0;
        r->nrs = create_rs(s, d, r->hash, initial, r->maxrev + 1, r->surge);
        free(r->rss);
        r->rss = ks_ctl_owned(s, r->rst, d->ns, d->uid, &r->n);
        if (!r->rss || !r->nrs) return -1;
        qsort(r->rss, r->n, sizeof *r->rss, cmp_oldest);
        r->created = r->progress = 1;
        d->progress_at = r->now;
    } else if (r->nrs && revision_of(r->nrs) < r->maxrev) {
        /* a rollback to an older template: it becomes the newest revision again */
        cJSON *nw = ks_ctl_copy(r->nrs);
        char buf[16];
        snprintf(buf, sizeof buf, "%d", r->maxrev + 1);
        ks_jset_str(ks_jobj(ks_jobj(nw, "metadata"), "annotations"), "deployment.kubernetes.io/revision", buf);
        ks_ctl_write(s, r->nrs, nw, MGR, 0);
        d->progress_at = r->now;
        r->progress = 1;
    }
    snprintf(r->new_name, sizeof r->new_name, "%s", r->nrs ? r->nrs->name : "");
    return 0;
}

/* Recreate: the old replica sets go to zero, and the new one is scaled up once no old pod runs. */
static void scale_recreate(struct rollout *r)
{
    int old_running = 0;
    for (size_t i = 0; i < r->n; i++)
        if (r->rss[i] != r->nrs) old_running += rs_status(r->rss[i], "replicas");
    for (size_t i = 0; i < r->n; i++)
        if (r->rss[i] != r->nrs) scale_rs(r->s, r->d, r->rss[i], 0, r->surge);
    if (old_running == 0 && rs_replicas(r->nrs) != r->want)
        scale_rs(r->s, r->d, r->nrs, r->want, r->surge), r->progress = 1;
}

/* Rolling update, old side: unhealthy replicas first, then as far as availability allows. */
static void scale_down_old(struct rollout *r)
{
    int all = 0, avail = 0;
    for (size_t i = 0; i < r->n; i++) all += rs_replicas(r->rss[i]), avail += rs_status(r->rss[i], "availableReplicas");
    int min_avail = r->want - r->unavail;
    int new_unavail = rs_replicas(r->nrs) - rs_status(r->nrs, "availableReplicas");
    int max_down = all - min_avail - new_unavail;
    for (size_t i = 0; i < r->n && max_down > 0; i++) {
        if (r->rss[i] == r->nrs) continue;
        int reps = rs_replicas(r->rss[i]), unhealthy = reps - rs_status(r->rss[i], "availableReplicas");
        if (unhealthy <= 0 || reps == 0) continue;
        int k = unhealthy < max_down ? unhealthy : max_down;
        scale_rs(r->s, r->d, r->rss[i], reps - k, r->surge);
        max_down -= k;
        r->progress = 1;
    }
    int down = avail - min_avail;
    for (size_t i = 0; i < r->n && down > 0; i++) {
        if (r->rss[i] == r->nrs) continue;
        int reps = rs_replicas(r->rss[i]);
        if (reps == 0) continue;
        int k = reps < down ? reps : down;
        scale_rs(r->s, r->d, r->rss[i], reps - k, r->surge);
        down -= k;
        r->progress = 1;
    }
}

/* Rolling update: the new replica set grows within maxSurge, then the old ones shrink. */
static void scale_rolling(struct rollout *r)
{
    int total = 0;
    for (size_t i = 0; i < r->n; i++) total += rs_replicas(r->rss[i]);
    int cur = rs_replicas(r->nrs);
    if (cur > r->want) {
        scale_rs(r->s, r->d, r->nrs, r->want, r->surge), r->progress = 1;
    } else if (cur < r->want) {
        int room = r->want + r->surge - total;
        if (room > 0)
            scale_rs(r->s, r->d, r->nrs, cur + (room < r->want - cur ? room : r->want - cur), r->surge),
                r->progress = 1;
    }
    scale_down_old(r);
}

static void count_replicas(const struct rollout *r, struct rollout_counts *c)
{
    memset(c, 0, sizeof *c);
    for (size_t i = 0; i < r->n; i++) {
        struct ks_obj *rs = ks_obj_by_uid(r->s, r->rss[i]->uid);
        if (!rs) continue;
        c->replicas += rs_status(rs, "replicas");
        c->ready += rs_status(rs, "readyReplicas");
        c->available += rs_status(rs, "availableReplicas");
        c->spec_total += rs_replicas(rs);
        if (rs == r->nrs) c->updated = rs_status(rs, "replicas");
    }
}

/* The Progressing condition as `kubectl rollout status` reads it, and the progress deadline's
 * timer. complete: every replica updated and available. */
static void set_progressing(struct rollout *r, cJSON *st, const cJSON *ost, int complete)
{
    struct ks_obj *d = r->d;
    const char *ts = r->ts, *new_name = r->new_name;
    double deadline = ks_jnum(r->spec, "progressDeadlineSeconds", 600);
    char msg[512];
    const cJSON *pc = ks_ctl_condition(ost, "Progressing");
    if (r->paused) {
        ks_ctl_set_condition(st, "Progressing", "Unknown", "DeploymentPaused", "Deployment is paused", ts, 0);
    } else if (complete) {
        snprintf(msg, sizeof msg, "ReplicaSet \"%s\" has successfully progressed.", new_name);
        ks_ctl_set_condition(st, "Progressing", "True", "NewReplicaSetAvailable", msg, ts, 0);
    } else if (r->created) {
        snprintf(msg, sizeof msg, "Created new replica set \"%s\"", new_name);
        ks_ctl_set_condition(st, "Progressing", "True", "NewReplicaSetCreated", msg, ts, 1);
    } else if (r->progress || !pc ||
               (!ks_streq(ks_jstr(pc, "reason"), "ProgressDeadlineExceeded") && r->now < d->progress_at + deadline)) {
        if (r->progress || !pc || ks_streq(ks_jstr(pc, "reason"), "NewReplicaSetAvailable")) {
            snprintf(msg, sizeof msg, "ReplicaSet \"%s\" is progressing.", new_name);
            ks_ctl_set_condition(st, "Progressing", "True", "ReplicaSetUpdated", msg, ts, 1);
        }
        ks_ctl_at(r->s, d->uid, d->progress_at + deadline);
    } else if (!ks_streq(ks_jstr(pc, "reason"), "ProgressDeadlineExceeded")) {
        snprintf(msg, sizeof msg, "ReplicaSet \"%s\" has timed out progressing.", new_name);
        ks_ctl_set_condition(st, "Progressing", "False", "ProgressDeadlineExceeded", msg, ts, 1);
        ks_ctl_event(r->s, d, "Warning", "ProgressDeadlineExceeded", "deployment-controller",
                     "Deployment %s has timed out progressing.", d->name);
    }
    if (!complete && !r->paused && r->created) ks_ctl_at(r->s, d->uid, d->progress_at + deadline);
}

/* Writes the deployment's status (and revision annotation) from the counts. */
static void write_deploy_status(struct rollout *r, const struct rollout_counts *c)
{
    struct ks_obj *d = r->d;
    cJSON *nw = ks_ctl_copy(d);
    if (!nw) return;
    const cJSON *ost = ks_j(d->json, "status");
    if (c->updated > ks_jnum(ost, "updatedReplicas", 0) || c->available > ks_jnum(ost, "availableReplicas", 0) ||
        c->ready > ks_jnum(ost, "readyReplicas", 0) ||
        (c->replicas - c->updated) < (ks_jnum(ost, "replicas", 0) - ks_jnum(ost, "updatedReplicas", 0)))
        r->progress = 1;
    if (r->progress) d->progress_at = r->now;
    if (r->nrs) {
        char buf[16];
        int maxrev = r->maxrev;
        snprintf(buf, sizeof buf, "%d", revision_of(r->nrs) > maxrev ? revision_of(r->nrs) : (maxrev ? maxrev : 1));
        struct ks_obj *cur = ks_obj_by_uid(r->s, r->nrs->uid);
        if (cur) snprintf(buf, sizeof buf, "%d", revision_of(cur));
        ks_jset_str(ks_jobj(ks_jobj(nw, "metadata"), "annotations"), "deployment.kubernetes.io/revision", buf);
    }
    cJSON *st = ks_jobj(nw, "status");
    ks_jset_num(st, "observedGeneration", ks_jnum(ks_j(d->json, "metadata"), "generation", 1));
    ks_jset_num(st, "replicas", c->replicas);
    ks_jset_num(st, "updatedReplicas", c->updated);
    ks_jset_num(st, "readyReplicas", c->ready);
    ks_jset_num(st, "availableReplicas", c->available);
    ks_jset_num(st, "terminatingReplicas", 0); /* pods go at once here */
    int unavailable = c->spec_total - c->available;
    if (unavailable > 0)
        ks_jset_num(st, "unavailableReplicas", unavailable);
    else
        cJSON_DeleteItemFromObjectCaseSensitive(st, "unavailableReplicas");
    if (c->available >= r->want - r->unavail)
        ks_ctl_set_condition(st, "Available", "True", "MinimumReplicasAvailable",
                             "Deployment has minimum availability.", r->ts, 0);
    else
        ks_ctl_set_condition(st, "Available", "False", "MinimumReplicasUnavailable",
                             "Deployment does not have minimum availability.", r->ts, 0);
    int complete = c->updated == r->want && c->replicas == r->want && c->available == r->want;
    set_progressing(r, st, ost, complete);
    /* conditions in the order the controller keeps them; the revision annotation goes with the
     * status, through the status subresource, as the controller's UpdateStatus sends both */
    ks_ctl_write(r->s, d, nw, MGR, 1);
}

void ks_deploy_reconcile(struct ks_server *s, struct ks_obj *d)
{
    if (ks_jpath(d->json, "metadata.deletionTimestamp")) return;
    struct rollout r;
    if (rollout_begin(s, d, &r) < 0 || ensure_new_rs(&r) < 0) {
        rollout_free(&r);
        return;
    }
    if (r.nrs && !r.paused && !r.created) {
        if (r.recreate)
            scale_recreate(&r);
        else
            scale_rolling(&r);
    }
    /* status from the replica sets as they are now */
    struct rollout_counts counts;
    count_replicas(&r, &counts);
    free(r.rss);
    r.rss = NULL;
    write_deploy_status(&r, &counts);
    rollout_free(&r);
}

/* ---- StatefulSet and DaemonSet: pods by revision ---- */

static const char *pod_revision(const struct ks_obj *p)
{
    return ks_jstr(ks_jpath(p->json, "metadata.labels"), "controller-revision-hash");
}

static void set_status_common(cJSON *st, const struct ks_obj *o)
{
    ks_jset_num(st, "observedGeneration", ks_jnum(ks_j(o->json, "metadata"), "generation", 1));
}

void ks_sts_reconcile(struct ks_server *s, struct ks_obj *sts)
{
    if (ks_jpath(sts->json, "metadata.deletionTimestamp")) return;
    const cJSON *spec = ks_j(sts->json, "spec");
    int want = (int)ks_jnum(spec, "replicas", 1);
    int ordered = !ks_streq(ks_jstr(spec, "podManagementPolicy"), "Parallel");
    char *h = template_hash(ks_j(spec, "template"));
    if (!h) return;
    char rev[320];
    snprintf(rev, sizeof rev, "%s-%s", sts->name, h);
    free(h);
    struct ks_rtype *prt = ks_rtype_find(s, "", "v1", "pods");
    int ready = 0, current = 0, updated = 0, count = 0, all_ready = 1;
    for (int i = 0; i < want + 64; i++) {
        char name[320];
        snprintf(name, sizeof name, "%s-%d", sts->name, i);
        struct ks_obj *p = ks_obj_get(s, prt, sts->ns, name);
        if (i >= want) {
            if (!p) break;
            ks_ctl_delete(s, p, "Background", NULL); /* scale down */
            continue;
        }
        if (!p) {
            if (ordered && !all_ready) break; /* OrderedReady: one at a time */
            cJSON *labels = cJSON_CreateObject();
            char idx[16];
            snprintf(idx, sizeof idx, "%d", i);
            cJSON_AddStringToObject(labels, "controller-revision-hash", rev);
            cJSON_AddStringToObject(labels, "statefulset.kubernetes.io/pod-name", name);
            cJSON_AddStringToObject(labels, "apps.kubernetes.io/pod-index", idx);
            p = ks_pod_create(s, sts, ks_j(spec, "template"), name, labels);
            cJSON_Delete(labels);
            if (p)
                ks_ctl_event(s, sts, "Normal", "SuccessfulCreate", "statefulset-controller",
                             "create Pod %s in StatefulSet %s successful", name, sts->name);
            all_ready = 0;
            count++;
            continue;
        }
        count++;
        int r = ks_pod_ready(p);
        if (r)
            ready++;
        else
            all_ready = 0;
        if (ks_streq(pod_revision(p), rev))
            updated++;
        else
            current++;
    }
    /* rolling update: the highest old-revision pod goes once every pod is ready */
    if (updated < count && all_ready && count == want) {
        for (int i = want - 1; i >= 0; i--) {
            char name[320];
            snprintf(name, sizeof name, "%s-%d", sts->name, i);
            struct ks_obj *p = ks_obj_get(s, prt, sts->ns, name);
            if (p && !ks_streq(pod_revision(p), rev)) {
                ks_ctl_delete(s, p, "Background", NULL);
                ks_ctl_enqueue(s, sts->uid);
                break;
            }
        }
    }
    cJSON *nw = ks_ctl_copy(sts);
    cJSON *st = ks_jobj(nw, "status");
    set_status_common(st, sts);
    ks_jset_num(st, "replicas", count);
    ks_jset_num(st, "readyReplicas", ready);
    ks_jset_num(st, "availableReplicas", ready);
    ks_jset_num(st, "currentReplicas", updated == count ? count : current);
    ks_jset_num(st, "updatedReplicas", updated);
    ks_jset_str(st, "updateRevision", rev);
    if (updated == count || !ks_jstr(st, "currentRevision")) ks_jset_str(st, "currentRevision", rev);
    ks_jset_num(st, "collisionCount", 0);
    ks_ctl_write(s, sts, nw, MGR, 1);
}

void ks_ds_reconcile(struct ks_server *s, struct ks_obj *ds)
{
    if (ks_jpath(ds->json, "metadata.deletionTimestamp")) return;
    const cJSON *spec = ks_j(ds->json, "spec");
    char *h = template_hash(ks_j(spec, "template"));
    if (!h) return;
    struct ks_rtype *prt = ks_rtype_find(s, "", "v1", "pods");
    size_t n;
    struct ks_obj **pods = ks_ctl_owned(s, prt, ds->ns, ds->uid, &n);
    int updated = 0, ready = 0;
    struct ks_obj *keep = NULL;
    for (size_t i = 0; pods && i < n; i++) {
        if (ks_streq(pod_revision(pods[i]), h) && !keep)
            keep = pods[i];
        else
            ks_ctl_delete(s, pods[i], "Background", NULL); /* one node: one pod, of the current template */
    }
    free(pods);
    if (!keep) {
        cJSON *labels = cJSON_CreateObject();
        cJSON_AddStringToObject(labels, "controller-revision-hash", h);
        keep = ks_pod_create(s, ds, ks_j(spec, "template"), NULL, labels);
        cJSON_Delete(labels);
        if (keep)
            ks_ctl_event(s, ds, "Normal", "SuccessfulCreate", "daemonset-controller", "Created pod: %s", keep->name);
    }
    if (keep) {
        updated = 1;
        ready = ks_pod_ready(keep);
    }
    free(h);
    cJSON *nw = ks_ctl_copy(ds);
    cJSON *st = ks_jobj(nw, "status");
    set_status_common(st, ds);
    ks_jset_num(st, "desiredNumberScheduled", 1);
    ks_jset_num(st, "currentNumberScheduled", keep ? 1 : 0);
    ks_jset_num(st, "numberMisscheduled", 0);
    ks_jset_num(st, "numberReady", ready);
    ks_jset_num(st, "numberAvailable", ready);
    if (!ready)
        ks_jset_num(st, "numberUnavailable", 1);
    else
        cJSON_DeleteItemFromObjectCaseSensitive(st, "numberUnavailable");
    ks_jset_num(st, "updatedNumberScheduled", updated);
    ks_ctl_write(s, ds, nw, MGR, 1);
}
