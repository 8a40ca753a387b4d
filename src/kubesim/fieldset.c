/* FieldsV1 field sets: which fields of an object a manager owns, in the format the apiserver
 * serves in metadata.managedFields ({"f:spec":{"f:replicas":{}}}, list items as "k:{...}" with a
 * "." member marker). Building a set from an object, walking it, testing, adding and removing
 * its leaves, and following a set's path into an object. Apart from apply.c because these are
 * plain tree operations, with no notion of managers or conflicts, that server-side apply, the
 * recording of updates and the strategic merge patch's list keys all build on. */
#include "fieldset.h"
#include "kubesim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- list keys ---- */

/* A string cJSON prints as is (no escapes). */
static int plain(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == '"' || *s == '\\') return 0;
    return 1;
}

/* A number cJSON prints with "%d". */
static int plain_int(double d) { return d >= -2147483648.0 && d <= 2147483647.0 && d == (double)(int)d; }

/* The key of an element of an associative list, as it appears in a FieldsV1 path element
 * ("k:{\"name\":\"web\"}"), or NULL when the list is atomic. Called for every leaf under a list
 * on every write, so the common keys (plain strings, integer ports) are formatted directly; the
 * rest go through cJSON, whose printing the direct form reproduces. */
const char *ks_list_key(const char *field, const cJSON *elem, char *buf, size_t n)
{
    if (!cJSON_IsObject(elem) || !field) return NULL;
    const char *skey = NULL, *sval = NULL, *nkey = NULL, *proto = NULL;
    double nval = 0;
    if (!strcmp(field, "ports")) {
        const cJSON *cp = ks_j(elem, "containerPort"), *p = ks_j(elem, "port");
        proto = ks_jstr(elem, "protocol");
        if (!proto) proto = "TCP";
        if (cJSON_IsNumber(cp))
            nkey = "containerPort", nval = cp->valuedouble;
        else if (cJSON_IsNumber(p))
            nkey = "port", nval = p->valuedouble;
        else
            return NULL;
    } else if (!strcmp(field, "volumeMounts") || !strcmp(field, "volumeDevices")) {
        skey = !strcmp(field, "volumeMounts") ? "mountPath" : "devicePath";
    } else if (!strcmp(field, "conditions")) {
        skey = "type";
    } else if (!strcmp(field, "ownerReferences")) {
        skey = "uid";
    } else if (!strcmp(field, "hostAliases")) {
        skey = "ip";
    } else if (strcmp(field, "tolerations") && strcmp(field, "args") && strcmp(field, "command") &&
               strcmp(field, "envFrom") && strcmp(field, "rules") && strcmp(field, "subjects")) {
        skey = "name";
    } else {
        return NULL;
    }
    if (skey && !(sval = ks_jstr(elem, skey))) return NULL;
    int len = -1;
    if (skey && plain(sval))
        len = snprintf(buf, n, "k:{\"%s\":\"%s\"}", skey, sval);
    else if (nkey && plain_int(nval) && plain(proto))
        len = snprintf(buf, n, "k:{\"%s\":%d,\"protocol\":\"%s\"}", nkey, (int)nval, proto);
    if (len >= 0) return (size_t)len + 1 < n ? buf : NULL; /* the cJSON path's limit */
    cJSON *k = cJSON_CreateObject();
    if (!k) return NULL;
    if (skey) {
        cJSON_AddStringToObject(k, skey, sval);
    } else {
        cJSON_AddNumberToObject(k, nkey, nval);
        cJSON_AddStringToObject(k, "protocol", proto);
    }
    const char *res = NULL;
    char *p = cJSON_PrintUnformatted(k);
    if (p && strlen(p) + 3 < n) {
        snprintf(buf, n, "k:%s", p);
        res = buf;
    }
    free(p);
    cJSON_Delete(k);
    return res;
}

int ks_list_is_assoc(const char *field, const cJSON *arr)
{
    char kb[512];
    if (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) == 0) return 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, arr) if (!ks_list_key(field, e, kb, sizeof kb)) return 0;
    return 1;
}

const cJSON *ks_list_find(const cJSON *arr, const char *field, const char *key)
{
    char kb[512];
    const cJSON *e;
    cJSON_ArrayForEach(e, arr)
    {
        const char *k = ks_list_key(field, e, kb, sizeof kb);
        if (k && !strcmp(k, key)) return e;
    }
    return NULL;
}

/* ---- building fieldsets ---- */

static int skip_meta(const char *k)
{
    static const char *skip[] = {"name",
                                 "namespace",
                                 "uid",
                                 "resourceVersion",
                                 "generation",
                                 "creationTimestamp",
                                 "managedFields",
                                 "deletionTimestamp",
                                 "deletionGracePeriodSeconds",
                                 "selfLink",
                                 "generateName"};
    for (size_t i = 0; i < sizeof skip / sizeof skip[0]; i++)
        if (!strcmp(k, skip[i])) return 1;
    return 0;
}

static void build(cJSON *set, const cJSON *v, const char *field);

void ks_fields_add_member(cJSON *set, const char *name, const cJSON *v)
{
    char key[600];
    size_t len = strlen(name);
    if (len > sizeof key - 3) len = sizeof key - 3; /* truncated as snprintf did */
    memcpy(key, "f:", 2);
    memcpy(key + 2, name, len);
    key[len + 2] = 0;
    cJSON *node = cJSON_CreateObject();
    if (!node) return;
    if ((cJSON_IsObject(v) && v->child) || ks_list_is_assoc(name, v)) build(node, v, name);
    cJSON_AddItemToObject(set, key, node);
}

static void build(cJSON *set, const cJSON *v, const char *field)
{
    if (cJSON_IsObject(v)) {
        const cJSON *c;
        cJSON_ArrayForEach(c, v) ks_fields_add_member(set, c->string, c);
    } else if (cJSON_IsArray(v)) {
        char kb[512];
        const cJSON *e;
        cJSON_ArrayForEach(e, v)
        {
            const char *k = ks_list_key(field, e, kb, sizeof kb);
            if (!k || ks_j(set, k)) continue;
            cJSON *node = cJSON_CreateObject();
            if (!node) return;
            cJSON_AddItemToObject(node, ".", cJSON_CreateObject());
            build(node, e, NULL);
            cJSON_AddItemToObject(set, k, node);
        }
    }
}

/* The member named name when obj has exactly one, else NULL. */
static const cJSON *sole(const cJSON *obj, const char *name)
{
    const cJSON *c, *found = NULL;
    cJSON_ArrayForEach(c, obj) if (c->string && !strcmp(c->string, name))
    {
        if (found) return NULL;
        found = c;
    }
    return found;
}

/* c, a member of parent, is also the one member of that name of other, with an equal value. */
static int same_member(const cJSON *c, const cJSON *parent, const cJSON *other)
{
    const cJSON *o = other ? sole(other, c->string) : NULL;
    return o && sole(parent, c->string) == c && ks_jequal(c, o);
}

/* ks_fields_of, leaving out the members (top level and metadata's) equal to other's when other
 * is not NULL: a member's fieldset depends on its value alone, so such a member has the same
 * fieldset on both sides, and an update neither changes nor drops any of its fields. A write
 * that touches status or one annotation then does not build the fieldsets of the whole spec
 * twice. */
cJSON *ks_fields_except_same(const cJSON *obj, const cJSON *other, int skip_status)
{
    cJSON *set = cJSON_CreateObject();
    if (!set) return NULL;
    const cJSON *c;
    cJSON_ArrayForEach(c, obj)
    {
        if (!strcmp(c->string, "apiVersion") || !strcmp(c->string, "kind")) continue;
        if (skip_status && !strcmp(c->string, "status")) continue;
        if (!strcmp(c->string, "metadata")) {
            const cJSON *omd = other ? sole(other, "metadata") : NULL;
            if (omd && sole(obj, "metadata") != c) omd = NULL;
            cJSON *md = cJSON_CreateObject();
            if (!md) continue;
            const cJSON *m;
            cJSON_ArrayForEach(m, c) if (!skip_meta(m->string) && !same_member(m, c, omd))
                ks_fields_add_member(md, m->string, m);
            if (md->child)
                cJSON_AddItemToObject(set, "f:metadata", md);
            else
                cJSON_Delete(md);
            continue;
        }
        if (!same_member(c, obj, other)) ks_fields_add_member(set, c->string, c);
    }
    return set;
}

cJSON *ks_fields_of(const cJSON *obj, int skip_status) { return ks_fields_except_same(obj, NULL, skip_status); }

/* ---- walking fieldsets ---- */

static void walk(const cJSON *node, const char **path, int depth, ks_leaf_fn fn, void *ctx)
{
    if (depth >= KS_FIELD_PATH_MAX) return;
    if (!node->child) {
        fn(path, depth, ctx);
        return;
    }
    const cJSON *c;
    cJSON_ArrayForEach(c, node)
    {
        if (!strcmp(c->string, ".")) {
            fn(path, depth, ctx);
            continue;
        }
        path[depth] = c->string;
        walk(c, path, depth + 1, fn, ctx);
    }
}

void ks_fs_walk(const cJSON *set, ks_leaf_fn fn, void *ctx)
{
    const char *path[KS_FIELD_PATH_MAX];
    if (!set || !set->child) return;
    const cJSON *c;
    cJSON_ArrayForEach(c, set)
    {
        path[0] = c->string;
        walk(c, path, 1, fn, ctx);
    }
}

static const cJSON *fs_node(const cJSON *set, const char **path, int n)
{
    const cJSON *cur = set;
    for (int i = 0; i < n && cur; i++) cur = ks_j(cur, path[i]);
    return cur;
}

int ks_fs_has_leaf(const cJSON *set, const char **path, int n)
{
    const cJSON *node = fs_node(set, path, n);
    return node && (!node->child || ks_j(node, "."));
}

int ks_fs_has_prefix(const cJSON *set, const char **path, int n) { return fs_node(set, path, n) != NULL; }

void ks_fs_add(cJSON *set, const char **path, int n)
{
    cJSON *cur = set;
    for (int i = 0; i < n && cur; i++) {
        cJSON *next = ks_j(cur, path[i]);
        if (!next) {
            next = cJSON_CreateObject();
            if (!next) return;
            cJSON_AddItemToObject(cur, path[i], next);
        } else if (!next->child && i < n - 1) {
            /* a leaf gets children: keep it a member */
            cJSON_AddItemToObject(next, ".", cJSON_CreateObject());
        }
        cur = next;
    }
    if (cur && cur->child && !ks_j(cur, ".")) cJSON_AddItemToObject(cur, ".", cJSON_CreateObject());
}

void ks_fs_remove(cJSON *set, const char **path, int n)
{
    cJSON *chain[KS_FIELD_PATH_MAX + 1];
    chain[0] = set;
    for (int i = 0; i < n; i++) {
        chain[i + 1] = ks_j(chain[i], path[i]);
        if (!chain[i + 1]) return;
    }
    cJSON *node = chain[n];
    if (ks_j(node, ".") && node->child->next) {
        cJSON_DeleteItemFromObjectCaseSensitive(node, ".");
        return;
    }
    for (int i = n; i > 0; i--) {
        cJSON_DeleteItemFromObjectCaseSensitive(chain[i - 1], path[i - 1]);
        if (chain[i - 1]->child || i - 1 == 0) break;
    }
}

/* The value at a fieldset path inside an object; NULL when absent. */
const cJSON *ks_value_at(const cJSON *obj, const char **path, int n)
{
    const cJSON *cur = obj;
    const char *field = NULL;
    for (int i = 0; i < n && cur; i++) {
        const char *p = path[i];
        if (!strncmp(p, "f:", 2)) {
            field = p + 2;
            cur = ks_j(cur, field);
        } else if (!strncmp(p, "k:", 2)) {
            cur = cJSON_IsArray(cur) ? ks_list_find(cur, field, p) : NULL;
        } else if (!strncmp(p, "i:", 2)) {
            cur = cJSON_IsArray(cur) ? cJSON_GetArrayItem(cur, atoi(p + 2)) : NULL;
        } else {
            return NULL;
        }
    }
    return cur;
}

void ks_path_pretty(const char **path, int n, char *out, size_t sz)
{
    size_t len = 0;
    out[0] = 0;
    for (int i = 0; i < n && len + 1 < sz; i++) {
        const char *p = path[i];
        if (!strncmp(p, "f:", 2)) {
            len += (size_t)snprintf(out + len, sz - len, ".%s", p + 2);
        } else if (!strncmp(p, "k:", 2)) {
            cJSON *k = cJSON_Parse(p + 2);
            len += (size_t)snprintf(out + len, sz - len, "[");
            const cJSON *c;
            int first = 1;
            cJSON_ArrayForEach(c, k)
            {
                char *v = cJSON_PrintUnformatted(c);
                if (len < sz)
                    len += (size_t)snprintf(out + len, sz - len, "%s%s=%s", first ? "" : ",", c->string, v ? v : "");
                free(v);
                first = 0;
            }
            cJSON_Delete(k);
            if (len < sz) len += (size_t)snprintf(out + len, sz - len, "]");
        } else if (len < sz) {
            len += (size_t)snprintf(out + len, sz - len, "[%s]", p + 2);
        }
    }
    if (len >= sz) out[sz - 1] = 0;
}

/* ---- removing object content ---- */

/* Removes the value at a leaf path from an object (a list item for "k:" paths). */
void ks_value_remove(cJSON *obj, const char **path, int n)
{
    if (n <= 0) return;
    cJSON *parent = (cJSON *)ks_value_at(obj, path, n - 1);
    const char *last = path[n - 1];
    if (!parent) return;
    if (!strncmp(last, "f:", 2)) {
        cJSON_DeleteItemFromObjectCaseSensitive(parent, last + 2);
    } else if (!strncmp(last, "k:", 2) && cJSON_IsArray(parent) && n >= 2 && !strncmp(path[n - 2], "f:", 2)) {
        char kb[512];
        int idx = 0;
        cJSON *e;
        cJSON_ArrayForEach(e, parent)
        {
            const char *k = ks_list_key(path[n - 2] + 2, e, kb, sizeof kb);
            if (k && !strcmp(k, last)) {
                cJSON_DeleteItemFromArray(parent, idx);
                return;
            }
            idx++;
        }
    }
}
