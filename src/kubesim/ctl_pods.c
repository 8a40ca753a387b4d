/* The simulated kubelet (a pod's life: scheduled, image pulled or not, started, ready,
 * crash-looping while a required Service has no ready endpoint or because its image crashes,
 * or run to completion), pod
 * logs from the scenario, and the Job controller. */
#include "ctl.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static double backoff(int n, double cap)
{
    double b = 10 * pow(2, n > 0 ? n - 1 : 0);
    return b > cap ? cap : b;
}

static double jitter(struct ks_server *s, const struct ks_rule *r)
{
    return r->jitter > 0 ? r->jitter * ks_rng_unit(&s->rng) : 0;
}

static const char *controller_ref_uid(const cJSON *obj, const char **kind, const char **name)
{
    const cJSON *r;
    cJSON_ArrayForEach(r, ks_jpath(obj, "metadata.ownerReferences")) if (ks_jbool(r, "controller", 0))
    {
        if (kind) *kind = ks_jstr(r, "kind");
        if (name) *name = ks_jstr(r, "name");
        return ks_jstr(r, "uid");
    }
    return NULL;
}

void ks_pod_init(struct ks_server *s, struct ks_obj *pod)
{
    struct ks_pod *st = calloc(1, sizeof *st);
    if (!st) return;
    const char *kind = NULL, *name = NULL;
    const char *ouid = controller_ref_uid(pod->json, &kind, &name);
    const char *rule = pod->name;
    if (ouid && name) {
        rule = name;
        struct ks_obj *owner = ks_obj_by_uid(s, ouid);
        if (owner && ks_streq(kind, "ReplicaSet")) {
            const char *dk = NULL, *dn = NULL;
            if (controller_ref_uid(owner->json, &dk, &dn) && dn) rule = dn;
        }
    }
    snprintf(st->rule, sizeof st->rule, "%s", rule);
    const char *rp =
        ks_jpath(pod->json, "spec.restartPolicy") ? ks_jstr(ks_j(pod->json, "spec"), "restartPolicy") : NULL;
    st->job = ks_streq(kind, "Job") || (rp && strcmp(rp, "Always"));
    st->stage = PS_NEW;
    st->next_at = ks_ctl_now(s);
    pod->pod = st;
    ks_ctl_at(s, pod->uid, st->next_at);
}

int ks_pod_ready(const struct ks_obj *pod)
{
    const cJSON *c;
    cJSON_ArrayForEach(
        c, ks_jpath(pod->json, "status.conditions")) if (ks_streq(ks_jstr(c, "type"),
                                                                  "Ready")) return ks_streq(ks_jstr(c, "status"),
                                                                                            "True");
    return 0;
}

/* A Service in the pod's namespace with at least one ready pod behind its selector. */
static int service_available(struct ks_server *s, const char *ns, const char *name)
{
    struct ks_rtype *srt = ks_rtype_find(s, "", "v1", "services"), *prt = ks_rtype_find(s, "", "v1", "pods");
    struct ks_obj *svc = ks_obj_get(s, srt, ns, name);
    if (!svc) return 0;
    const cJSON *sel = ks_jpath(svc->json, "spec.selector");
    if (!cJSON_IsObject(sel) || !sel->child) return 0;
    size_t n;
    struct ks_obj **pods = ks_obj_select(s, prt, ns, sel, &n);
    int ok = 0;
    for (size_t i = 0; pods && i < n && !ok; i++)
        if (ks_pod_ready(pods[i])) ok = 1;
    free(pods);
    return ok;
}

/* The first persistentVolumeClaim a pod mounts that does not exist in its namespace, or NULL:
 * the scheduler's volume binding keeps such a pod Pending (Unschedulable) until it does. */
static const char *missing_claim(struct ks_server *s, const struct ks_obj *pod)
{
    struct ks_rtype *crt = ks_rtype_find(s, "", "v1", "persistentvolumeclaims");
    const cJSON *v;
    cJSON_ArrayForEach(v, ks_jpath(pod->json, "spec.volumes"))
    {
        const char *claim = ks_jstr(ks_j(v, "persistentVolumeClaim"), "claimName");
        if (claim && crt && !ks_obj_get(s, crt, pod->ns, claim)) return claim;
    }
    return NULL;
}

static const char *first_image(const struct ks_obj *pod)
{
    const cJSON *c;
    cJSON_ArrayForEach(c, ks_jpath(pod->json, "spec.containers")) if (ks_jstr(c, "image")) return ks_jstr(c, "image");
    return "";
}

/* The image of the first of pod's containers that matches (a scenario's broken_images or
 * crashing_images), or NULL. */
static const char *image_matching(struct ks_server *s, const struct ks_obj *pod,
                                  int (*matches)(const struct ks_scenario *, const char *))
{
    const cJSON *c;
    cJSON_ArrayForEach(c, ks_jpath(pod->json, "spec.containers"))
    {
        if (matches(s->sc, ks_jstr(c, "image"))) return ks_jstr(c, "image");
    }
    return NULL;
}

static cJSON *cond(const char *type, double gen, int ok, const char *reason, const char *msg, const char *ts)
{
    cJSON *c = cJSON_CreateObject();
    if (!c) return NULL;
    cJSON_AddStringToObject(c, "type", type);
    if (gen >= 0) cJSON_AddNumberToObject(c, "observedGeneration", gen);
    cJSON_AddStringToObject(c, "status", ok ? "True" : "False");
    cJSON_AddNullToObject(c, "lastProbeTime");
    cJSON_AddStringToObject(c, "lastTransitionTime", ts);
    if (!ok && reason) cJSON_AddStringToObject(c, "reason", reason);
    if (!ok && msg) cJSON_AddStringToObject(c, "message", msg);
    return c;
}

/* Keeps a condition's lastTransitionTime when its status did not change. */
static void keep_transition(cJSON *conds, const cJSON *old)
{
    cJSON *c;
    cJSON_ArrayForEach(c, conds)
    {
        const cJSON *o = NULL, *e;
        cJSON_ArrayForEach(e, ks_j(old, "conditions")) if (ks_streq(ks_jstr(e, "type"), ks_jstr(c, "type"))) o = e;
        if (o && ks_streq(ks_jstr(o, "status"), ks_jstr(c, "status")) && ks_jstr(o, "lastTransitionTime"))
            ks_jset_str(c, "lastTransitionTime", ks_jstr(o, "lastTransitionTime"));
    }
}

/* Writes status (owned) as the kubelet's, unless it is what the pod has: most passes change
 * nothing, and those cost no copy of the pod. */
static void put_status(struct ks_server *s, struct ks_obj *pod, cJSON *status)
{
    cJSON *nw = ks_jequal(status, ks_j(pod->json, "status")) ? NULL : cJSON_Duplicate(pod->json, 1);
    if (!nw) {
        cJSON_Delete(status);
        return;
    }
    ks_jset(nw, "status", status);
    ks_ctl_write(s, pod, nw, "kubelet", 1);
}

/* Not placed: a Pending pod with the scheduler's condition alone. */
static void write_unscheduled(struct ks_server *s, struct ks_obj *pod, cJSON *status, const cJSON *old, const char *ts)
{
    cJSON_AddStringToObject(status, "phase", "Pending");
    cJSON *conds = cJSON_AddArrayToObject(status, "conditions");
    cJSON_AddItemToArray(conds, cond("PodScheduled", -1, 0, "Unschedulable", pod->pod->unschedulable, ts));
    keep_transition(conds, old);
    cJSON_AddStringToObject(status, "qosClass", ks_qos_class(ks_j(pod->json, "spec")));
    put_status(s, pod, status);
}

static const char *pod_phase(const struct ks_pod *st)
{
    if (st->stage == PS_DONE) return st->exit_code ? "Failed" : "Succeeded";
    return st->stage >= PS_RUNNING ? "Running" : "Pending";
}

static void add_conditions(cJSON *status, const struct ks_obj *pod, double gen, int ready, const cJSON *old,
                           const char *ts)
{
    const struct ks_pod *st = pod->pod;
    struct ks_buf names;
    ks_buf_init(&names);
    const cJSON *c;
    cJSON_ArrayForEach(c, ks_jpath(pod->json, "spec.containers"))
        ks_buf_printf(&names, "%s%s", names.len ? " " : "", ks_jstr(c, "name") ? ks_jstr(c, "name") : "");
    char msg[600];
    snprintf(msg, sizeof msg, "containers with unready status: [%s]", names.data ? names.data : "");
    const char *why = st->stage == PS_DONE ? "PodCompleted" : "ContainersNotReady";
    cJSON *conds = cJSON_AddArrayToObject(status, "conditions");
    int can_start = st->stage >= PS_RUNNING && st->stage != PS_DONE;
    cJSON_AddItemToArray(conds, cond("PodReadyToStartContainers", gen, can_start, NULL, NULL, ts));
    cJSON_AddItemToArray(conds, cond("Initialized", gen, 1, NULL, NULL, ts));
    cJSON_AddItemToArray(conds, cond("Ready", gen, ready, why, st->stage == PS_DONE ? NULL : msg, ts));
    cJSON_AddItemToArray(conds, cond("ContainersReady", gen, ready, why, st->stage == PS_DONE ? NULL : msg, ts));
    cJSON_AddItemToArray(conds, cond("PodScheduled", -1, 1, NULL, NULL, ts)); /* the scheduler's: no generation */
    keep_transition(conds, old);
    ks_buf_free(&names);
}

/* The node's address, and the pod's once it has one. */
static void add_ips(cJSON *status, const struct ks_pod *st)
{
    cJSON_AddStringToObject(status, "hostIP", "10.0.0.1");
    cJSON *hips = cJSON_AddArrayToObject(status, "hostIPs");
    cJSON *hip = cJSON_CreateObject();
    cJSON_AddStringToObject(hip, "ip", "10.0.0.1");
    cJSON_AddItemToArray(hips, hip);
    if (st->ip[0]) {
        cJSON_AddStringToObject(status, "podIP", st->ip);
        cJSON *pips = cJSON_AddArrayToObject(status, "podIPs");
        cJSON *pip = cJSON_CreateObject();
        cJSON_AddStringToObject(pip, "ip", st->ip);
        cJSON_AddItemToArray(pips, pip);
    }
}

static void add_waiting(cJSON *state, const char *reason, const char *msg)
{
    cJSON *w = cJSON_AddObjectToObject(state, "waiting");
    cJSON_AddStringToObject(w, "reason", reason);
    cJSON_AddStringToObject(w, "message", msg);
}

/* A container's state: every container of a pod is in the pod's stage. */
static void add_container_state(cJSON *cs, const struct ks_obj *pod, const char *name, const char *image)
{
    const struct ks_pod *st = pod->pod;
    cJSON *state = cJSON_AddObjectToObject(cs, "state");
    char msg[600];
    switch (st->stage) {
    case PS_NEW:
    case PS_CREATING:
        cJSON_AddStringToObject(cJSON_AddObjectToObject(state, "waiting"), "reason", "ContainerCreating");
        break;
    case PS_PULL_ERR:
        snprintf(msg, sizeof msg, "failed to pull and unpack image \"%s\": not found", image ? image : "");
        add_waiting(state, "ErrImagePull", msg);
        break;
    case PS_PULL_BACKOFF:
        snprintf(msg, sizeof msg, "Back-off pulling image \"%s\"", image ? image : "");
        add_waiting(state, "ImagePullBackOff", msg);
        break;
    case PS_RUNNING:
    case PS_READY:
        cJSON_AddStringToObject(cJSON_AddObjectToObject(state, "running"), "startedAt", st->started_ts);
        break;
    case PS_CRASHED:
        snprintf(msg, sizeof msg, "back-off %ds restarting failed container=%s pod=%s_%s(%s)",
                 (int)backoff(st->restarts, 300), name ? name : "", pod->name, pod->ns, pod->uid);
        add_waiting(state, "CrashLoopBackOff", msg);
        break;
    case PS_DONE: {
        cJSON *t = cJSON_AddObjectToObject(state, "terminated");
        cJSON_AddNumberToObject(t, "exitCode", st->exit_code);
        cJSON_AddStringToObject(t, "reason", st->exit_code ? "Error" : "Completed");
        cJSON_AddStringToObject(t, "startedAt", st->started_ts);
        cJSON_AddStringToObject(t, "finishedAt", st->finished_ts);
        break;
    }
    }
}

/* The status of the idx-th container c: image and container IDs derived from the image and the pod. */
static cJSON *container_status(const struct ks_obj *pod, const cJSON *c, int idx, int ready)
{
    const struct ks_pod *st = pod->pod;
    const char *name = ks_jstr(c, "name"), *image = ks_jstr(c, "image");
    cJSON *cs = cJSON_CreateObject();
    if (!cs) return NULL;
    cJSON_AddStringToObject(cs, "name", name ? name : "");
    cJSON_AddStringToObject(cs, "image", image ? image : "");
    char id[128];
    uint32_t h = ks_fnv32(image ? image : "", image ? strlen(image) : 0);
    snprintf(id, sizeof id, "%s@sha256:%08x%08x", image ? image : "", h, h ^ 0x9e3779b9u);
    cJSON_AddStringToObject(cs, "imageID", st->stage >= PS_RUNNING ? id : "");
    if (st->stage >= PS_RUNNING) {
        snprintf(id, sizeof id, "containerd://%08x%08x%04x", ks_fnv32(pod->uid, strlen(pod->uid)), (unsigned)idx,
                 (unsigned)st->restarts);
        cJSON_AddStringToObject(cs, "containerID", id);
    }
    cJSON_AddBoolToObject(cs, "ready", ready);
    cJSON_AddBoolToObject(cs, "started", st->stage == PS_RUNNING || st->stage == PS_READY);
    cJSON_AddNumberToObject(cs, "restartCount", st->restarts);
    add_container_state(cs, pod, name, image);
    cJSON *last = cJSON_AddObjectToObject(cs, "lastState");
    if (st->restarts > 0 && st->last_finished_ts[0]) {
        cJSON *t = cJSON_AddObjectToObject(last, "terminated");
        cJSON_AddNumberToObject(t, "exitCode", 1);
        cJSON_AddStringToObject(t, "reason", "Error");
        cJSON_AddStringToObject(t, "startedAt", st->last_started_ts);
        cJSON_AddStringToObject(t, "finishedAt", st->last_finished_ts);
    }
    return cs;
}

static void write_status(struct ks_server *s, struct ks_obj *pod)
{
    struct ks_pod *st = pod->pod;
    char ts[32];
    ks_ctl_wall_str(s, ts);
    const cJSON *old = ks_j(pod->json, "status");
    cJSON *status = cJSON_CreateObject();
    if (!status) return;
    if (st->unschedulable[0]) {
        write_unscheduled(s, pod, status, old, ts);
        return;
    }
    int ready = st->stage == PS_READY || (st->job && st->stage == PS_RUNNING);
    /* the kubelet reports the generation of the spec it acts on, with each condition too */
    double gen = ks_jnum(ks_j(pod->json, "metadata"), "generation", 1);
    cJSON_AddNumberToObject(status, "observedGeneration", gen);
    cJSON_AddStringToObject(status, "phase", pod_phase(st));
    add_conditions(status, pod, gen, ready, old, ts);
    add_ips(status, st);
    const char *start = ks_jstr(old, "startTime");
    cJSON_AddStringToObject(status, "startTime", start ? start : ts);
    cJSON_AddStringToObject(status, "qosClass", ks_qos_class(ks_j(pod->json, "spec")));
    cJSON *css = cJSON_AddArrayToObject(status, "containerStatuses");
    int idx = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, ks_jpath(pod->json, "spec.containers"))
    {
        cJSON *cs = container_status(pod, c, idx, ready);
        if (!cs) continue;
        cJSON_AddItemToArray(css, cs);
        idx++;
    }
    put_status(s, pod, status);
}

static void start_container(struct ks_server *s, struct ks_obj *pod, const struct ks_rule *r, double now)
{
    struct ks_pod *st = pod->pod;
    int first = st->restarts == 0;
    st->stage = PS_RUNNING;
    st->started_at = now;
    ks_ctl_wall_str(s, st->started_ts);
    if (!st->ip[0])
        snprintf(st->ip, sizeof st->ip, "10.244.%u.%u", (unsigned)(ks_rng_next(&s->rng) % 250),
                 (unsigned)(ks_rng_next(&s->rng) % 250) + 2);
    const char *cname = ks_jstr(cJSON_GetArrayItem(ks_jpath(pod->json, "spec.containers"), 0), "name");
    if (first) {
        ks_ctl_event(s, pod, "Normal", "Pulled", "kubelet",
                     "Successfully pulled image \"%s\" in 1.2s (1.2s including waiting)", first_image(pod));
    } else {
        ks_ctl_event(s, pod, "Normal", "Pulled", "kubelet", "Container image \"%s\" already present on machine",
                     first_image(pod));
    }
    ks_ctl_event(s, pod, "Normal", "Created", "kubelet", "Created container: %s", cname ? cname : "");
    ks_ctl_event(s, pod, "Normal", "Started", "kubelet", "Started container %s", cname ? cname : "");
    st->missing[0] = 0;
    for (int i = 0; i < r->nrequires; i++)
        if (!service_available(s, pod->ns, r->requires[i])) {
            snprintf(st->missing, sizeof st->missing, "%s", r->requires[i]);
            break;
        }
    const char *crashing = image_matching(s, pod, ks_scenario_image_crashes);
    snprintf(st->crashing, sizeof st->crashing, "%s", crashing ? crashing : "");
    if (st->job)
        st->next_at = now + r->duration + jitter(s, r);
    else if (st->missing[0] || st->crashing[0])
        st->next_at = now + r->crash_after;
    else if (r->never_ready)
        st->next_at = -1;
    else
        st->next_at = now + r->ready_delay + jitter(s, r);
}

void ks_pod_reconcile(struct ks_server *s, struct ks_obj *pod)
{
    struct ks_pod *st = pod->pod;
    if (!st || ks_jpath(pod->json, "metadata.deletionTimestamp")) return;
    double now = ks_ctl_now(s);
    if (st->next_at < 0 || now < st->next_at) return; /* nothing due: a reconcile for another reason */
    struct ks_rule r;
    ks_scenario_rule(s->sc, st->rule, &r);
    const char *image = first_image(pod);
    switch (st->stage) {
    case PS_NEW: {
        const char *claim = missing_claim(s, pod);
        if (claim) {
            char msg[sizeof st->unschedulable];
            snprintf(msg, sizeof msg, "0/1 nodes are available: persistentvolumeclaim \"%s\" not found.", claim);
            if (strcmp(msg, st->unschedulable)) {
                snprintf(st->unschedulable, sizeof st->unschedulable, "%s", msg);
                ks_ctl_event(s, pod, "Warning", "FailedScheduling", "default-scheduler", "%s", msg);
            }
            st->next_at = now + 1; /* the scheduler tries again when the claim may exist */
            break;
        }
        st->unschedulable[0] = '\0';
        if (!ks_jpath(pod->json, "spec.nodeName")) {
            /* a bare pod: the scheduler binds it, through pods/binding, which sets the node
             * only (no field manager, no new generation) */
            cJSON *nw = cJSON_Duplicate(pod->json, 1);
            if (nw) ks_jset_str(ks_jobj(nw, "spec"), "nodeName", "kubesim-node-1");
            if (nw) ks_obj_update_as_server(s, pod, nw);
        }
        ks_ctl_event(s, pod, "Normal", "Scheduled", "default-scheduler",
                     "Successfully assigned %s/%s to kubesim-node-1", pod->ns, pod->name);
        ks_ctl_event(s, pod, "Normal", "Pulling", "kubelet", "Pulling image \"%s\"", image);
        st->stage = PS_CREATING;
        st->next_at = now + r.start_delay + jitter(s, &r);
        break;
    }
    case PS_CREATING:
    case PS_PULL_BACKOFF:
        if (image_matching(s, pod, ks_scenario_image_broken)) {
            st->stage = PS_PULL_ERR;
            st->pull_failures++;
            ks_ctl_event(s, pod, "Warning", "Failed", "kubelet", "Failed to pull image \"%s\": not found", image);
            ks_ctl_event(s, pod, "Warning", "Failed", "kubelet", "Error: ErrImagePull");
            st->next_at = now + 1;
        } else {
            start_container(s, pod, &r, now);
        }
        break;
    case PS_PULL_ERR:
        st->stage = PS_PULL_BACKOFF;
        ks_ctl_event(s, pod, "Normal", "BackOff", "kubelet", "Back-off pulling image \"%s\"", image);
        ks_ctl_event(s, pod, "Warning", "Failed", "kubelet", "Error: ImagePullBackOff");
        st->next_at = now + backoff(st->pull_failures, 300);
        break;
    case PS_RUNNING:
        if (st->job) {
            int code = r.exit_code;
            if (st->attempt < r.fail_attempts) code = r.exit_code ? r.exit_code : 1;
            st->exit_code = code;
            st->stage = PS_DONE;
            st->finished_at = now;
            ks_ctl_wall_str(s, st->finished_ts);
            st->next_at = -1;
        } else if (st->missing[0] || st->crashing[0]) {
            snprintf(st->last_started_ts, sizeof st->last_started_ts, "%s", st->started_ts);
            ks_ctl_wall_str(s, st->last_finished_ts);
            st->restarts++;
            st->stage = PS_CRASHED;
            const char *cname = ks_jstr(cJSON_GetArrayItem(ks_jpath(pod->json, "spec.containers"), 0), "name");
            ks_ctl_event(s, pod, "Warning", "BackOff", "kubelet",
                         "Back-off restarting failed container %s in pod %s_%s(%s)", cname ? cname : "", pod->name,
                         pod->ns, pod->uid);
            st->next_at = now + backoff(st->restarts, 300);
        } else {
            st->stage = PS_READY;
            st->ready_at = now;
            st->next_at = -1;
        }
        break;
    case PS_CRASHED: start_container(s, pod, &r, now); break;
    case PS_READY:
    case PS_DONE: st->next_at = -1; break;
    }
    if (st->next_at >= 0) ks_ctl_at(s, pod->uid, st->next_at);
    write_status(s, pod);
}

/* ---- logs ---- */

int ks_ctl_pod_log(struct ks_server *s, struct ks_obj *pod, const char *container, int previous, size_t *cursor,
                   struct ks_buf *out, int *done, char **err)
{
    (void)container;
    *err = NULL;
    *done = 0;
    struct ks_pod *st = pod->pod;
    if (!st) {
        *done = 1;
        return 0;
    }
    if (st->stage < PS_RUNNING && st->restarts == 0) {
        const char *reason = st->stage == PS_PULL_ERR       ? "ErrImagePull"
                             : st->stage == PS_PULL_BACKOFF ? "ImagePullBackOff"
                                                            : "ContainerCreating";
        *err = ks_sprintf("container \"%s\" in pod \"%s\" is waiting to start: %s", container ? container : "",
                          pod->name, reason);
        return -1;
    }
    if (previous && st->restarts == 0) {
        *err = ks_sprintf("previous terminated container \"%s\" in pod \"%s\" not found", container ? container : "",
                          pod->name);
        return -1;
    }
    struct ks_rule r;
    ks_scenario_rule(s->sc, st->rule, &r);
    double now = ks_sim_now(s);
    /* the lines of the current run: the scenario's, spread over a job's duration, then what a
     * crashing process prints about its missing dependency */
    const char *lines[KS_MAX_LIST + 2];
    char extra[2][400];
    int n = 0, visible;
    for (int i = 0; i < r.nlogs; i++) lines[n++] = r.logs[i] ? r.logs[i] : "";
    if (st->job) {
        if (st->stage == PS_DONE || r.duration <= 0)
            visible = n;
        else
            visible = 1 + (int)((now - st->started_at) / r.duration * n);
        if (st->stage == PS_DONE && st->exit_code) {
            snprintf(extra[0], sizeof extra[0], "error: exit status %d", st->exit_code);
            lines[n++] = extra[0];
            visible = n;
        }
    } else {
        visible = n;
        if (st->crashing[0] && (st->stage == PS_CRASHED || previous)) {
            snprintf(extra[0], sizeof extra[0], "panic: %s exited at start (scenario crashing_images)", st->crashing);
            lines[n++] = extra[0];
            visible = n;
        } else if (st->missing[0]) {
            snprintf(extra[0], sizeof extra[0], "waiting for service \"%s\"...", st->missing);
            lines[n++] = extra[0];
            visible = n;
            if (st->stage == PS_CRASHED || previous) {
                snprintf(extra[1], sizeof extra[1], "fatal: required service \"%s\" is not available", st->missing);
                lines[n++] = extra[1];
                visible = n;
            }
        }
    }
    if (visible > n) visible = n;
    for (size_t i = *cursor; (int)i < visible; i++) {
        ks_buf_adds(out, lines[i]);
        ks_buf_adds(out, "\n");
    }
    if ((size_t)visible > *cursor) *cursor = (size_t)visible;
    *done = st->stage == PS_DONE || st->stage == PS_CRASHED;
    return 0;
}

/* ---- pods made by controllers ---- */

struct ks_obj *ks_pod_create(struct ks_server *s, struct ks_obj *owner, const cJSON *tpl, const char *name,
                             const cJSON *extra_labels)
{
    struct ks_rtype *prt = ks_rtype_find(s, "", "v1", "pods");
    cJSON *pod = cJSON_CreateObject();
    if (!pod) return NULL;
    cJSON *md = cJSON_AddObjectToObject(pod, "metadata");
    char gen[300];
    if (name) {
        cJSON_AddStringToObject(md, "name", name);
    } else {
        char suf[8];
        ks_rng_suffix(&s->rng, suf, 5);
        snprintf(gen, sizeof gen, "%s-", owner->name);
        cJSON_AddStringToObject(md, "generateName", gen);
        char full[320];
        snprintf(full, sizeof full, "%s%s", gen, suf);
        cJSON_AddStringToObject(md, "name", full);
    }
    cJSON_AddStringToObject(md, "namespace", owner->ns);
    const cJSON *tmd = ks_j(tpl, "metadata");
    cJSON *labels = cJSON_Duplicate(ks_j(tmd, "labels"), 1);
    if (!labels) labels = cJSON_CreateObject();
    const cJSON *l;
    cJSON_ArrayForEach(l, extra_labels) ks_jset(labels, l->string, cJSON_Duplicate(l, 1));
    cJSON_AddItemToObject(md, "labels", labels);
    if (ks_j(tmd, "annotations"))
        cJSON_AddItemToObject(md, "annotations", cJSON_Duplicate(ks_j(tmd, "annotations"), 1));
    cJSON_AddItemToObject(md, "ownerReferences", ks_ctl_owner_ref(owner));
    cJSON *spec = cJSON_Duplicate(ks_j(tpl, "spec"), 1);
    if (!spec) spec = cJSON_CreateObject();
    ks_jset_str(spec, "nodeName", "kubesim-node-1");
    cJSON_AddItemToObject(pod, "spec", spec);
    cJSON_AddStringToObject(cJSON_AddObjectToObject(pod, "status"), "phase", "Pending");
    ks_defaults_apply(s, prt, pod, NULL);
    if (ks_obj_get(s, prt, owner->ns, ks_jstr(md, "name"))) {
        cJSON_Delete(pod);
        return NULL;
    }
    ks_fields_record_update(s, NULL, pod, "kube-controller-manager", NULL);
    return ks_obj_insert(s, prt, pod);
}

/* ---- Job controller ---- */

/* A Job's conditions carry lastProbeTime beside lastTransitionTime: both the time it was set. */
static void job_condition(cJSON *st, const char *type, const char *reason, const char *msg, const char *ts)
{
    ks_ctl_set_condition(st, type, "True", reason, msg, ts, -1);
    cJSON *c = (cJSON *)ks_ctl_condition(st, type);
    if (c) ks_jset_str(c, "lastProbeTime", ts);
}

/* Marks a job failed for `reason` (FailureTarget then Failed, as the job controller does),
 * records the Event, and deletes its pods that are still running. */
static void fail_job(struct ks_server *s, struct ks_obj *job, cJSON *st, struct ks_obj **pods, size_t n,
                     const char *reason, const char *message, const char *ts)
{
    job_condition(st, "FailureTarget", reason, message, ts);
    job_condition(st, "Failed", reason, message, ts);
    ks_ctl_event(s, job, "Warning", reason, "job-controller", message);
    for (size_t i = 0; pods && i < n; i++) {
        const char *ph = ks_jstr(ks_j(pods[i]->json, "status"), "phase");
        if (!ks_streq(ph, "Succeeded") && !ks_streq(ph, "Failed")) ks_ctl_delete(s, pods[i], "Background", NULL);
    }
}

void ks_job_reconcile(struct ks_server *s, struct ks_obj *job)
{
    if (ks_jpath(job->json, "metadata.deletionTimestamp")) return;
    const cJSON *spec = ks_j(job->json, "spec"), *ost = ks_j(job->json, "status");
    const cJSON *done = ks_ctl_condition(ost, "Complete"), *failed_c = ks_ctl_condition(ost, "Failed");
    if ((done && ks_streq(ks_jstr(done, "status"), "True")) ||
        (failed_c && ks_streq(ks_jstr(failed_c, "status"), "True")))
        return;
    if (ks_jbool(spec, "suspend", 0)) return;
    double now = ks_ctl_now(s);
    char ts[32];
    ks_ctl_wall_str(s, ts);
    int completions = (int)ks_jnum(spec, "completions", 1), parallelism = (int)ks_jnum(spec, "parallelism", 1);
    int limit = (int)ks_jnum(spec, "backoffLimit", 6);
    struct ks_rtype *prt = ks_rtype_find(s, "", "v1", "pods");
    size_t n;
    struct ks_obj **pods = ks_ctl_owned(s, prt, job->ns, job->uid, &n);
    int active = 0, ready = 0, succeeded = 0, failed = 0;
    for (size_t i = 0; pods && i < n; i++) {
        const char *ph = ks_jstr(ks_j(pods[i]->json, "status"), "phase");
        if (ks_streq(ph, "Succeeded"))
            succeeded++;
        else if (ks_streq(ph, "Failed"))
            failed++;
        else {
            active++;
            if (ks_pod_ready(pods[i])) ready++;
        }
    }
    /* failures of pods that are gone still count */
    int old_failed = (int)ks_jnum(ost, "failed", 0), old_succeeded = (int)ks_jnum(ost, "succeeded", 0);
    if (failed < old_failed) failed = old_failed;
    if (succeeded < old_succeeded) succeeded = old_succeeded;
    if (failed > old_failed) job->progress_at = now; /* the retry back-off counts from the last failure */

    cJSON *nw = ks_ctl_copy(job);
    cJSON *st = ks_jobj(nw, "status");
    if (!ks_j(st, "startTime")) ks_jset_str(st, "startTime", ts);
    if (job->started_at <= 0) job->started_at = now > 0 ? now : 1e-9;
    double active_deadline = ks_jnum(spec, "activeDeadlineSeconds", -1);
    int finished = 0;
    if (succeeded < completions && active_deadline >= 0 && now >= job->started_at + active_deadline) {
        fail_job(s, job, st, pods, n, "DeadlineExceeded", "Job was active longer than specified deadline", ts);
        active = ready = 0;
        finished = 1;
    } else if (succeeded >= completions) {
        job_condition(st, "SuccessCriteriaMet", "CompletionsReached", "Reached expected number of succeeded pods", ts);
        job_condition(st, "Complete", "CompletionsReached", "Reached expected number of succeeded pods", ts);
        ks_jset_str(st, "completionTime", ts);
        ks_ctl_event(s, job, "Normal", "Completed", "job-controller", "Job completed");
        finished = 1;
    } else if (failed > limit) {
        fail_job(s, job, st, pods, n, "BackoffLimitExceeded", "Job has reached the specified backoff limit", ts);
        active = ready = 0;
        finished = 1;
    }
    if (!finished && active_deadline >= 0) ks_ctl_at(s, job->uid, job->started_at + active_deadline);
    if (!finished) {
        int want = completions - succeeded;
        if (want > parallelism) want = parallelism;
        double retry_at = failed > 0 ? job->progress_at + backoff(failed, 360) : now;
        if (active < want && now < retry_at) {
            ks_ctl_at(s, job->uid, retry_at);
        } else {
            for (int k = active; k < want; k++) {
                struct ks_obj *p = ks_pod_create(s, job, ks_j(spec, "template"), NULL, NULL);
                if (!p) break;
                if (p->pod) p->pod->attempt = succeeded + failed + k;
                ks_ctl_event(s, job, "Normal", "SuccessfulCreate", "job-controller", "Created pod: %s", p->name);
                active++;
            }
        }
    }
    free(pods);
    ks_jset_num(st, "active", active);
    if (!active) cJSON_DeleteItemFromObjectCaseSensitive(st, "active");
    ks_jset_num(st, "ready", ready);
    ks_jset_num(st, "terminating", 0);
    if (succeeded) ks_jset_num(st, "succeeded", succeeded);
    if (failed) ks_jset_num(st, "failed", failed);
    if (!ks_j(st, "uncountedTerminatedPods")) ks_jset(st, "uncountedTerminatedPods", cJSON_CreateObject());
    /* job is still valid: ks_ctl_delete above only removed pods */
    ks_ctl_write(s, job, nw, "kube-controller-manager", 1);
}
