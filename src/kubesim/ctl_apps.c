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
    if (ks_j(spec, "minReadySeconds")) cJSON_AddNumberToObject(rspec, "minReadySeconds", ks_jnum(spec, "minReadySeconds", 0));
    cJSON *sel = cJSON_Duplicate(ks_j(spec, "selector"), 1);
    if (!sel) sel = cJSON_CreateObject();
    ks_jset_str(ks_jobj(sel, "matchLabels"), "pod-template-hash", hash);
    cJSON_AddItemToObject(rspec, "selector", sel);
    cJSON_AddItemToObject(rspec, "template", tpl);
    ks_defaults_apply(s, rst, rs, NULL);
    ks_fields_record_update(s, NULL, rs, MGR, NULL);
    struct ks_obj *o = ks_obj_insert(s, rst, rs);
    if (o)
        ks_ctl_event(s, d, "Normal", "ScalingReplicaSet", "deployment-controller", "Scaled up replica set %s from 0 to %d",
                     o->name, replicas);
    return o;
}

static int cmp_oldest(const void *a, const void *b)
{
    const struct ks_obj *x = *(struct ks_obj *const *)a, *y = *(struct ks_obj *const *)b;
    int rx = revision_of(x), ry = revision_of(y);
    return rx != ry ? rx - ry : (x->rv < y->rv ? -1 : 1);
}

void ks_deploy_reconcile(struct ks_server *s, struct ks_obj *d)
{
    if (ks_jpath(d->json, "metadata.deletionTimestamp")) return;
    const cJSON *spec = ks_j(d->json, "spec");
    double now = ks_ctl_now(s);
    char ts[32];
    ks_ctl_wall_str(s, ts);
    int want = (int)ks_jnum(spec, "replicas", 1);
    const cJSON *strat = ks_j(spec, "strategy");
    int recreate = ks_streq(ks_jstr(strat, "type"), "Recreate");
    int surge = recreate ? 0 : resolve(ks_jpath(strat, "rollingUpdate.maxSurge"), want, 1, 1);
    int unavail = recreate ? 0 : resolve(ks_jpath(strat, "rollingUpdate.maxUnavailable"), want, 0, 0);
    if (!recreate && surge == 0 && unavail == 0) unavail = 1;
    int paused = ks_jbool(spec, "paused", 0);
    char *hash = template_hash(ks_j(spec, "template"));
    if (!hash) return;
    struct ks_rtype *rst = ks_rtype_find(s, "apps", "v1", "replicasets");
    size_t n;
    struct ks_obj **rss = ks_ctl_owned(s, rst, d->ns, d->uid, &n);
    if (!rss) {
        free(hash);
        return;
    }
    qsort(rss, n, sizeof *rss, cmp_oldest);
    struct ks_obj *nrs = NULL;
    int maxrev = 0, progress = 0;
    for (size_t i = 0; i < n; i++) {
        if (ks_streq(ks_jstr(ks_jpath(rss[i]->json, "metadata.labels"), "pod-template-hash"), hash)) nrs = rss[i];
        if (revision_of(rss[i]) > maxrev) maxrev = revision_of(rss[i]);
    }
    int created = 0;
    char new_name[320];
    if (!nrs && !paused) {
        int total = 0;
        for (size_t i = 0; i < n; i++) total += rs_replicas(rss[i]);
        int initial = recreate ? 0 : want + surge - total;
        if (n == 0) initial = want;
        if (initial > want) initial = want;
        if (initial < 0) initial = 0;
        nrs = create_rs(s, d, hash, initial, maxrev + 1, surge);
        free(rss);
        rss = ks_ctl_owned(s, rst, d->ns, d->uid, &n);
        if (!rss || !nrs) {
            free(rss), free(hash);
            return;
        }
        qsort(rss, n, sizeof *rss, cmp_oldest);
        created = progress = 1;
        d->progress_at = now;
    } else if (nrs && revision_of(nrs) < maxrev) {
        /* a rollback to an older template: it becomes the newest revision again */
        cJSON *nw = ks_ctl_copy(nrs);
        char buf[16];
        snprintf(buf, sizeof buf, "%d", maxrev + 1);
        ks_jset_str(ks_jobj(ks_jobj(nw, "metadata"), "annotations"), "deployment.kubernetes.io/revision", buf);
        ks_ctl_write(s, nrs, nw, MGR, 0);
        d->progress_at = now;
        progress = 1;
    }
    snprintf(new_name, sizeof new_name, "%s", nrs ? nrs->name : "");
    int old_total = 0, old_running = 0;
    for (size_t i = 0; i < n; i++)
        if (rss[i] != nrs) old_total += rs_replicas(rss[i]), old_running += rs_status(rss[i], "replicas");

    if (nrs && !paused && !created) {
        if (recreate) {
            for (size_t i = 0; i < n; i++)
                if (rss[i] != nrs) scale_rs(s, d, rss[i], 0, surge);
            if (old_running == 0 && rs_replicas(nrs) != want) scale_rs(s, d, nrs, want, surge), progress = 1;
        } else {
            int total = 0;
            for (size_t i = 0; i < n; i++) total += rs_replicas(rss[i]);
            int cur = rs_replicas(nrs);
            if (cur > want) {
                scale_rs(s, d, nrs, want, surge), progress = 1;
            } else if (cur < want) {
                int room = want + surge - total;
                if (room > 0) scale_rs(s, d, nrs, cur + (room < want - cur ? room : want - cur), surge), progress = 1;
            }
            /* old replica sets: unhealthy replicas first, then as far as availability allows */
            int all = 0, avail = 0;
            for (size_t i = 0; i < n; i++) all += rs_replicas(rss[i]), avail += rs_status(rss[i], "availableReplicas");
            int min_avail = want - unavail;
            int new_unavail = rs_replicas(nrs) - rs_status(nrs, "availableReplicas");
            int max_down = all - min_avail - new_unavail;
            for (size_t i = 0; i < n && max_down > 0; i++) {
                if (rss[i] == nrs) continue;
                int r = rs_replicas(rss[i]), unhealthy = r - rs_status(rss[i], "availableReplicas");
                if (unhealthy <= 0 || r == 0) continue;
                int k = unhealthy < max_down ? unhealthy : max_down;
                scale_rs(s, d, rss[i], r - k, surge);
                max_down -= k;
                progress = 1;
            }
            int down = avail - min_avail;
            for (size_t i = 0; i < n && down > 0; i++) {
                if (rss[i] == nrs) continue;
                int r = rs_replicas(rss[i]);
                if (r == 0) continue;
                int k = r < down ? r : down;
                scale_rs(s, d, rss[i], r - k, surge);
                down -= k;
                progress = 1;
            }
        }
    }
    /* status from the replica sets as they are now */
    int replicas = 0, updated = 0, ready = 0, available = 0, spec_total = 0;
    for (size_t i = 0; i < n; i++) {
        struct ks_obj *rs = ks_obj_by_uid(s, rss[i]->uid);
        if (!rs) continue;
        replicas += rs_status(rs, "replicas");
        ready += rs_status(rs, "readyReplicas");
        available += rs_status(rs, "availableReplicas");
        spec_total += rs_replicas(rs);
        if (rs == nrs) updated = rs_status(rs, "replicas");
    }
    free(rss);
    cJSON *nw = ks_ctl_copy(d);
    if (!nw) {
        free(hash);
        return;
    }
    const cJSON *ost = ks_j(d->json, "status");
    if (updated > ks_jnum(ost, "updatedReplicas", 0) || available > ks_jnum(ost, "availableReplicas", 0) ||
        ready > ks_jnum(ost, "readyReplicas", 0) || (replicas - updated) < (ks_jnum(ost, "replicas", 0) - ks_jnum(ost, "updatedReplicas", 0)))
        progress = 1;
    if (progress) d->progress_at = now;
    if (nrs) {
        char buf[16];
        snprintf(buf, sizeof buf, "%d", revision_of(nrs) > maxrev ? revision_of(nrs) : (maxrev ? maxrev : 1));
        struct ks_obj *cur = ks_obj_by_uid(s, nrs->uid);
        if (cur) snprintf(buf, sizeof buf, "%d", revision_of(cur));
        ks_jset_str(ks_jobj(ks_jobj(nw, "metadata"), "annotations"), "deployment.kubernetes.io/revision", buf);
    }
    cJSON *st = ks_jobj(nw, "status");
    ks_jset_num(st, "observedGeneration", ks_jnum(ks_j(d->json, "metadata"), "generation", 1));
    ks_jset_num(st, "replicas", replicas);
    ks_jset_num(st, "updatedReplicas", updated);
    ks_jset_num(st, "readyReplicas", ready);
    ks_jset_num(st, "availableReplicas", available);
    ks_jset_num(st, "terminatingReplicas", 0); /* pods go at once here */
    int unavailable = spec_total - available;
    if (unavailable > 0)
        ks_jset_num(st, "unavailableReplicas", unavailable);
    else
        cJSON_DeleteItemFromObjectCaseSensitive(st, "unavailableReplicas");
    if (available >= want - unavail)
        ks_ctl_set_condition(st, "Available", "True", "MinimumReplicasAvailable", "Deployment has minimum availability.", ts, 0);
    else
        ks_ctl_set_condition(st, "Available", "False", "MinimumReplicasUnavailable",
                             "Deployment does not have minimum availability.", ts, 0);
    int complete = updated == want && replicas == want && available == want;
    double deadline = ks_jnum(spec, "progressDeadlineSeconds", 600);
    char msg[512];
    const cJSON *pc = ks_ctl_condition(ost, "Progressing");
    if (paused) {
        ks_ctl_set_condition(st, "Progressing", "Unknown", "DeploymentPaused", "Deployment is paused", ts, 0);
    } else if (complete) {
        snprintf(msg, sizeof msg, "ReplicaSet \"%s\" has successfully progressed.", new_name);
        ks_ctl_set_condition(st, "Progressing", "True", "NewReplicaSetAvailable", msg, ts, 0);
    } else if (created) {
        snprintf(msg, sizeof msg, "Created new replica set \"%s\"", new_name);
        ks_ctl_set_condition(st, "Progressing", "True", "NewReplicaSetCreated", msg, ts, 1);
    } else if (progress || !pc || (!ks_streq(ks_jstr(pc, "reason"), "ProgressDeadlineExceeded") && now < d->progress_at + deadline)) {
        if (progress || !pc || ks_streq(ks_jstr(pc, "reason"), "NewReplicaSetAvailable")) {
            snprintf(msg, sizeof msg, "ReplicaSet \"%s\" is progressing.", new_name);
            ks_ctl_set_condition(st, "Progressing", "True", "ReplicaSetUpdated", msg, ts, 1);
        }
        ks_ctl_at(s, d->uid, d->progress_at + deadline);
    } else if (!ks_streq(ks_jstr(pc, "reason"), "ProgressDeadlineExceeded")) {
        snprintf(msg, sizeof msg, "ReplicaSet \"%s\" has timed out progressing.", new_name);
        ks_ctl_set_condition(st, "Progressing", "False", "ProgressDeadlineExceeded", msg, ts, 1);
        ks_ctl_event(s, d, "Warning", "ProgressDeadlineExceeded", "deployment-controller",
                     "Deployment %s has timed out progressing.", d->name);
    }
    if (!complete && !paused && created) ks_ctl_at(s, d->uid, d->progress_at + deadline);
    /* conditions in the order the controller keeps them; the revision annotation goes with the
     * status, through the status subresource, as the controller's UpdateStatus sends both */
    ks_ctl_write(s, d, nw, MGR, 1);
    free(hash);
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
            if (p) ks_ctl_event(s, sts, "Normal", "SuccessfulCreate", "statefulset-controller", "create Pod %s in StatefulSet %s successful", name, sts->name);
            all_ready = 0;
            count++;
            continue;
        }
        count++;
        int r = ks_pod_ready(p);
        if (r) ready++;
        else all_ready = 0;
        if (ks_streq(pod_revision(p), rev)) updated++;
        else current++;
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
        if (keep) ks_ctl_event(s, ds, "Normal", "SuccessfulCreate", "daemonset-controller", "Created pod: %s", keep->name);
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
    if (!ready) ks_jset_num(st, "numberUnavailable", 1);
    else cJSON_DeleteItemFromObjectCaseSensitive(st, "numberUnavailable");
    ks_jset_num(st, "updatedNumberScheduled", updated);
    ks_ctl_write(s, ds, nw, MGR, 1);
}
