/* The object store: resource types, objects keyed by namespace/name and by uid, the global
 * resourceVersion counter and the bounded event history that watches replay from.
 * Every function here runs with s->mu held. */
#include "kubesim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct builtin {
    const char *group, *version, *kind, *plural, *shorts;
    int namespaced, all, status, scale;
};

static const struct builtin BUILTINS[] = {
    {"", "v1", "Namespace", "namespaces", "ns", 0, 0, 1, 0},
    {"", "v1", "Pod", "pods", "po", 1, 1, 1, 0},
    {"", "v1", "Service", "services", "svc", 1, 1, 1, 0},
    {"", "v1", "ConfigMap", "configmaps", "cm", 1, 0, 0, 0},
    {"", "v1", "Secret", "secrets", "", 1, 0, 0, 0},
    {"", "v1", "ServiceAccount", "serviceaccounts", "sa", 1, 0, 0, 0},
    {"", "v1", "Event", "events", "ev", 1, 0, 0, 0},
    {"", "v1", "Endpoints", "endpoints", "ep", 1, 0, 0, 0},
    {"", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", "pvc", 1, 0, 1, 0},
    {"", "v1", "Node", "nodes", "no", 0, 0, 1, 0},
    {"apps", "v1", "Deployment", "deployments", "deploy", 1, 1, 1, 1},
    {"apps", "v1", "ReplicaSet", "replicasets", "rs", 1, 1, 1, 1},
    {"apps", "v1", "StatefulSet", "statefulsets", "sts", 1, 1, 1, 1},
    {"apps", "v1", "DaemonSet", "daemonsets", "ds", 1, 1, 1, 0},
    {"apps", "v1", "ControllerRevision", "controllerrevisions", "", 1, 0, 0, 0},
    {"batch", "v1", "Job", "jobs", "", 1, 1, 1, 0},
    {"batch", "v1", "CronJob", "cronjobs", "cj", 1, 1, 1, 0},
    {"networking.k8s.io", "v1", "Ingress", "ingresses", "ing", 1, 0, 1, 0},
    {"networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies", "netpol", 1, 0, 0, 0},
    {"policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets", "pdb", 1, 0, 1, 0},
    {"autoscaling", "v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers", "hpa", 1, 1, 1, 0},
    {"rbac.authorization.k8s.io", "v1", "Role", "roles", "", 1, 0, 0, 0},
    {"rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", "", 1, 0, 0, 0},
    {"rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", "", 0, 0, 0, 0},
    {"rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings", "", 0, 0, 0, 0},
    {"apiextensions.k8s.io", "v1", "CustomResourceDefinition", "customresourcedefinitions", "crd,crds", 0,
     0, 1, 0},
};

static char *lower(const char *s)
{
    char *d = ks_strdup(s);
    if (d)
        for (char *p = d; *p; p++)
            if (*p >= 'A' && *p <= 'Z') *p = (char)(*p - 'A' + 'a');
    return d;
}

struct ks_rtype *ks_rtype_add(struct ks_server *s, const char *group, const char *version,
                              const char *kind, const char *plural, int namespaced)
{
    struct ks_rtype *rt = ks_rtype_find(s, group, version, plural);
    if (rt) return rt;
    rt = calloc(1, sizeof *rt);
    if (!rt) return NULL;
    rt->group = ks_strdup(group);
    rt->version = ks_strdup(version);
    rt->kind = ks_strdup(kind);
    rt->plural = ks_strdup(plural);
    rt->singular = lower(kind);
    rt->list_kind = ks_sprintf("%sList", kind);
    rt->short_names = ks_strdup("");
    rt->namespaced = namespaced;
    ks_map_init(&rt->objs);
    if (!rt->group || !rt->version || !rt->kind || !rt->plural || !rt->singular || !rt->list_kind ||
        !rt->short_names) {
        free(rt->group), free(rt->version), free(rt->kind), free(rt->plural);
        free(rt->singular), free(rt->list_kind), free(rt->short_names), free(rt);
        return NULL;
    }
    /* append, so discovery lists types in registration order */
    struct ks_rtype **pp = &s->types;
    while (*pp) pp = &(*pp)->next;
    *pp = rt;
    return rt;
}

struct ks_rtype *ks_rtype_find(struct ks_server *s, const char *group, const char *version,
                               const char *plural)
{
    for (struct ks_rtype *rt = s->types; rt; rt = rt->next)
        if (!strcmp(rt->group, group) && !strcmp(rt->version, version) && !strcmp(rt->plural, plural))
            return rt;
    return NULL;
}

struct ks_rtype *ks_rtype_by_kind(struct ks_server *s, const char *api_version, const char *kind)
{
    if (!api_version || !kind) return NULL;
    const char *slash = strchr(api_version, '/');
    for (struct ks_rtype *rt = s->types; rt; rt = rt->next) {
        if (strcmp(rt->kind, kind)) continue;
        if (slash) {
            size_t gl = (size_t)(slash - api_version);
            if (strlen(rt->group) == gl && !strncmp(rt->group, api_version, gl) &&
                !strcmp(rt->version, slash + 1))
                return rt;
        } else if (!rt->group[0] && !strcmp(rt->version, api_version)) {
            return rt;
        }
    }
    return NULL;
}

char *ks_rtype_gv(const struct ks_rtype *rt)
{
    return rt->group[0] ? ks_sprintf("%s/%s", rt->group, rt->version) : ks_strdup(rt->version);
}

const char *ks_rtype_qualified(const struct ks_rtype *rt, char *buf, size_t n)
{
    if (rt->group[0])
        snprintf(buf, n, "%s.%s", rt->plural, rt->group);
    else
        snprintf(buf, n, "%s", rt->plural);
    return buf;
}

int ks_store_init(struct ks_server *s)
{
    ks_map_init(&s->uids);
    for (size_t i = 0; i < sizeof BUILTINS / sizeof BUILTINS[0]; i++) {
        const struct builtin *b = &BUILTINS[i];
        struct ks_rtype *rt = ks_rtype_add(s, b->group, b->version, b->kind, b->plural, b->namespaced);
        if (!rt) return -1;
        free(rt->short_names);
        rt->short_names = ks_strdup(b->shorts);
        if (!rt->short_names) return -1;
        rt->category_all = b->all;
        rt->status_sub = b->status;
        rt->scale_sub = b->scale;
        rt->builtin = 1;
    }
    if (s->faults.history <= 0) s->faults.history = 10000;
    s->ring_cap = (size_t)s->faults.history;
    s->ring = calloc(s->ring_cap, sizeof *s->ring);
    return s->ring ? 0 : -1;
}

static void event_free(struct ks_event *e)
{
    free(e->ns);
    cJSON_Delete(e->obj);
    cJSON_Delete(e->prev);
    free(e->line);
    memset(e, 0, sizeof *e);
}

static void obj_free(struct ks_obj *o)
{
    if (!o) return;
    free(o->ns);
    free(o->name);
    free(o->uid);
    cJSON_Delete(o->json);
    free(o->text);
    free(o->pod); /* the pod state holds no pointers of its own (see ctl.c) */
    free(o);
}

void ks_store_free(struct ks_server *s)
{
    struct ks_rtype *rt = s->types;
    while (rt) {
        struct ks_rtype *n = rt->next;
        for (size_t i = 0; i < rt->objs.nb; i++)
            for (struct ks_map_ent *e = rt->objs.b[i]; e; e = e->next) obj_free(e->val);
        ks_map_free(&rt->objs);
        free(rt->group), free(rt->version), free(rt->kind), free(rt->plural);
        free(rt->singular), free(rt->list_kind), free(rt->short_names);
        free(rt);
        rt = n;
    }
    s->types = NULL;
    ks_map_free(&s->uids);
    for (size_t i = 0; i < s->ring_len; i++) event_free(&s->ring[(s->ring_start + i) % s->ring_cap]);
    free(s->ring);
    s->ring = NULL;
}

double ks_sim_now(struct ks_server *s) { return (ks_mono() - s->mono0) / s->time_scale; }

void ks_now_str(struct ks_server *s, char out[32])
{
    (void)s;
    ks_rfc3339(ks_wall(), out);
}

void ks_stat_inc(struct ks_map *m, const char *key)
{
    uintptr_t v = (uintptr_t)ks_map_get(m, key);
    ks_map_put(m, key, (void *)(v + 1));
}

static void objkey(char *buf, size_t n, const char *ns, const char *name)
{
    snprintf(buf, n, "%s/%s", ns ? ns : "", name);
}

struct ks_obj *ks_obj_get(struct ks_server *s, struct ks_rtype *rt, const char *ns, const char *name)
{
    (void)s;
    char key[600];
    if (!name) return NULL;
    objkey(key, sizeof key, rt->namespaced ? ns : "", name);
    return ks_map_get(&rt->objs, key);
}

struct ks_obj *ks_obj_by_uid(struct ks_server *s, const char *uid)
{
    return uid ? ks_map_get(&s->uids, uid) : NULL;
}

const char *ks_obj_text(struct ks_obj *o, size_t *len)
{
    if (!o->text) {
        o->text = ks_jprint(o->json);
        o->text_len = o->text ? strlen(o->text) : 0;
    }
    *len = o->text_len;
    return o->text;
}

void ks_obj_set_rv(struct ks_obj *o)
{
    free(o->text); /* any change to json invalidates the text */
    o->text = NULL;
    char rv[24];
    snprintf(rv, sizeof rv, "%llu", (unsigned long long)o->rv);
    ks_jset_str(ks_jobj(o->json, "metadata"), "resourceVersion", rv);
}

/* Appends an event to the history, evicting the oldest when full, and wakes the watchers. */
/* prev (owned, may be NULL) is the state before a modification. */
static void record(struct ks_server *s, enum ks_evtype type, struct ks_obj *o, cJSON *prev)
{
    static const char *names[] = {"ADDED", "MODIFIED", "DELETED"};
    char *obj = ks_jprint(o->json);
    cJSON *snap = cJSON_Duplicate(o->json, 1);
    char *line = obj ? ks_sprintf("{\"type\":\"%s\",\"object\":%s}\n", names[type], obj) : NULL;
    /* the text doubles as the read cache of the object's current state */
    free(o->text);
    o->text = obj;
    o->text_len = obj ? strlen(obj) : 0;
    char *ns = ks_strdup(o->ns);
    /* snapshots serve selector matching only: managedFields, often half an object, can go */
    cJSON_DeleteItemFromObjectCaseSensitive(ks_j(snap, "metadata"), "managedFields");
    cJSON_DeleteItemFromObjectCaseSensitive(ks_j(prev, "metadata"), "managedFields");
    if (!snap || !line || !ns) { /* out of memory: the event is lost; watchers will resync */
        cJSON_Delete(prev);
        cJSON_Delete(snap);
        free(line);
        free(ns);
        return;
    }
    if (s->ring_len == s->ring_cap) {
        struct ks_event *old = &s->ring[s->ring_start];
        s->evicted_rv = old->rv;
        event_free(old);
        s->ring_start = (s->ring_start + 1) % s->ring_cap;
        s->ring_len--;
    }
    struct ks_event *e = &s->ring[(s->ring_start + s->ring_len) % s->ring_cap];
    e->rv = o->rv;
    e->type = type;
    e->rt = o->rt;
    e->ns = ns;
    e->obj = snap;
    e->prev = prev;
    e->line = line;
    e->line_len = strlen(line);
    s->ring_len++;
    pthread_cond_broadcast(&s->ev_cond);
}

struct ks_obj *ks_obj_insert(struct ks_server *s, struct ks_rtype *rt, cJSON *json)
{
    struct ks_obj *o = calloc(1, sizeof *o);
    if (!o) {
        cJSON_Delete(json);
        return NULL;
    }
    cJSON *md = ks_jobj(json, "metadata");
    char uid[37], ts[32];
    /* defaulting may have chosen the uid already (a Job's selector is keyed by it) */
    if (ks_jstr(md, "uid") && strlen(ks_jstr(md, "uid")) < sizeof uid)
        snprintf(uid, sizeof uid, "%s", ks_jstr(md, "uid"));
    else
        ks_rng_uid(&s->rng, uid);
    ks_now_str(s, ts);
    ks_jset_str(md, "uid", uid);
    ks_jset_str(md, "creationTimestamp", ts);
    if (!ks_j(md, "generation")) ks_jset_num(md, "generation", 1);
    if (!rt->namespaced) cJSON_DeleteItemFromObjectCaseSensitive(md, "namespace");
    char *gv = ks_rtype_gv(rt);
    ks_jset_str(json, "apiVersion", gv);
    free(gv);
    ks_jset_str(json, "kind", rt->kind);
    o->rt = rt;
    o->json = json;
    o->ns = ks_strdup(rt->namespaced ? ks_jstr(md, "namespace") : "");
    o->name = ks_strdup(ks_jstr(md, "name"));
    o->uid = ks_strdup(uid);
    char key[600];
    if (!o->ns || !o->name || !o->uid) goto oom;
    objkey(key, sizeof key, o->ns, o->name);
    if (ks_map_put(&rt->objs, key, o) < 0) goto oom;
    if (ks_map_put(&s->uids, o->uid, o) < 0) {
        ks_map_del(&rt->objs, key);
        goto oom;
    }
    o->rv = ++s->rv;
    ks_obj_set_rv(o);
    s->nobjects++;
    record(s, KS_ADDED, o, NULL);
    ks_ctl_changed(s, o, KS_ADDED);
    return o;
oom:
    obj_free(o);
    return NULL;
}

/* Everything but metadata and status: a change there bumps metadata.generation. */
static int spec_equal(const cJSON *a, const cJSON *b)
{
    const cJSON *c;
    cJSON_ArrayForEach(c, a)
    {
        if (!strcmp(c->string, "metadata") || !strcmp(c->string, "status")) continue;
        if (!ks_jequal(c, ks_j(b, c->string))) return 0;
    }
    cJSON_ArrayForEach(c, b)
    {
        if (!strcmp(c->string, "metadata") || !strcmp(c->string, "status")) continue;
        if (!ks_j(a, c->string)) return 0;
    }
    return 1;
}

int ks_obj_update(struct ks_server *s, struct ks_obj *o, cJSON *json)
{
    cJSON *md = ks_jobj(json, "metadata"), *omd = ks_j(o->json, "metadata");
    /* identity fields are the server's */
    static const char *keep[] = {"uid", "creationTimestamp", "name", "namespace", "generation",
                                 "resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds"};
    for (size_t i = 0; i < sizeof keep / sizeof keep[0]; i++) {
        cJSON *v = ks_j(omd, keep[i]);
        if (v)
            ks_jset(md, keep[i], cJSON_Duplicate(v, 1));
        else
            cJSON_DeleteItemFromObjectCaseSensitive(md, keep[i]);
    }
    ks_jset_str(json, "kind", o->rt->kind);
    char *gv = ks_rtype_gv(o->rt);
    ks_jset_str(json, "apiVersion", gv);
    free(gv);
    if (ks_jequal(json, o->json)) {
        cJSON_Delete(json);
        return 1;
    }
    if (!spec_equal(json, o->json)) ks_jset_num(md, "generation", ks_jnum(omd, "generation", 1) + 1);
    cJSON *old = o->json;
    o->json = json;
    o->rv = ++s->rv;
    ks_obj_set_rv(o);
    record(s, KS_MODIFIED, o, old);
    ks_ctl_changed(s, o, KS_MODIFIED);
    return 0;
}

void ks_obj_remove(struct ks_server *s, struct ks_obj *o)
{
    char key[600];
    objkey(key, sizeof key, o->ns, o->name);
    ks_map_del(&o->rt->objs, key);
    ks_map_del(&s->uids, o->uid);
    s->nobjects--;
    o->rv = ++s->rv;
    ks_obj_set_rv(o);
    record(s, KS_DELETED, o, NULL);
    o->gone = 1;
    ks_ctl_changed(s, o, KS_DELETED);
    obj_free(o);
}

static int cmp_obj(const void *a, const void *b)
{
    const struct ks_obj *x = *(struct ks_obj *const *)a, *y = *(struct ks_obj *const *)b;
    int c = strcmp(x->ns, y->ns);
    return c ? c : strcmp(x->name, y->name);
}

struct ks_obj **ks_obj_list(struct ks_server *s, struct ks_rtype *rt, const char *ns, size_t *n)
{
    (void)s;
    *n = 0;
    struct ks_obj **arr = malloc((rt->objs.n + 1) * sizeof *arr);
    if (!arr) return NULL;
    for (size_t i = 0; i < rt->objs.nb; i++)
        for (struct ks_map_ent *e = rt->objs.b[i]; e; e = e->next) {
            struct ks_obj *o = e->val;
            if (ns && rt->namespaced && strcmp(o->ns, ns)) continue;
            arr[(*n)++] = o;
        }
    qsort(arr, *n, sizeof *arr, cmp_obj);
    return arr;
}
