/* Non-resource endpoints: /version, health, discovery (legacy and the aggregated v2 form that
 * kubectl asks for first), the minimal /openapi/v3 that lets `kubectl apply` validate,
 * and the server-side Table form of lists that `kubectl get` prints. */
#include "http.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *VERBS[] = {"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"};

static cJSON *str_array(const char **v, size_t n)
{
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; a && i < n; i++) cJSON_AddItemToArray(a, cJSON_CreateString(v[i]));
    return a;
}

static cJSON *csv_array(const char *csv)
{
    cJSON *a = cJSON_CreateArray();
    const char *p = csv;
    while (a && p && *p) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        char *t = ks_strndup(p, n);
        if (t) cJSON_AddItemToArray(a, cJSON_CreateString(t));
        free(t);
        p += n;
        if (*p == ',') p++;
    }
    return a;
}

static int wants_aggregated(struct ks_req *r)
{
    const char *acc = ks_hdr(r, "Accept");
    return acc && strstr(acc, "as=APIGroupDiscoveryList") && strstr(acc, "g=apidiscovery.k8s.io");
}

int ks_wants_table(struct ks_req *r)
{
    const char *acc = ks_hdr(r, "Accept");
    return acc && strstr(acc, "as=Table");
}

static cJSON *gvk(const char *group, const char *version, const char *kind)
{
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    cJSON_AddStringToObject(o, "group", group);
    cJSON_AddStringToObject(o, "version", version);
    cJSON_AddStringToObject(o, "kind", kind);
    return o;
}

/* A subresource kubesim serves, as discovery lists it (the kind's group and version unless
 * it answers with another kind). */
struct sub {
    const char *name, *group, *version, *kind;
    const char **verbs;
    size_t nverbs;
};

/* The subresources of a type, sorted by name as kube-apiserver lists them. */
static int subresources(const struct ks_rtype *rt, struct sub out[4])
{
    static const char *gpu[] = {"get", "patch", "update"};
    static const char *g[] = {"get"}, *u[] = {"update"};
    int n = 0;
    if (rt->builtin && !strcmp(rt->kind, "Namespace"))
        out[n++] = (struct sub){"finalize", rt->group, rt->version, rt->kind, u, 1};
    if (rt->builtin && !strcmp(rt->kind, "Pod")) out[n++] = (struct sub){"log", rt->group, rt->version, rt->kind, g, 1};
    if (rt->scale_sub) out[n++] = (struct sub){"scale", "autoscaling", "v1", "Scale", gpu, 3};
    if (rt->status_sub) out[n++] = (struct sub){"status", rt->group, rt->version, rt->kind, gpu, 3};
    return n;
}

static cJSON *verbs_of(const struct ks_rtype *rt)
{
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; a && i < sizeof VERBS / sizeof VERBS[0]; i++)
        if (rt->deletecollection || strcmp(VERBS[i], "deletecollection"))
            cJSON_AddItemToArray(a, cJSON_CreateString(VERBS[i]));
    return a;
}

/* Aggregated discovery names the group and version of a response kind only where they are not
 * the resource's own. */
static cJSON *response_kind(const struct ks_rtype *rt, const char *group, const char *version, const char *kind)
{
    int same = !strcmp(group, rt->group) && !strcmp(version, rt->version);
    return gvk(same ? "" : group, same ? "" : version, kind);
}

static cJSON *agg_resource(struct ks_rtype *rt)
{
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    cJSON_AddStringToObject(o, "resource", rt->plural);
    cJSON_AddItemToObject(o, "responseKind", response_kind(rt, rt->group, rt->version, rt->kind));
    cJSON_AddStringToObject(o, "scope", rt->namespaced ? "Namespaced" : "Cluster");
    cJSON_AddStringToObject(o, "singularResource", rt->singular);
    cJSON_AddItemToObject(o, "verbs", verbs_of(rt));
    if (*rt->short_names) cJSON_AddItemToObject(o, "shortNames", csv_array(rt->short_names));
    if (*rt->categories) cJSON_AddItemToObject(o, "categories", csv_array(rt->categories));
    struct sub subs[4];
    int n = subresources(rt, subs);
    cJSON *list = n ? cJSON_AddArrayToObject(o, "subresources") : NULL;
    for (int i = 0; list && i < n; i++) {
        cJSON *e = cJSON_CreateObject();
        if (!e) continue;
        cJSON_AddStringToObject(e, "subresource", subs[i].name);
        cJSON_AddItemToObject(e, "responseKind", response_kind(rt, subs[i].group, subs[i].version, subs[i].kind));
        cJSON_AddItemToObject(e, "verbs", str_array(subs[i].verbs, subs[i].nverbs));
        cJSON_AddItemToArray(list, e);
    }
    return o;
}

static cJSON *legacy_resources(struct ks_server *s, const char *group, const char *version)
{
    cJSON *list = cJSON_CreateObject();
    if (!list) return NULL;
    cJSON_AddStringToObject(list, "kind", "APIResourceList");
    cJSON_AddStringToObject(list, "apiVersion", "v1");
    char gv[300];
    snprintf(gv, sizeof gv, "%s%s%s", group, *group ? "/" : "", version);
    cJSON_AddStringToObject(list, "groupVersion", gv);
    cJSON *res = cJSON_AddArrayToObject(list, "resources");
    for (struct ks_rtype *rt = s->types; rt; rt = rt->next) {
        if (strcmp(rt->group, group) || strcmp(rt->version, version)) continue;
        cJSON *o = cJSON_CreateObject();
        if (!o) continue;
        cJSON_AddStringToObject(o, "name", rt->plural);
        cJSON_AddStringToObject(o, "singularName", rt->singular);
        cJSON_AddBoolToObject(o, "namespaced", rt->namespaced);
        cJSON_AddStringToObject(o, "kind", rt->kind);
        cJSON_AddItemToObject(o, "verbs", verbs_of(rt));
        if (*rt->short_names) cJSON_AddItemToObject(o, "shortNames", csv_array(rt->short_names));
        if (*rt->categories) cJSON_AddItemToObject(o, "categories", csv_array(rt->categories));
        cJSON_AddItemToArray(res, o);
        struct sub subs[4];
        int n = subresources(rt, subs);
        for (int i = 0; i < n; i++) {
            cJSON *sub = cJSON_CreateObject();
            if (!sub) continue;
            char name[300];
            snprintf(name, sizeof name, "%s/%s", rt->plural, subs[i].name);
            cJSON_AddStringToObject(sub, "name", name);
            cJSON_AddStringToObject(sub, "singularName", "");
            cJSON_AddBoolToObject(sub, "namespaced", rt->namespaced);
            if (strcmp(subs[i].group, rt->group) || strcmp(subs[i].version, rt->version)) {
                cJSON_AddStringToObject(sub, "group", subs[i].group);
                cJSON_AddStringToObject(sub, "version", subs[i].version);
            }
            cJSON_AddStringToObject(sub, "kind", subs[i].kind);
            cJSON_AddItemToObject(sub, "verbs", str_array(subs[i].verbs, subs[i].nverbs));
            cJSON_AddItemToArray(res, sub);
        }
    }
    return list;
}

/* The distinct (group, version) pairs, in registration order; core first. */
static int group_seen(struct ks_server *s, struct ks_rtype *upto, const char *group)
{
    for (struct ks_rtype *rt = s->types; rt && rt != upto; rt = rt->next)
        if (!strcmp(rt->group, group)) return 1;
    return 0;
}

/* Whether v is the first registered type of its group and version: discovery lists each
 * group-version once, in first-seen order. */
static int first_of_version(struct ks_server *s, const struct ks_rtype *v)
{
    for (const struct ks_rtype *w = s->types; w != v; w = w->next)
        if (!strcmp(w->group, v->group) && !strcmp(w->version, v->version)) return 0;
    return 1;
}

static cJSON *aggregated(struct ks_server *s, int core)
{
    cJSON *list = cJSON_CreateObject();
    if (!list) return NULL;
    cJSON_AddStringToObject(list, "kind", "APIGroupDiscoveryList");
    cJSON_AddStringToObject(list, "apiVersion", "apidiscovery.k8s.io/v2");
    cJSON_AddItemToObject(list, "metadata", cJSON_CreateObject());
    cJSON *items = cJSON_AddArrayToObject(list, "items");
    for (struct ks_rtype *g = s->types; g; g = g->next) {
        if (core != !g->group[0] || group_seen(s, g, g->group)) continue;
        cJSON *item = cJSON_CreateObject();
        if (!item) continue;
        cJSON *md = cJSON_AddObjectToObject(item, "metadata");
        if (g->group[0]) cJSON_AddStringToObject(md, "name", g->group); /* the core group has no name */
        cJSON *versions = cJSON_AddArrayToObject(item, "versions");
        /* one entry per version of the group, in first-seen order */
        for (struct ks_rtype *v = s->types; v; v = v->next) {
            if (strcmp(v->group, g->group)) continue;
            if (!first_of_version(s, v)) continue;
            cJSON *ver = cJSON_CreateObject();
            if (!ver) continue;
            cJSON_AddStringToObject(ver, "version", v->version);
            cJSON *res = cJSON_AddArrayToObject(ver, "resources");
            for (struct ks_rtype *rt = s->types; rt; rt = rt->next)
                if (!strcmp(rt->group, g->group) && !strcmp(rt->version, v->version))
                    cJSON_AddItemToArray(res, agg_resource(rt));
            cJSON_AddStringToObject(ver, "freshness", "Current");
            cJSON_AddItemToArray(versions, ver);
        }
        cJSON_AddItemToArray(items, item);
    }
    return list;
}

static cJSON *api_group(struct ks_server *s, struct ks_rtype *g)
{
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    cJSON_AddStringToObject(o, "name", g->group);
    cJSON *vs = cJSON_AddArrayToObject(o, "versions");
    for (struct ks_rtype *v = s->types; v; v = v->next) {
        if (strcmp(v->group, g->group)) continue;
        if (!first_of_version(s, v)) continue;
        cJSON *e = cJSON_CreateObject();
        char gv[300];
        snprintf(gv, sizeof gv, "%s/%s", v->group, v->version);
        cJSON_AddStringToObject(e, "groupVersion", gv);
        cJSON_AddStringToObject(e, "version", v->version);
        cJSON_AddItemToArray(vs, e);
    }
    cJSON *pref = cJSON_Duplicate(cJSON_GetArrayItem(vs, 0), 1);
    cJSON_AddItemToObject(o, "preferredVersion", pref ? pref : cJSON_CreateObject());
    return o;
}

/* ---- OpenAPI v3 ---- */

static uint32_t types_hash(struct ks_server *s, const char *group, const char *version)
{
    struct ks_buf b;
    ks_buf_init(&b);
    for (struct ks_rtype *rt = s->types; rt; rt = rt->next)
        if (!strcmp(rt->group, group) && !strcmp(rt->version, version))
            ks_buf_printf(&b, "%s/%s;", rt->kind, rt->plural);
    uint32_t h = ks_fnv32(b.data ? b.data : "", b.len);
    ks_buf_free(&b);
    return h;
}

static cJSON *openapi_index(struct ks_server *s)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *paths = cJSON_AddObjectToObject(o, "paths");
    for (struct ks_rtype *v = s->types; v; v = v->next) {
        char key[300], url[400];
        if (v->group[0])
            snprintf(key, sizeof key, "apis/%s/%s", v->group, v->version);
        else
            snprintf(key, sizeof key, "api/%s", v->version);
        if (ks_j(paths, key)) continue;
        snprintf(url, sizeof url, "/openapi/v3/%s?hash=%08X", key, types_hash(s, v->group, v->version));
        cJSON_AddStringToObject(cJSON_AddObjectToObject(paths, key), "serverRelativeURL", url);
    }
    return o;
}

static cJSON *param(const char *name, const char *type)
{
    cJSON *p = cJSON_CreateObject();
    cJSON_AddStringToObject(p, "name", name);
    cJSON_AddStringToObject(p, "in", "query");
    cJSON_AddStringToObject(cJSON_AddObjectToObject(p, "schema"), "type", type);
    return p;
}

static cJSON *openapi_gv(struct ks_server *s, const char *group, const char *version)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "openapi", "3.0.0");
    cJSON *info = cJSON_AddObjectToObject(o, "info");
    cJSON_AddStringToObject(info, "title", "Kubernetes");
    cJSON_AddStringToObject(info, "version", "v1.37.0");
    cJSON *paths = cJSON_AddObjectToObject(o, "paths");
    int any = 0;
    for (struct ks_rtype *rt = s->types; rt; rt = rt->next) {
        if (strcmp(rt->group, group) || strcmp(rt->version, version)) continue;
        any = 1;
        char path[600];
        snprintf(path, sizeof path, "/%s%s%s/%s%s/%s/{name}", group[0] ? "apis/" : "api", group, group[0] ? "" : "",
                 version, rt->namespaced ? "/namespaces/{namespace}" : "", rt->plural);
        if (group[0])
            snprintf(path, sizeof path, "/apis/%s/%s%s/%s/{name}", group, version,
                     rt->namespaced ? "/namespaces/{namespace}" : "", rt->plural);
        else
            snprintf(path, sizeof path, "/api/%s%s/%s/{name}", version, rt->namespaced ? "/namespaces/{namespace}" : "",
                     rt->plural);
        cJSON *p = cJSON_AddObjectToObject(paths, path);
        const char *acts[] = {"patch", "put"};
        for (int i = 0; i < 2; i++) {
            cJSON *op = cJSON_AddObjectToObject(p, acts[i]);
            cJSON_AddItemToObject(op, "x-kubernetes-group-version-kind", gvk(rt->group, rt->version, rt->kind));
            cJSON_AddStringToObject(op, "x-kubernetes-action", i == 0 ? "patch" : "put");
            cJSON *ps = cJSON_AddArrayToObject(op, "parameters");
            cJSON_AddItemToArray(ps, param("dryRun", "string"));
            cJSON_AddItemToArray(ps, param("fieldManager", "string"));
            cJSON_AddItemToArray(ps, param("fieldValidation", "string"));
            if (i == 0) cJSON_AddItemToArray(ps, param("force", "boolean"));
            cJSON_AddStringToObject(cJSON_AddObjectToObject(cJSON_AddObjectToObject(op, "responses"), "200"),
                                    "description", "OK");
        }
    }
    cJSON_AddObjectToObject(cJSON_AddObjectToObject(o, "components"), "schemas");
    if (!any) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

/* ---- tables ---- */

static void age(double created_wall, char *out, size_t n)
{
    double d = ks_wall() - created_wall;
    if (d < 0) d = 0;
    long s = (long)d;
    if (s < 120)
        snprintf(out, n, "%lds", s);
    else if (s < 3 * 3600)
        snprintf(out, n, "%ldm", s / 60);
    else if (s < 48 * 3600)
        snprintf(out, n, "%ldh", s / 3600);
    else
        snprintf(out, n, "%ldd", s / 86400);
}

static double parse_time(const char *ts)
{
    if (!ts) return ks_wall();
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    if (sscanf(ts, "%d-%d-%dT%d:%d:%d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec) != 6)
        return ks_wall();
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (double)timegm(&tm);
}

static void add_col(cJSON *cols, const char *name, const char *type, const char *fmt, int priority)
{
    cJSON *c = cJSON_CreateObject();
    cJSON_AddStringToObject(c, "name", name);
    cJSON_AddStringToObject(c, "type", type);
    cJSON_AddStringToObject(c, "format", fmt);
    cJSON_AddStringToObject(c, "description", "");
    cJSON_AddNumberToObject(c, "priority", priority);
    cJSON_AddItemToArray(cols, c);
}

static void pod_status_text(const cJSON *pod, char *out, size_t n, int *ready, int *total, int *restarts)
{
    const cJSON *st = ks_j(pod, "status");
    snprintf(out, n, "%s", ks_jstr(st, "phase") ? ks_jstr(st, "phase") : "Pending");
    *ready = *total = *restarts = 0;
    const cJSON *cs;
    cJSON_ArrayForEach(cs, ks_j(st, "containerStatuses"))
    {
        (*total)++;
        if (ks_jbool(cs, "ready", 0)) (*ready)++;
        *restarts += (int)ks_jnum(cs, "restartCount", 0);
        const char *w = ks_jstr(ks_jpath(cs, "state.waiting"), "reason");
        const char *t = ks_jstr(ks_jpath(cs, "state.terminated"), "reason");
        if (w && *w)
            snprintf(out, n, "%s", w);
        else if (t && *t)
            snprintf(out, n, "%s", t);
    }
    if (!*total) *total = cJSON_GetArraySize(ks_jpath(pod, "spec.containers"));
    if (ks_jpath(pod, "metadata.deletionTimestamp")) snprintf(out, n, "Terminating");
}

/* A row's cells, with the defaults kubectl shows for what is not set. */
static void add_str(cJSON *cells, const char *v, const char *dflt)
{
    cJSON_AddItemToArray(cells, cJSON_CreateString(v ? v : dflt));
}
static void add_num(cJSON *cells, double v) { cJSON_AddItemToArray(cells, cJSON_CreateNumber(v)); }

/* What one row is made from: the object, its parts, and its age already formatted. */
struct table_src {
    const cJSON *it, *md, *spec, *st;
    const char *age;
};

static void pod_cells(cJSON *cells, const struct table_src *r)
{
    int ready, total, restarts;
    char status[512], rd[32], rs[32];
    pod_status_text(r->it, status, sizeof status, &ready, &total, &restarts);
    snprintf(rd, sizeof rd, "%d/%d", ready, total);
    snprintf(rs, sizeof rs, "%d", restarts);
    add_str(cells, rd, ""), add_str(cells, status, ""), add_str(cells, rs, ""), add_str(cells, r->age, "");
    add_str(cells, ks_jstr(r->st, "podIP"), "<none>");
    add_str(cells, ks_jstr(r->spec, "nodeName"), "<none>");
}

static void deployment_cells(cJSON *cells, const struct table_src *r)
{
    char buf[64];
    snprintf(buf, sizeof buf, "%d/%d", (int)ks_jnum(r->st, "readyReplicas", 0), (int)ks_jnum(r->spec, "replicas", 1));
    add_str(cells, buf, "");
    add_num(cells, ks_jnum(r->st, "updatedReplicas", 0));
    add_num(cells, ks_jnum(r->st, "availableReplicas", 0));
    add_str(cells, r->age, "");
    const cJSON *c0 = cJSON_GetArrayItem(ks_jpath(r->spec, "template.spec.containers"), 0);
    add_str(cells, ks_jstr(c0, "image"), "");
}

static void replicaset_cells(cJSON *cells, const struct table_src *r)
{
    add_num(cells, ks_jnum(r->spec, "replicas", 1));
    add_num(cells, ks_jnum(r->st, "replicas", 0));
    add_num(cells, ks_jnum(r->st, "readyReplicas", 0));
    add_str(cells, r->age, "");
}

static void job_cells(cJSON *cells, const struct table_src *r)
{
    const char *status = "Running";
    const cJSON *c;
    cJSON_ArrayForEach(c, ks_j(r->st, "conditions"))
    {
        if (!ks_streq(ks_jstr(c, "status"), "True")) continue;
        if (ks_streq(ks_jstr(c, "type"), "Complete")) status = "Complete";
        if (ks_streq(ks_jstr(c, "type"), "Failed")) status = "Failed";
    }
    char buf[64];
    snprintf(buf, sizeof buf, "%d/%d", (int)ks_jnum(r->st, "succeeded", 0), (int)ks_jnum(r->spec, "completions", 1));
    add_str(cells, status, ""), add_str(cells, buf, ""), add_str(cells, r->age, "");
}

static void service_cells(cJSON *cells, const struct table_src *r)
{
    struct ks_buf ports;
    ks_buf_init(&ports);
    const cJSON *p;
    cJSON_ArrayForEach(p, ks_j(r->spec, "ports"))
    {
        ks_buf_printf(&ports, "%s%d", ports.len ? "," : "", (int)ks_jnum(p, "port", 0));
        if (ks_j(p, "nodePort")) ks_buf_printf(&ports, ":%d", (int)ks_jnum(p, "nodePort", 0));
        ks_buf_printf(&ports, "/%s", ks_jstr(p, "protocol") ? ks_jstr(p, "protocol") : "TCP");
    }
    add_str(cells, ks_jstr(r->spec, "type"), "ClusterIP");
    add_str(cells, ks_jstr(r->spec, "clusterIP"), "<none>");
    const cJSON *ing = cJSON_GetArrayItem(ks_jpath(r->st, "loadBalancer.ingress"), 0);
    const char *ext = ks_jstr(ing, "ip") ? ks_jstr(ing, "ip") : ks_jstr(ing, "hostname");
    if (!ext) ext = ks_streq(ks_jstr(r->spec, "type"), "LoadBalancer") ? "<pending>" : "<none>";
    add_str(cells, ext, ""), add_str(cells, ports.data, "<none>"), add_str(cells, r->age, "");
    ks_buf_free(&ports);
}

static void statefulset_cells(cJSON *cells, const struct table_src *r)
{
    char buf[64];
    snprintf(buf, sizeof buf, "%d/%d", (int)ks_jnum(r->st, "readyReplicas", 0), (int)ks_jnum(r->spec, "replicas", 1));
    add_str(cells, buf, ""), add_str(cells, r->age, "");
}

static void namespace_cells(cJSON *cells, const struct table_src *r)
{
    add_str(cells, ks_jstr(r->st, "phase"), "Active"), add_str(cells, r->age, "");
}

static void endpoints_cells(cJSON *cells, const struct table_src *r)
{
    struct ks_buf eps;
    ks_buf_init(&eps);
    const cJSON *sub, *ad, *pt;
    cJSON_ArrayForEach(sub, ks_j(r->it, "subsets")) cJSON_ArrayForEach(ad, ks_j(sub, "addresses"))
        cJSON_ArrayForEach(pt, ks_j(sub, "ports"))
            ks_buf_printf(&eps, "%s%s:%d", eps.len ? "," : "", ks_jstr(ad, "ip") ? ks_jstr(ad, "ip") : "",
                          (int)ks_jnum(pt, "port", 0));
    add_str(cells, eps.data, "<none>"), add_str(cells, r->age, "");
    ks_buf_free(&eps);
}

static void event_cells(cJSON *cells, const struct table_src *r)
{
    const cJSON *io = ks_j(r->it, "involvedObject");
    char buf[512];
    snprintf(buf, sizeof buf, "%s/%s", ks_jstr(io, "kind") ? ks_jstr(io, "kind") : "",
             ks_jstr(io, "name") ? ks_jstr(io, "name") : "");
    /* kubectl names the object kind/name with the kind in lower case */
    for (char *p = buf; *p && *p != '/'; p++)
        if (*p >= 'A' && *p <= 'Z') *p = (char)(*p - 'A' + 'a');
    add_str(cells, ks_jstr(r->it, "type"), ""), add_str(cells, ks_jstr(r->it, "reason"), "");
    add_str(cells, buf, ""), add_str(cells, ks_jstr(r->it, "message"), "");
}

static void age_cells(cJSON *cells, const struct table_src *r) { add_str(cells, r->age, ""); }

/* A kind's Table: the columns after the first (Name, or Last Seen for events) and the cells that fill them. */
struct table_col {
    const char *name, *type;
    int priority;
};
struct table_kind {
    const char *kind;
    struct table_col cols[7]; /* up to 6, then an empty entry */
    void (*cells)(cJSON *cells, const struct table_src *r);
};

static const struct table_kind table_kinds[] = {
    {"Pod",
     {{"Ready", "string", 0},
      {"Status", "string", 0},
      {"Restarts", "string", 0},
      {"Age", "string", 0},
      {"IP", "string", 1},
      {"Node", "string", 1}},
     pod_cells},
    {"Deployment",
     {{"Ready", "string", 0},
      {"Up-to-date", "integer", 0},
      {"Available", "integer", 0},
      {"Age", "string", 0},
      {"Images", "string", 1}},
     deployment_cells},
    {"ReplicaSet",
     {{"Desired", "integer", 0}, {"Current", "integer", 0}, {"Ready", "integer", 0}, {"Age", "string", 0}},
     replicaset_cells},
    {"Job", {{"Status", "string", 0}, {"Completions", "string", 0}, {"Age", "string", 0}}, job_cells},
    {"Service",
     {{"Type", "string", 0},
      {"Cluster-IP", "string", 0},
      {"External-IP", "string", 0},
      {"Port(s)", "string", 0},
      {"Age", "string", 0}},
     service_cells},
    {"StatefulSet", {{"Ready", "string", 0}, {"Age", "string", 0}}, statefulset_cells},
    {"Namespace", {{"Status", "string", 0}, {"Age", "string", 0}}, namespace_cells},
    {"Endpoints", {{"Endpoints", "string", 0}, {"Age", "string", 0}}, endpoints_cells},
    {"Event",
     {{"Type", "string", 0}, {"Reason", "string", 0}, {"Object", "string", 0}, {"Message", "string", 0}},
     event_cells},
};
/* Any other kind: its name and age. */
static const struct table_kind table_other = {"", {{"Age", "string", 0}}, age_cells};

static const struct table_kind *table_kind_of(const char *kind)
{
    for (size_t i = 0; i < sizeof table_kinds / sizeof *table_kinds; i++)
        if (!strcmp(table_kinds[i].kind, kind)) return &table_kinds[i];
    return &table_other;
}

static int is_event(const struct table_kind *tk) { return !strcmp(tk->kind, "Event"); }

static void table_columns(cJSON *t, const struct table_kind *tk)
{
    cJSON *cols = cJSON_AddArrayToObject(t, "columnDefinitions");
    if (is_event(tk))
        add_col(cols, "Last Seen", "string", "", 0);
    else
        add_col(cols, "Name", "string", "name", 0);
    for (const struct table_col *c = tk->cols; c->name; c++) add_col(cols, c->name, c->type, "", c->priority);
}

/* One row: its cells, and the object's metadata as PartialObjectMetadata (without managedFields). */
static cJSON *table_row(const struct table_kind *tk, const cJSON *it)
{
    cJSON *row = cJSON_CreateObject(), *cells = cJSON_CreateArray();
    if (!row || !cells) {
        cJSON_Delete(row), cJSON_Delete(cells);
        return NULL;
    }
    struct table_src r = {it, ks_j(it, "metadata"), ks_j(it, "spec"), ks_j(it, "status"), NULL};
    char a[32];
    age(parse_time(ks_jstr(r.md, "creationTimestamp")), a, sizeof a);
    r.age = a;
    if (is_event(tk)) {
        char seen[32];
        age(parse_time(ks_jstr(it, "lastTimestamp")), seen, sizeof seen);
        add_str(cells, seen, "");
    } else {
        add_str(cells, ks_jstr(r.md, "name"), "");
    }
    tk->cells(cells, &r);
    cJSON_AddItemToObject(row, "cells", cells);
    cJSON *po = cJSON_AddObjectToObject(row, "object");
    cJSON_AddStringToObject(po, "kind", "PartialObjectMetadata");
    cJSON_AddStringToObject(po, "apiVersion", "meta.k8s.io/v1");
    cJSON_AddItemToObject(po, "metadata", cJSON_Duplicate(r.md, 1));
    cJSON_DeleteItemFromObjectCaseSensitive(ks_j(po, "metadata"), "managedFields");
    return row;
}

cJSON *ks_table_of(struct ks_server *s, struct ks_rtype *rt, cJSON *items, const char *rv)
{
    (void)s;
    cJSON *t = cJSON_CreateObject();
    if (!t) {
        cJSON_Delete(items);
        return NULL;
    }
    cJSON_AddStringToObject(t, "kind", "Table");
    cJSON_AddStringToObject(t, "apiVersion", "meta.k8s.io/v1");
    cJSON_AddStringToObject(cJSON_AddObjectToObject(t, "metadata"), "resourceVersion", rv ? rv : "0");
    const struct table_kind *tk = table_kind_of(rt->kind);
    table_columns(t, tk);
    cJSON *rows = cJSON_AddArrayToObject(t, "rows");
    const cJSON *it;
    cJSON_ArrayForEach(it, items)
    {
        cJSON *row = table_row(tk, it);
        if (row) cJSON_AddItemToArray(rows, row);
    }
    cJSON_Delete(items);
    return t;
}

/* ---- dispatch ---- */

int ks_disc_handle(struct ks_req *r, struct ks_resp *resp)
{
    struct ks_server *s = r->s;
    const char *p = r->path;
    if (strcmp(r->method, "GET")) return 0;
    if (!strcmp(p, "/version") || !strcmp(p, "/version/")) {
        cJSON *v = cJSON_CreateObject();
        /* the release tests/realcluster runs, so kubectl of that release sees no skew */
        cJSON_AddStringToObject(v, "major", "1");
        cJSON_AddStringToObject(v, "minor", "37");
        cJSON_AddStringToObject(v, "emulationMajor", "1");
        cJSON_AddStringToObject(v, "emulationMinor", "37");
        cJSON_AddStringToObject(v, "minCompatibilityMajor", "1");
        cJSON_AddStringToObject(v, "minCompatibilityMinor", "36");
        cJSON_AddStringToObject(v, "gitVersion", "v1.37.0-kubesim");
        cJSON_AddStringToObject(v, "gitCommit", "0000000000000000000000000000000000000000");
        cJSON_AddStringToObject(v, "gitTreeState", "clean");
        cJSON_AddStringToObject(v, "buildDate", "2025-01-01T00:00:00Z");
        cJSON_AddStringToObject(v, "goVersion", "go1.23.4");
        cJSON_AddStringToObject(v, "compiler", "gc");
        cJSON_AddStringToObject(v, "platform", "linux/amd64");
        ks_resp_json(resp, 200, v, NULL);
        return 1;
    }
    if (!strcmp(p, "/healthz") || !strcmp(p, "/livez") || !strcmp(p, "/readyz")) {
        ks_resp_text(resp, 200, "ok", NULL);
        return 1;
    }
    cJSON *out = NULL;
    const char *ctype = NULL;
    pthread_mutex_lock(&s->mu);
    if (!strcmp(p, "/api") || !strcmp(p, "/api/")) {
        if (wants_aggregated(r)) {
            out = aggregated(s, 1);
            ctype = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";
        } else {
            out = cJSON_CreateObject();
            cJSON_AddStringToObject(out, "kind", "APIVersions");
            const char *v1[] = {"v1"};
            cJSON_AddItemToObject(out, "versions", str_array(v1, 1));
            cJSON *cidr = cJSON_CreateObject();
            cJSON_AddStringToObject(cidr, "clientCIDR", "0.0.0.0/0");
            const char *host = ks_hdr(r, "Host");
            cJSON_AddStringToObject(cidr, "serverAddress", host ? host : "127.0.0.1");
            cJSON_AddItemToArray(cJSON_AddArrayToObject(out, "serverAddressByClientCIDRs"), cidr);
        }
    } else if (!strcmp(p, "/apis") || !strcmp(p, "/apis/")) {
        if (wants_aggregated(r)) {
            out = aggregated(s, 0);
            ctype = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";
        } else {
            out = cJSON_CreateObject();
            cJSON_AddStringToObject(out, "kind", "APIGroupList");
            cJSON_AddStringToObject(out, "apiVersion", "v1");
            cJSON *groups = cJSON_AddArrayToObject(out, "groups");
            for (struct ks_rtype *g = s->types; g; g = g->next)
                if (g->group[0] && !group_seen(s, g, g->group)) cJSON_AddItemToArray(groups, api_group(s, g));
        }
    } else if (!strcmp(p, "/api/v1")) {
        out = legacy_resources(s, "", "v1");
    } else if (!strcmp(p, "/openapi/v3") || !strcmp(p, "/openapi/v3/")) {
        out = openapi_index(s);
    } else if (!strncmp(p, "/openapi/v3/api/", 16)) {
        out = openapi_gv(s, "", p + 16);
    } else if (!strncmp(p, "/openapi/v3/apis/", 17)) {
        char g[256], v[64];
        if (sscanf(p + 17, "%255[^/]/%63s", g, v) == 2) out = openapi_gv(s, g, v);
    } else if (!strncmp(p, "/apis/", 6)) {
        char g[256], v[64];
        int n = sscanf(p + 6, "%255[^/]/%63[^/]", g, v);
        if (n == 2 && ks_rtype_find(s, g, v, "") == NULL) {
            int known = 0;
            for (struct ks_rtype *rt = s->types; rt; rt = rt->next)
                if (!strcmp(rt->group, g) && !strcmp(rt->version, v)) known = 1;
            if (known) out = legacy_resources(s, g, v);
        } else if (n == 1) {
            for (struct ks_rtype *rt = s->types; rt; rt = rt->next)
                if (!strcmp(rt->group, g)) {
                    out = api_group(s, rt);
                    cJSON_AddStringToObject(out, "kind", "APIGroup");
                    cJSON_AddStringToObject(out, "apiVersion", "v1");
                    break;
                }
        }
    }
    pthread_mutex_unlock(&s->mu);
    if (!out) return 0;
    ks_resp_json(resp, 200, out, ctype);
    return 1;
}
