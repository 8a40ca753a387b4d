/* The object store: resource types, objects keyed by namespace/name and by uid, the global
 * resourceVersion counter and the bounded event history that watches replay from.
 * Every function here runs with s->mu held. */
#include "kubesim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct builtin {
    const char *group, *version, *kind, *plural, *shorts, *categories;
    int namespaced, status, scale, generation;
};

/* As kube-apiserver registers them; generation: the kinds whose registry strategy sets
 * metadata.generation (a ConfigMap or a Namespace has none). */
static const struct builtin BUILTINS[] = {
    {"", "v1", "Namespace", "namespaces", "ns", "", 0, 1, 0, 0},
    {"", "v1", "Pod", "pods", "po", "all", 1, 1, 0, 1},
    {"", "v1", "Service", "services", "svc", "all", 1, 1, 0, 0},
    {"", "v1", "ConfigMap", "configmaps", "cm", "", 1, 0, 0, 0},
    {"", "v1", "Secret", "secrets", "", "", 1, 0, 0, 0},
    {"", "v1", "ServiceAccount", "serviceaccounts", "sa", "", 1, 0, 0, 0},
    {"", "v1", "Event", "events", "ev", "", 1, 0, 0, 0},
    {"", "v1", "Endpoints", "endpoints", "ep", "", 1, 0, 0, 0},
    {"", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", "pvc", "", 1, 1, 0, 0},
    {"", "v1", "Node", "nodes", "no", "", 0, 1, 0, 0},
    {"apps", "v1", "Deployment", "deployments", "deploy", "all", 1, 1, 1, 1},
    {"apps", "v1", "ReplicaSet", "replicasets", "rs", "all", 1, 1, 1, 1},
    {"apps", "v1", "StatefulSet", "statefulsets", "sts", "all", 1, 1, 1, 1},
    {"apps", "v1", "DaemonSet", "daemonsets", "ds", "all", 1, 1, 0, 1},
    {"apps", "v1", "ControllerRevision", "controllerrevisions", "", "", 1, 0, 0, 0},
    {"batch", "v1", "Job", "jobs", "", "all", 1, 1, 0, 1},
    {"batch", "v1", "CronJob", "cronjobs", "cj", "all", 1, 1, 0, 1},
    {"networking.k8s.io", "v1", "Ingress", "ingresses", "ing", "", 1, 1, 0, 1},
    {"networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies", "netpol", "", 1, 0, 0, 1},
    {"policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets", "pdb", "", 1, 1, 0, 1},
    {"autoscaling", "v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers", "hpa", "all", 1, 1, 0, 1},
    {"rbac.authorization.k8s.io", "v1", "Role", "roles", "", "", 1, 0, 0, 0},
    {"rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", "", "", 1, 0, 0, 0},
    {"rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", "", "", 0, 0, 0, 0},
    {"rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings", "", "", 0, 0, 0, 0},
    {"apiextensions.k8s.io", "v1", "CustomResourceDefinition", "customresourcedefinitions", "crd,crds",
     "api-extensions", 0, 1, 0, 1},
};

const char KS_LABELS[] = "metadata.labels";
const char KS_SELECTOR[] = "spec.selector";

static char *lower(const char *s)
{
    char *d = ks_strdup(s);
    if (d)
        for (char *p = d; *p; p++)
            if (*p >= 'A' && *p <= 'Z') *p = (char)(*p - 'A' + 'a');
    return d;
}

struct ks_rtype *ks_rtype_add(struct ks_server *s, const char *group, const char *version, const char *kind,
                              const char *plural, int namespaced)
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
    rt->categories = ks_strdup("");
    rt->namespaced = namespaced;
    rt->generation = 1; /* custom kinds keep one */
    rt->deletecollection = 1;
    ks_map_init(&rt->objs);
    ks_map_init(&rt->by_ns);
    ks_map_init(&rt->by_label);
    if (!rt->group || !rt->version || !rt->kind || !rt->plural || !rt->singular || !rt->list_kind || !rt->short_names ||
        !rt->categories) {
        free(rt->group), free(rt->version), free(rt->kind), free(rt->plural);
        free(rt->singular), free(rt->list_kind), free(rt->short_names), free(rt->categories), free(rt);
        return NULL;
    }
    /* append, so discovery lists types in registration order */
    struct ks_rtype **pp = &s->types;
    int order = 0;
    while (*pp) pp = &(*pp)->next, order++;
    rt->order = order;
    *pp = rt;
    return rt;
}

struct ks_rtype *ks_rtype_find(struct ks_server *s, const char *group, const char *version, const char *plural)
{
    for (struct ks_rtype *rt = s->types; rt; rt = rt->next)
        if (!strcmp(rt->group, group) && !strcmp(rt->version, version) && !strcmp(rt->plural, plural)) return rt;
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
            if (strlen(rt->group) == gl && !strncmp(rt->group, api_version, gl) && !strcmp(rt->version, slash + 1))
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
    ks_map_init(&s->owned);
    for (size_t i = 0; i < sizeof BUILTINS / sizeof BUILTINS[0]; i++) {
        const struct builtin *b = &BUILTINS[i];
        struct ks_rtype *rt = ks_rtype_add(s, b->group, b->version, b->kind, b->plural, b->namespaced);
        if (!rt) return -1;
        free(rt->short_names);
        free(rt->categories);
        rt->short_names = ks_strdup(b->shorts);
        rt->categories = ks_strdup(b->categories);
        if (!rt->short_names || !rt->categories) return -1;
        rt->status_sub = b->status;
        rt->scale_sub = b->scale;
        rt->generation = b->generation;
        rt->deletecollection = strcmp(b->kind, "Namespace") != 0;
        rt->builtin = 1;
        /* Services find their pods by label (endpoints, a workload's required Service), and a
         * pod's change the Services that select it */
        if (!strcmp(b->plural, "pods")) rt->label_path = KS_LABELS;
        if (!strcmp(b->plural, "services")) rt->label_path = KS_SELECTOR;
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

static void strs_free(char **v, int n)
{
    for (int i = 0; i < n; i++) free(v[i]);
    free(v);
}

static void obj_free(struct ks_obj *o)
{
    if (!o) return;
    strs_free(o->owners, o->nowners);
    strs_free(o->lkeys, o->nlkeys);
    free(o->ns);
    free(o->name);
    free(o->uid);
    cJSON_Delete(o->json);
    free(o->text);
    free(o->pod); /* the pod state holds no pointers of its own (see ctl.c) */
    free(o);
}

/* Frees a map of index buckets with the buckets. */
static void sets_free(struct ks_map *m)
{
    for (size_t i = 0; i < m->nb; i++)
        for (struct ks_map_ent *e = m->b[i]; e; e = e->next) {
            struct ks_objset *set = e->val;
            free(set->v);
            free(set);
        }
    ks_map_free(m);
}

void ks_store_free(struct ks_server *s)
{
    struct ks_rtype *rt = s->types;
    while (rt) {
        struct ks_rtype *n = rt->next;
        for (size_t i = 0; i < rt->objs.nb; i++)
            for (struct ks_map_ent *e = rt->objs.b[i]; e; e = e->next) obj_free(e->val);
        ks_map_free(&rt->objs);
        sets_free(&rt->by_ns);
        sets_free(&rt->by_label);
        free(rt->group), free(rt->version), free(rt->kind), free(rt->plural);
        free(rt->singular), free(rt->list_kind), free(rt->short_names), free(rt->categories);
        free(rt);
        rt = n;
    }
    s->types = NULL;
    ks_map_free(&s->uids);
    sets_free(&s->owned);
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

struct ks_obj *ks_obj_by_uid(struct ks_server *s, const char *uid) { return uid ? ks_map_get(&s->uids, uid) : NULL; }

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
    /* {"type":"...","object":<obj>}\n, printed once: the object's text is copied out of it */
    struct ks_buf lb;
    ks_buf_init(&lb);
    ks_buf_reserve(&lb, o->text_len + 512); /* about its last size: one allocation, no regrowth */
    ks_buf_adds(&lb, "{\"type\":\"");
    ks_buf_adds(&lb, names[type]);
    ks_buf_adds(&lb, "\",\"object\":");
    size_t hl = lb.len;
    int ok = ks_jprint_buf(&lb, o->json) == 0;
    size_t obj_len = ok ? lb.len - hl : 0;
    ks_buf_add(&lb, "}\n", 2);
    char *line = ok && !lb.oom ? realloc(lb.data, lb.len + 1) : NULL; /* kept: no slack */
    if (!line) ks_buf_free(&lb);
    size_t line_len = line ? lb.len : 0;
    char *obj = line ? ks_strndup(line + hl, obj_len) : NULL;
    /* the text doubles as the read cache of the object's current state */
    free(o->text);
    o->text = obj;
    o->text_len = obj ? obj_len : 0;
    char *ns = ks_strdup(o->ns);
    /* prev serves selector matching only: managedFields, often half an object, can go */
    cJSON_DeleteItemFromObjectCaseSensitive(ks_j(prev, "metadata"), "managedFields");
    if (!line || !ns) { /* out of memory: the event is lost; watchers will resync */
        cJSON_Delete(prev);
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
    e->obj = NULL; /* parsed from the line by the first watch that needs it (watch.c) */
    e->prev = prev;
    e->line = line;
    e->line_len = line_len;
    s->ring_len++;
    pthread_cond_broadcast(&s->ev_cond);
}

/* ---- indexes ----
 * Without them every controller pass scanned the whole store (a ReplicaSet listing all pods to
 * find its own, a pod change matching every Service's selector against every pod), so a write
 * cost grew with the number of objects. An index that cannot be updated for want of memory sets
 * s->index_lost for good and the lookups fall back to scanning: slower, never wrong. */

static int set_add(struct ks_map *m, const char *key, struct ks_obj *o)
{
    struct ks_objset *set = ks_map_get(m, key);
    if (!set) {
        set = calloc(1, sizeof *set);
        if (!set) return -1;
        if (ks_map_put(m, key, set) < 0) {
            free(set);
            return -1;
        }
    }
    if (set->n == set->cap) {
        size_t cap = set->cap ? set->cap * 2 : 4;
        struct ks_obj **v = realloc(set->v, cap * sizeof *v);
        if (!v) return -1;
        set->v = v;
        set->cap = cap;
    }
    set->v[set->n++] = o;
    return 0;
}

static void set_del(struct ks_map *m, const char *key, struct ks_obj *o)
{
    struct ks_objset *set = ks_map_get(m, key);
    if (!set) return;
    for (size_t i = set->n; i-- > 0;)
        if (set->v[i] == o) {
            set->v[i] = set->v[--set->n];
            break;
        }
    if (!set->n) {
        ks_map_del(m, key);
        free(set->v);
        free(set);
    }
}

/* The distinct uids of json's ownerReferences (*out NULL when none); -1 on OOM. */
static int owners_of(const cJSON *json, char ***out)
{
    *out = NULL;
    const cJSON *refs = ks_jpath(json, "metadata.ownerReferences"), *r;
    int n = 0, cap = cJSON_GetArraySize(refs);
    if (cap <= 0) return 0;
    char **v = calloc((size_t)cap, sizeof *v);
    if (!v) return -1;
    cJSON_ArrayForEach(r, refs)
    {
        const char *uid = ks_jstr(r, "uid");
        int dup = !uid;
        for (int i = 0; i < n && !dup; i++) dup = !strcmp(v[i], uid);
        if (dup) continue;
        if (!(v[n] = ks_strdup(uid))) {
            strs_free(v, n);
            return -1;
        }
        n++;
    }
    *out = v;
    return n;
}

/* The by_label keys of an object: one per string member of the map at path. */
static int label_keys(const char *ns, const cJSON *json, const char *path, char ***out)
{
    *out = NULL;
    const cJSON *labels = ks_jpath(json, path), *l;
    int n = 0, cap = cJSON_GetArraySize(labels);
    if (cap <= 0) return 0;
    char **v = calloc((size_t)cap, sizeof *v);
    if (!v) return -1;
    cJSON_ArrayForEach(l, labels)
    {
        if (!cJSON_IsString(l) || !l->string) continue;
        if (!(v[n] = ks_sprintf("%s\x1f%s\x1f%s", ns, l->string, l->valuestring))) {
            strs_free(v, n);
            return -1;
        }
        n++;
    }
    *out = v;
    return n;
}

/* A Service is filed under one member of its selector, the one fewest other Services are
 * filed under: a pod it selects has that label, so looking up the pod's labels finds it, and
 * a label every Service selects on (app.kubernetes.io/part-of) does not make each pod's
 * change visit every Service. None when a member is not a string (it selects nothing). */
static int selector_keys(struct ks_rtype *rt, const char *ns, const cJSON *json, char ***out)
{
    *out = NULL;
    const cJSON *sel = ks_jpath(json, KS_SELECTOR), *m, *best = NULL;
    size_t best_n = 0;
    cJSON_ArrayForEach(m, sel)
    {
        if (!cJSON_IsString(m) || !m->string) return 0;
        char *key = ks_sprintf("%s\x1f%s\x1f%s", ns, m->string, m->valuestring);
        if (!key) return -1;
        const struct ks_objset *set = ks_map_get(&rt->by_label, key);
        free(key);
        if (!best || (set ? set->n : 0) < best_n) best = m, best_n = set ? set->n : 0;
    }
    if (!best) return 0;
    char **v = calloc(1, sizeof *v);
    if (!v || !(v[0] = ks_sprintf("%s\x1f%s\x1f%s", ns, best->string, best->valuestring))) {
        free(v);
        return -1;
    }
    *out = v;
    return 1;
}

static int index_keys(struct ks_obj *o, char ***out)
{
    if (o->rt->label_path == KS_SELECTOR) return selector_keys(o->rt, o->ns, o->json, out);
    return label_keys(o->ns, o->json, o->rt->label_path, out);
}

static void file_owners(struct ks_server *s, struct ks_obj *o)
{
    for (int i = 0; i < o->nowners; i++)
        if (set_add(&s->owned, o->owners[i], o) < 0) s->index_lost = 1;
}

static void unfile_owners(struct ks_server *s, struct ks_obj *o)
{
    for (int i = 0; i < o->nowners; i++) set_del(&s->owned, o->owners[i], o);
    strs_free(o->owners, o->nowners);
    o->owners = NULL;
    o->nowners = 0;
}

static void file_labels(struct ks_server *s, struct ks_obj *o)
{
    for (int i = 0; i < o->nlkeys; i++)
        if (set_add(&o->rt->by_label, o->lkeys[i], o) < 0) s->index_lost = 1;
}

static void unfile_labels(struct ks_obj *o)
{
    for (int i = 0; i < o->nlkeys; i++) set_del(&o->rt->by_label, o->lkeys[i], o);
    strs_free(o->lkeys, o->nlkeys);
    o->lkeys = NULL;
    o->nlkeys = 0;
}

/* Files o (just stored) under its namespace, owners and labels. */
static void index_add(struct ks_server *s, struct ks_obj *o)
{
    if (o->rt->namespaced && set_add(&o->rt->by_ns, o->ns, o) < 0) s->index_lost = 1;
    int n = owners_of(o->json, &o->owners);
    if (n < 0) s->index_lost = 1;
    o->nowners = n > 0 ? n : 0;
    file_owners(s, o);
    if (o->rt->label_path) {
        n = index_keys(o, &o->lkeys);
        if (n < 0) s->index_lost = 1;
        o->nlkeys = n > 0 ? n : 0;
        file_labels(s, o);
    }
}

/* Refiles o after its content changed from old; most writes (status) touch neither owners nor
 * labels, and cost two comparisons. */
static void index_update(struct ks_server *s, struct ks_obj *o, const cJSON *old)
{
    if (!ks_jequal(ks_jpath(old, "metadata.ownerReferences"), ks_jpath(o->json, "metadata.ownerReferences"))) {
        char **v;
        int n = owners_of(o->json, &v);
        unfile_owners(s, o);
        if (n < 0) s->index_lost = 1;
        o->owners = v;
        o->nowners = n > 0 ? n : 0;
        file_owners(s, o);
    }
    const char *lp = o->rt->label_path;
    if (lp && !ks_jequal(ks_jpath(old, lp), ks_jpath(o->json, lp))) {
        unfile_labels(o);
        char **v;
        int n = index_keys(o, &v);
        if (n < 0) s->index_lost = 1;
        o->lkeys = v;
        o->nlkeys = n > 0 ? n : 0;
        file_labels(s, o);
    }
}

static void index_remove(struct ks_server *s, struct ks_obj *o)
{
    if (o->rt->namespaced) set_del(&o->rt->by_ns, o->ns, o);
    unfile_owners(s, o);
    unfile_labels(o);
}

void ks_obj_stamp(struct ks_server *s, struct ks_rtype *rt, cJSON *json)
{
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
    if (!rt->generation)
        cJSON_DeleteItemFromObjectCaseSensitive(md, "generation");
    else if (!ks_j(md, "generation"))
        ks_jset_num(md, "generation", 1);
    if (!rt->namespaced) cJSON_DeleteItemFromObjectCaseSensitive(md, "namespace");
    char *gv = ks_rtype_gv(rt);
    ks_jset_str(json, "apiVersion", gv);
    free(gv);
    ks_jset_str(json, "kind", rt->kind);
}

struct ks_obj *ks_obj_insert(struct ks_server *s, struct ks_rtype *rt, cJSON *json)
{
    struct ks_obj *o = calloc(1, sizeof *o);
    if (!o) {
        cJSON_Delete(json);
        return NULL;
    }
    ks_obj_stamp(s, rt, json);
    cJSON *md = ks_jobj(json, "metadata");
    const char *uid = ks_jstr(md, "uid");
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
    index_add(s, o);
    record(s, KS_ADDED, o, NULL);
    ks_ctl_changed(s, o, KS_ADDED, NULL);
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

/* server: the server's own write, whose deletion marks and generation come from json */
static int replace(struct ks_server *s, struct ks_obj *o, cJSON *json, int server)
{
    cJSON *md = ks_jobj(json, "metadata"), *omd = ks_j(o->json, "metadata");
    /* identity fields are the server's */
    static const char *keep[] = {"uid",
                                 "creationTimestamp",
                                 "name",
                                 "namespace",
                                 "resourceVersion",
                                 "generation",
                                 "deletionTimestamp",
                                 "deletionGracePeriodSeconds"};
    for (size_t i = 0; i < sizeof keep / sizeof keep[0] - (server ? 3 : 0); i++) {
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
    if (!server && o->rt->generation && !spec_equal(json, o->json))
        ks_jset_num(md, "generation", ks_jnum(omd, "generation", 1) + 1);
    cJSON *old = o->json;
    o->json = json;
    o->rv = ++s->rv;
    ks_obj_set_rv(o);
    index_update(s, o, old);
    /* the controllers see old before record takes it (it keeps it as the event's prev) */
    ks_ctl_changed(s, o, KS_MODIFIED, old);
    record(s, KS_MODIFIED, o, old);
    return 0;
}

int ks_obj_update(struct ks_server *s, struct ks_obj *o, cJSON *json) { return replace(s, o, json, 0); }

int ks_obj_update_as_server(struct ks_server *s, struct ks_obj *o, cJSON *json) { return replace(s, o, json, 1); }

void ks_obj_remove(struct ks_server *s, struct ks_obj *o)
{
    char key[600];
    objkey(key, sizeof key, o->ns, o->name);
    ks_map_del(&o->rt->objs, key);
    ks_map_del(&s->uids, o->uid);
    index_remove(s, o);
    s->nobjects--;
    o->rv = ++s->rv;
    ks_obj_set_rv(o);
    record(s, KS_DELETED, o, NULL);
    o->gone = 1;
    ks_ctl_changed(s, o, KS_DELETED, NULL);
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
    *n = 0;
    if (ns && rt->namespaced && !s->index_lost) {
        const struct ks_objset *set = ks_map_get(&rt->by_ns, ns);
        size_t k = set ? set->n : 0;
        struct ks_obj **arr = malloc((k + 1) * sizeof *arr);
        if (!arr) return NULL;
        if (k) memcpy(arr, set->v, k * sizeof *arr);
        qsort(arr, k, sizeof *arr, cmp_obj);
        *n = k;
        return arr;
    }
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

static int cmp_typed(const void *a, const void *b)
{
    const struct ks_obj *x = *(struct ks_obj *const *)a, *y = *(struct ks_obj *const *)b;
    if (x->rt != y->rt) return x->rt->order - y->rt->order;
    return cmp_obj(a, b);
}

static int owned_by(const struct ks_obj *o, const char *uid)
{
    const cJSON *r;
    cJSON_ArrayForEach(r, ks_jpath(o->json, "metadata.ownerReferences")) if (ks_streq(ks_jstr(r, "uid"), uid)) return 1;
    return 0;
}

struct ks_obj **ks_obj_children(struct ks_server *s, const char *uid, size_t *n)
{
    *n = 0;
    if (!s->index_lost) {
        const struct ks_objset *set = ks_map_get(&s->owned, uid);
        size_t k = set ? set->n : 0;
        struct ks_obj **arr = malloc((k + 1) * sizeof *arr);
        if (!arr) return NULL;
        if (k) memcpy(arr, set->v, k * sizeof *arr);
        qsort(arr, k, sizeof *arr, cmp_typed);
        *n = k;
        return arr;
    }
    struct ks_obj **arr = malloc((s->nobjects + 1) * sizeof *arr);
    if (!arr) return NULL;
    for (struct ks_rtype *rt = s->types; rt; rt = rt->next)
        for (size_t i = 0; i < rt->objs.nb; i++)
            for (struct ks_map_ent *e = rt->objs.b[i]; e; e = e->next)
                if (*n < s->nobjects && owned_by(e->val, uid)) arr[(*n)++] = e->val;
    qsort(arr, *n, sizeof *arr, cmp_typed);
    return arr;
}

struct ks_obj **ks_obj_select(struct ks_server *s, struct ks_rtype *rt, const char *ns, const cJSON *match, size_t *n)
{
    *n = 0;
    /* the candidates: the objects with the rarest of the wanted labels, when indexed */
    const struct ks_objset *best = NULL;
    int indexed = rt->label_path == KS_LABELS && !s->index_lost && rt->namespaced && ns && match && match->child;
    const cJSON *m, *wanted = indexed ? match : NULL;
    cJSON_ArrayForEach(m, wanted)
    {
        if (!cJSON_IsString(m) || !m->string) return calloc(1, sizeof(struct ks_obj *)); /* matches nothing */
        char *key = ks_sprintf("%s\x1f%s\x1f%s", ns, m->string, m->valuestring);
        if (!key) return NULL;
        const struct ks_objset *set = ks_map_get(&rt->by_label, key);
        free(key);
        if (!set) return calloc(1, sizeof(struct ks_obj *));
        if (!best || set->n < best->n) best = set;
    }
    struct ks_obj **arr;
    size_t k;
    if (best) {
        k = best->n;
        arr = malloc((k + 1) * sizeof *arr);
        if (!arr) return NULL;
        memcpy(arr, best->v, k * sizeof *arr);
    } else if (!(arr = ks_obj_list(s, rt, ns, &k))) {
        return NULL;
    }
    for (size_t i = 0; i < k; i++)
        if (ks_map_subset(match, ks_jpath(arr[i]->json, "metadata.labels"))) arr[(*n)++] = arr[i];
    qsort(arr, *n, sizeof *arr, cmp_obj);
    return arr;
}

/* Appends the members of the by_label bucket of ns/key=value to *v (grown as needed). */
static int add_bucket(struct ks_rtype *rt, const char *ns, const cJSON *l, struct ks_obj ***v, size_t *n, size_t *cap)
{
    char buf[512], *key = buf;
    if (snprintf(buf, sizeof buf, "%s\x1f%s\x1f%s", ns, l->string, l->valuestring) >= (int)sizeof buf &&
        !(key = ks_sprintf("%s\x1f%s\x1f%s", ns, l->string, l->valuestring)))
        return -1;
    const struct ks_objset *set = ks_map_get(&rt->by_label, key);
    if (key != buf) free(key);
    if (!set) return 0;
    if (*n + set->n > *cap) {
        size_t c = (*n + set->n) * 2;
        struct ks_obj **nv = realloc(*v, c * sizeof *nv);
        if (!nv) return -1;
        *v = nv;
        *cap = c;
    }
    memcpy(*v + *n, set->v, set->n * sizeof **v);
    *n += set->n;
    return 0;
}

struct ks_obj **ks_obj_selecting(struct ks_server *s, struct ks_rtype *rt, const char *ns, const cJSON *labels,
                                 const cJSON *was, size_t *n)
{
    *n = 0;
    struct ks_obj **v = NULL;
    size_t k = 0, cap = 0;
    if (rt->label_path == KS_SELECTOR && rt->namespaced && !s->index_lost) {
        /* the candidates: the objects filed under one of the labels, now or before (each
         * object is filed under one member of its selector, so it comes up once per map) */
        const cJSON *l, *maps[2] = {labels, was == labels ? NULL : was};
        for (int m = 0; m < 2; m++) cJSON_ArrayForEach(l, maps[m])
            {
                if (!cJSON_IsString(l) || !l->string) continue;
                if (add_bucket(rt, ns, l, &v, &k, &cap) < 0) {
                    free(v);
                    return NULL;
                }
            }
        if (!v && !(v = malloc(sizeof *v))) return NULL;
        qsort(v, k, sizeof *v, cmp_obj);
    } else if (!(v = ks_obj_list(s, rt, ns, &k))) {
        return NULL;
    }
    for (size_t i = 0; i < k; i++) {
        if (*n && v[*n - 1] == v[i]) continue; /* found through labels and was alike */
        const cJSON *sel = ks_jpath(v[i]->json, "spec.selector");
        if (cJSON_IsObject(sel) && sel->child && (ks_map_subset(sel, labels) || ks_map_subset(sel, was)))
            v[(*n)++] = v[i];
    }
    return v;
}
