/* The types of the fields kubesim knows, checked where kube-apiserver decodes a body against its
 * schema: before admission (so before the namespace lifecycle check) and before the strategy's
 * validation. kubesim has no OpenAPI schemas; this table covers the fields deploy tools write
 * (metadata, workload and pod specs, Services, ConfigMaps, Secrets), and a field it does not
 * list is accepted as is. */
#include "kubesim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum ftype { T_STRING, T_NUMBER, T_BOOL, T_OBJECT, T_LIST, T_STRMAP, T_STRLIST, T_INT_OR_STRING };

/* A member of an object; child describes an object's members, or a list's object items. */
struct field {
    const char *key;
    enum ftype type;
    const struct field *child;
};

/* clang-format off */ /* a table, one field a line */
static const struct field META[] = {
    {"name", T_STRING, NULL},
    {"namespace", T_STRING, NULL},
    {"generateName", T_STRING, NULL},
    {"labels", T_STRMAP, NULL},
    {"annotations", T_STRMAP, NULL},
    {NULL, 0, NULL},
};
static const struct field TEMPLATE_META[] = {
    {"labels", T_STRMAP, NULL},
    {"annotations", T_STRMAP, NULL},
    {NULL, 0, NULL},
};
static const struct field CONTAINER_PORT[] = {
    {"containerPort", T_NUMBER, NULL},
    {"hostPort", T_NUMBER, NULL},
    {"name", T_STRING, NULL},
    {"protocol", T_STRING, NULL},
    {NULL, 0, NULL},
};
static const struct field ENV_VAR[] = {
    {"name", T_STRING, NULL},
    {"value", T_STRING, NULL},
    {NULL, 0, NULL},
};
static const struct field CONTAINER[] = {
    {"name", T_STRING, NULL},
    {"image", T_STRING, NULL},
    {"imagePullPolicy", T_STRING, NULL},
    {"command", T_STRLIST, NULL},
    {"args", T_STRLIST, NULL},
    {"workingDir", T_STRING, NULL},
    {"ports", T_LIST, CONTAINER_PORT},
    {"env", T_LIST, ENV_VAR},
    {NULL, 0, NULL},
};
static const struct field POD_SPEC[] = {
    {"containers", T_LIST, CONTAINER},
    {"initContainers", T_LIST, CONTAINER},
    {"restartPolicy", T_STRING, NULL},
    {"serviceAccountName", T_STRING, NULL},
    {"nodeSelector", T_STRMAP, NULL},
    {"terminationGracePeriodSeconds", T_NUMBER, NULL},
    {NULL, 0, NULL},
};
static const struct field POD_TEMPLATE[] = {
    {"metadata", T_OBJECT, TEMPLATE_META},
    {"spec", T_OBJECT, POD_SPEC},
    {NULL, 0, NULL},
};
static const struct field WORKLOAD_SPEC[] = {
    {"replicas", T_NUMBER, NULL},
    {"minReadySeconds", T_NUMBER, NULL},
    {"progressDeadlineSeconds", T_NUMBER, NULL},
    {"revisionHistoryLimit", T_NUMBER, NULL},
    {"paused", T_BOOL, NULL},
    {"selector", T_OBJECT, NULL},
    {"template", T_OBJECT, POD_TEMPLATE},
    {NULL, 0, NULL},
};
static const struct field JOB_SPEC[] = {
    {"backoffLimit", T_NUMBER, NULL},
    {"completions", T_NUMBER, NULL},
    {"parallelism", T_NUMBER, NULL},
    {"activeDeadlineSeconds", T_NUMBER, NULL},
    {"ttlSecondsAfterFinished", T_NUMBER, NULL},
    {"suspend", T_BOOL, NULL},
    {"template", T_OBJECT, POD_TEMPLATE},
    {NULL, 0, NULL},
};
static const struct field JOB_TEMPLATE[] = {
    {"metadata", T_OBJECT, TEMPLATE_META},
    {"spec", T_OBJECT, JOB_SPEC},
    {NULL, 0, NULL},
};
static const struct field CRONJOB_SPEC[] = {
    {"schedule", T_STRING, NULL},
    {"suspend", T_BOOL, NULL},
    {"jobTemplate", T_OBJECT, JOB_TEMPLATE},
    {NULL, 0, NULL},
};
static const struct field SERVICE_PORT[] = {
    {"name", T_STRING, NULL},
    {"port", T_NUMBER, NULL},
    {"targetPort", T_INT_OR_STRING, NULL},
    {"nodePort", T_NUMBER, NULL},
    {"protocol", T_STRING, NULL},
    {NULL, 0, NULL},
};
static const struct field SERVICE_SPEC[] = {
    {"type", T_STRING, NULL},
    {"selector", T_STRMAP, NULL},
    {"ports", T_LIST, SERVICE_PORT},
    {"clusterIP", T_STRING, NULL},
    {NULL, 0, NULL},
};

/* An object of a kind: its metadata and the spec of that kind. */
#define ROOT(name, spec_type)                                                                     \
    static const struct field name[] = {                                                          \
        {"metadata", T_OBJECT, META}, {"spec", T_OBJECT, spec_type}, {NULL, 0, NULL}}
ROOT(WORKLOAD, WORKLOAD_SPEC);
ROOT(JOB, JOB_SPEC);
ROOT(CRONJOB, CRONJOB_SPEC);
ROOT(POD, POD_SPEC);
ROOT(SERVICE, SERVICE_SPEC);
static const struct field DATA[] = {
    {"metadata", T_OBJECT, META},
    {"data", T_STRMAP, NULL},
    {"stringData", T_STRMAP, NULL},
    {NULL, 0, NULL},
};
static const struct field OTHER[] = {{"metadata", T_OBJECT, META}, {NULL, 0, NULL}};
/* clang-format on */

static const struct field *root_of(const struct ks_rtype *rt)
{
    if (!rt->builtin) return OTHER;
    const char *k = rt->kind;
    if (!strcmp(k, "Deployment") || !strcmp(k, "ReplicaSet") || !strcmp(k, "StatefulSet") || !strcmp(k, "DaemonSet"))
        return WORKLOAD;
    if (!strcmp(k, "Job")) return JOB;
    if (!strcmp(k, "CronJob")) return CRONJOB;
    if (!strcmp(k, "Pod")) return POD;
    if (!strcmp(k, "Service")) return SERVICE;
    if (!strcmp(k, "ConfigMap") || !strcmp(k, "Secret")) return DATA;
    return OTHER;
}

/* How structured-merge-diff names a JSON value's type in its messages. */
static const char *kind_of(const cJSON *v)
{
    if (cJSON_IsString(v)) return "string";
    if (cJSON_IsNumber(v)) return "numeric";
    if (cJSON_IsBool(v)) return "bool";
    if (cJSON_IsArray(v)) return "list";
    if (cJSON_IsObject(v)) return "map";
    return "null";
}

static const char *expected(enum ftype t)
{
    switch (t) {
    case T_STRING: return "string";
    case T_NUMBER: return "numeric (int or float)";
    case T_BOOL: return "boolean";
    case T_OBJECT:
    case T_STRMAP: return "map";
    case T_LIST:
    case T_STRLIST: return "list";
    case T_INT_OR_STRING: return "numeric (int or float) or string";
    }
    return "?";
}

/* Whether v has type t (null is an absent value, as for the apiserver). */
static int has_type(const cJSON *v, enum ftype t)
{
    if (cJSON_IsNull(v)) return 1;
    switch (t) {
    case T_STRING: return cJSON_IsString(v);
    case T_NUMBER: return cJSON_IsNumber(v);
    case T_BOOL: return cJSON_IsBool(v);
    case T_OBJECT:
    case T_STRMAP: return cJSON_IsObject(v);
    case T_LIST:
    case T_STRLIST: return cJSON_IsArray(v);
    case T_INT_OR_STRING: return cJSON_IsNumber(v) || cJSON_IsString(v);
    }
    return 0;
}

/* Writes the first mistake under o (described by fields) into err as ".path: expected X, got Y";
 * returns 1 when there is one. path holds o's own path. */
static int check(const cJSON *o, const struct field *fields, char *path, size_t cap, char *err, size_t n)
{
    size_t len = strlen(path);
    for (const struct field *f = fields; f->key; f++) {
        const cJSON *v = ks_j(o, f->key);
        if (!v) continue;
        snprintf(path + len, cap - len, ".%s", f->key);
        if (!has_type(v, f->type)) {
            snprintf(err, n, "%s: expected %s, got %s", path, expected(f->type), kind_of(v));
            return 1;
        }
        const cJSON *e;
        if (f->type == T_STRMAP || f->type == T_STRLIST) {
            int i = 0;
            cJSON_ArrayForEach(e, v)
            {
                if (!cJSON_IsString(e) && !cJSON_IsNull(e)) {
                    if (f->type == T_STRMAP)
                        snprintf(err, n, "%s.%s: expected string, got %s", path, e->string, kind_of(e));
                    else
                        snprintf(err, n, "%s[%d]: expected string, got %s", path, i, kind_of(e));
                    return 1;
                }
                i++;
            }
        } else if (f->type == T_OBJECT && f->child && cJSON_IsObject(v)) {
            if (check(v, f->child, path, cap, err, n)) return 1;
        } else if (f->type == T_LIST && f->child) {
            size_t here = strlen(path);
            int i = 0;
            cJSON_ArrayForEach(e, v)
            {
                /* items are named by their key where they have one, as the apiserver does */
                const char *name = ks_jstr(e, "name");
                if (name)
                    snprintf(path + here, cap - here, "[name=\"%s\"]", name);
                else
                    snprintf(path + here, cap - here, "[%d]", i);
                if (!cJSON_IsObject(e)) {
                    snprintf(err, n, "%s: expected map, got %s", path, kind_of(e));
                    return 1;
                }
                if (check(e, f->child, path, cap, err, n)) return 1;
                i++;
            }
        }
        path[len] = '\0';
    }
    return 0;
}

cJSON *ks_schema_check(const struct ks_rtype *rt, const cJSON *obj, int apply)
{
    char path[512] = "", err[768];
    if (!check(obj, root_of(rt), path, sizeof path, err, sizeof err)) return NULL;
    char *gv = ks_rtype_gv(rt);
    char *msg;
    if (apply)
        msg = ks_sprintf("failed to create typed patch object (%s, Kind=%s): %s", gv ? gv : "", rt->kind, err);
    else
        msg = ks_sprintf("%s in version \"%s\" cannot be handled as a %s: %s", rt->kind, rt->version, rt->kind, err);
    free(gv);
    cJSON *st = ks_status_new(400, "BadRequest", msg ? msg : err);
    free(msg);
    return st;
}
