/* Label selectors (a=b, a!=b, a in (x,y), a notin (x), a, !a) and field selectors
 * (path=value, path!=value) as list and watch filters, plus LabelSelector objects. */
#include "kubesim.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { OP_EQ, OP_NE, OP_IN, OP_NOTIN, OP_EXISTS, OP_NOTEXISTS };

struct req {
    int op;
    char *key;   /* owns */
    char **vals; /* owns */
    int nvals;
};

struct ks_selector {
    int fields;
    int n;
    struct req *r; /* owns */
};

void ks_sel_free(struct ks_selector *sel)
{
    if (!sel) return;
    for (int i = 0; i < sel->n; i++) {
        free(sel->r[i].key);
        for (int j = 0; j < sel->r[i].nvals; j++) free(sel->r[i].vals[j]);
        free(sel->r[i].vals);
    }
    free(sel->r);
    free(sel);
}

static char *trim_dup(const char *s, size_t n)
{
    while (n && isspace((unsigned char)*s)) s++, n--;
    while (n && isspace((unsigned char)s[n - 1])) n--;
    return ks_strndup(s, n);
}

static int add_val(struct req *r, const char *s, size_t n)
{
    char **v = realloc(r->vals, (size_t)(r->nvals + 1) * sizeof *v);
    if (!v) return -1;
    r->vals = v;
    v[r->nvals] = trim_dup(s, n);
    if (!v[r->nvals]) return -1;
    r->nvals++;
    return 0;
}

static int valid_key(const char *k)
{
    if (!*k) return 0;
    for (const char *p = k; *p; p++)
        if (!(isalnum((unsigned char)*p) || strchr("-_./", *p))) return 0;
    return 1;
}

/* One requirement in [s, s+n). */
static int parse_req(struct req *r, const char *s, size_t n, int fields, char **err)
{
    char *t = trim_dup(s, n);
    if (!t) return -1;
    char *p;
    int rc = -1;
    memset(r, 0, sizeof *r);
    if ((p = strstr(t, "!=")) != NULL) {
        r->op = OP_NE;
        r->key = trim_dup(t, (size_t)(p - t));
        rc = add_val(r, p + 2, strlen(p + 2));
    } else if ((p = strchr(t, '=')) != NULL) {
        r->op = OP_EQ;
        r->key = trim_dup(t, (size_t)(p - t));
        const char *v = p[1] == '=' ? p + 2 : p + 1;
        rc = add_val(r, v, strlen(v));
    } else if (!fields && (p = strchr(t, '(')) != NULL) {
        char *close = strrchr(t, ')');
        char *sp = t;
        while (*sp && !isspace((unsigned char)*sp)) sp++;
        char *kw = sp;
        while (*kw && isspace((unsigned char)*kw)) kw++;
        if (!close || close < p || close[1]) goto bad;
        if (!strncmp(kw, "notin", 5))
            r->op = OP_NOTIN;
        else if (!strncmp(kw, "in", 2))
            r->op = OP_IN;
        else
            goto bad;
        r->key = trim_dup(t, (size_t)(sp - t));
        const char *v = p + 1;
        rc = 0;
        while (rc == 0 && v < close) {
            const char *c = memchr(v, ',', (size_t)(close - v));
            if (!c) c = close;
            rc = add_val(r, v, (size_t)(c - v));
            v = c + 1;
        }
    } else if (!fields && t[0] == '!') {
        r->op = OP_NOTEXISTS;
        r->key = trim_dup(t + 1, strlen(t + 1));
        rc = 0;
    } else if (!fields) {
        r->op = OP_EXISTS;
        r->key = ks_strdup(t);
        rc = 0;
    }
    if (rc == 0 && r->key && valid_key(r->key)) {
        free(t);
        return 0;
    }
bad:
    if (!*err)
        *err = fields ? ks_sprintf("can't understand '%s'", t) : ks_sprintf("unable to parse requirement: \"%s\"", t);
    free(t);
    return -1;
}

static struct ks_selector *sel_parse(const char *text, int fields, char **err)
{
    *err = NULL;
    struct ks_selector *sel = calloc(1, sizeof *sel);
    if (!sel) return NULL;
    sel->fields = fields;
    const char *s = text;
    while (*s) {
        /* a requirement ends at a comma outside parentheses */
        int depth = 0;
        const char *e = s;
        for (; *e; e++) {
            if (*e == '(') depth++;
            if (*e == ')') depth--;
            if (*e == ',' && depth == 0) break;
        }
        size_t n = (size_t)(e - s);
        int blank = 1;
        for (size_t i = 0; i < n; i++)
            if (!isspace((unsigned char)s[i])) blank = 0;
        if (!blank) {
            struct req *r = realloc(sel->r, (size_t)(sel->n + 1) * sizeof *r);
            if (!r) goto fail;
            sel->r = r;
            if (parse_req(&r[sel->n], s, n, fields, err) < 0) {
                struct req *bad = &r[sel->n];
                free(bad->key);
                for (int j = 0; j < bad->nvals; j++) free(bad->vals[j]);
                free(bad->vals);
                goto fail;
            }
            sel->n++;
        }
        s = *e ? e + 1 : e;
    }
    return sel;
fail:
    if (!*err) *err = ks_strdup("out of memory");
    ks_sel_free(sel);
    return NULL;
}

struct ks_selector *ks_sel_parse_labels(const char *text, char **err) { return sel_parse(text, 0, err); }

/* The fields kube-apiserver selects by, per kind (the field label conversions of the kind's
 * API version); a label read under another name in the object maps to its path. Kinds not
 * listed select by metadata.name and metadata.namespace only. */
static const struct field_labels {
    const char *group, *kind;
    const char *labels[14];
    const char *alias[3][2]; /* label -> the object's path (or a label it stands for) */
    const char *fmt;         /* the error for another label */
} FIELD_LABELS[] = {
    {"",
     "Pod",
     {"metadata.name", "metadata.namespace", "spec.nodeName", "spec.restartPolicy", "spec.schedulerName",
      "spec.serviceAccountName", "spec.hostNetwork", "status.phase", "status.podIP", "status.podIPs",
      "status.nominatedNodeName", "spec.host"},
     {{"spec.host", "spec.nodeName"}},
     "field label not supported: %s"},
    {"", "Node", {"metadata.name", "spec.unschedulable"}, {{0}}, "field label not supported: %s"},
    {"",
     "Event",
     {"involvedObject.kind", "involvedObject.namespace", "involvedObject.name", "involvedObject.uid",
      "involvedObject.apiVersion", "involvedObject.resourceVersion", "involvedObject.fieldPath", "reason",
      "reportingComponent", "source", "type", "metadata.namespace", "metadata.name"},
     {{"source", "source.component"}},
     "field label not supported: %s"},
    {"", "Namespace", {"status.phase", "metadata.name"}, {{0}}, "field label not supported: %s"},
    {"", "Secret", {"type", "metadata.namespace", "metadata.name"}, {{0}}, "field label not supported: %s"},
    {"",
     "Service",
     {"metadata.namespace", "metadata.name", "spec.clusterIP", "spec.type"},
     {{0}},
     "field label not supported: %s"},
    {"batch",
     "Job",
     {"metadata.name", "metadata.namespace", "status.successful"},
     {{"status.successful", "status.succeeded"}},
     "field label \"%s\" not supported for Job"},
};

static const struct field_labels DEFAULT_FIELDS = {
    "",
    "",
    {"metadata.name", "metadata.namespace"},
    {{0}},
    "\"%s\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\""};
static const struct field_labels CUSTOM_FIELDS = {
    "", "", {"metadata.name", "metadata.namespace"}, {{0}}, "field label not supported: %s"};

struct ks_selector *ks_sel_parse_fields(const char *text, const struct ks_rtype *rt, char **err)
{
    struct ks_selector *sel = sel_parse(text, 1, err);
    if (!sel) {
        char *m = ks_sprintf("invalid selector: '%s'; %s", text, *err ? *err : "out of memory");
        free(*err);
        *err = m;
        return NULL;
    }
    if (!rt) return sel;
    const struct field_labels *fl = rt->builtin ? &DEFAULT_FIELDS : &CUSTOM_FIELDS;
    for (size_t i = 0; rt->builtin && i < sizeof FIELD_LABELS / sizeof FIELD_LABELS[0]; i++)
        if (!strcmp(FIELD_LABELS[i].group, rt->group) && !strcmp(FIELD_LABELS[i].kind, rt->kind)) fl = &FIELD_LABELS[i];
    for (int i = 0; i < sel->n; i++) {
        struct req *r = &sel->r[i];
        int known = 0;
        for (size_t j = 0; j < sizeof fl->labels / sizeof fl->labels[0] && fl->labels[j]; j++)
            if (!strcmp(fl->labels[j], r->key)) known = 1;
        if (!known) {
            *err = ks_sprintf(fl->fmt, r->key);
            ks_sel_free(sel);
            return NULL;
        }
        for (size_t j = 0; j < sizeof fl->alias / sizeof fl->alias[0] && fl->alias[j][0]; j++) {
            if (strcmp(fl->alias[j][0], r->key)) continue;
            char *path = ks_strdup(fl->alias[j][1]);
            if (!path) {
                ks_sel_free(sel);
                return NULL;
            }
            free(r->key);
            r->key = path;
        }
    }
    return sel;
}

/* A field value as a string: strings as-is, numbers and booleans printed, missing as "". */
static void field_value(const cJSON *obj, const char *path, char *buf, size_t n)
{
    const cJSON *v = ks_jpath(obj, path);
    buf[0] = 0;
    if (cJSON_IsString(v))
        snprintf(buf, n, "%s", v->valuestring);
    else if (cJSON_IsBool(v))
        snprintf(buf, n, "%s", cJSON_IsTrue(v) ? "true" : "false");
    else if (cJSON_IsNumber(v))
        snprintf(buf, n, "%g", v->valuedouble);
}

int ks_sel_match(const struct ks_selector *sel, const cJSON *obj)
{
    if (!sel) return 1;
    const cJSON *labels = ks_jpath(obj, "metadata.labels");
    for (int i = 0; i < sel->n; i++) {
        const struct req *r = &sel->r[i];
        char fbuf[512];
        const char *have = NULL;
        if (sel->fields) {
            field_value(obj, r->key, fbuf, sizeof fbuf);
            have = fbuf;
        } else {
            have = ks_jstr(labels, r->key);
        }
        int found = 0;
        for (int j = 0; j < r->nvals; j++)
            if (have && !strcmp(have, r->vals[j])) found = 1;
        switch (r->op) {
        case OP_EQ:
        case OP_IN:
            if (!found) return 0;
            break;
        case OP_NE:
        case OP_NOTIN:
            if (found) return 0;
            break;
        case OP_EXISTS:
            if (!have) return 0;
            break;
        case OP_NOTEXISTS:
            if (have) return 0;
            break;
        }
    }
    return 1;
}

int ks_map_subset(const cJSON *want, const cJSON *labels)
{
    const cJSON *c;
    cJSON_ArrayForEach(c, want)
    {
        if (!cJSON_IsString(c)) return 0;
        if (!ks_streq(ks_jstr(labels, c->string), c->valuestring)) return 0;
    }
    return 1;
}

int ks_labelsel_match(const cJSON *selector, const cJSON *labels)
{
    if (!selector) return 0; /* a nil selector selects nothing */
    const cJSON *ml = ks_j(selector, "matchLabels"), *me = ks_j(selector, "matchExpressions");
    if (!ml && !me) return 0 == cJSON_GetArraySize(selector) ? 1 : ks_map_subset(selector, labels);
    if (ml && !ks_map_subset(ml, labels)) return 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, me)
    {
        const char *key = ks_jstr(e, "key"), *op = ks_jstr(e, "operator");
        const char *have = ks_jstr(labels, key);
        int found = 0;
        const cJSON *v;
        cJSON_ArrayForEach(v, ks_j(e, "values")) if (cJSON_IsString(v) && ks_streq(have, v->valuestring)) found = 1;
        if (ks_streq(op, "In") && !found) return 0;
        if (ks_streq(op, "NotIn") && found) return 0;
        if (ks_streq(op, "Exists") && !have) return 0;
        if (ks_streq(op, "DoesNotExist") && have) return 0;
    }
    return 1;
}
