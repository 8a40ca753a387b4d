/* Server-side apply and the other patch types. Field ownership is kept as FieldsV1 trees
 * ({"f:spec":{"f:replicas":{}}}, list items as "k:{...}" with a "." member marker), the format
 * the apiserver serves in metadata.managedFields; conflicts are checked per leaf against the
 * live value, as apimachinery's structured-merge-diff does. */
#include "kubesim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PATH 64

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

static int list_is_assoc(const char *field, const cJSON *arr)
{
    char kb[512];
    if (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) == 0) return 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, arr) if (!ks_list_key(field, e, kb, sizeof kb)) return 0;
    return 1;
}

static const cJSON *find_by_key(const cJSON *arr, const char *field, const char *key)
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
    static const char *skip[] = {"name", "namespace", "uid", "resourceVersion", "generation",
                                 "creationTimestamp", "managedFields", "deletionTimestamp",
                                 "deletionGracePeriodSeconds", "selfLink", "generateName"};
    for (size_t i = 0; i < sizeof skip / sizeof skip[0]; i++)
        if (!strcmp(k, skip[i])) return 1;
    return 0;
}

static void build(cJSON *set, const cJSON *v, const char *field);

static void build_member(cJSON *set, const char *name, const cJSON *v)
{
    char key[600];
    size_t len = strlen(name);
    if (len > sizeof key - 3) len = sizeof key - 3; /* truncated as snprintf did */
    memcpy(key, "f:", 2);
    memcpy(key + 2, name, len);
    key[len + 2] = 0;
    cJSON *node = cJSON_CreateObject();
    if (!node) return;
    if ((cJSON_IsObject(v) && v->child) || list_is_assoc(name, v)) build(node, v, name);
    cJSON_AddItemToObject(set, key, node);
}

static void build(cJSON *set, const cJSON *v, const char *field)
{
    if (cJSON_IsObject(v)) {
        const cJSON *c;
        cJSON_ArrayForEach(c, v) build_member(set, c->string, c);
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
static cJSON *fields_except_same(const cJSON *obj, const cJSON *other, int skip_status)
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
                build_member(md, m->string, m);
            if (md->child)
                cJSON_AddItemToObject(set, "f:metadata", md);
            else
                cJSON_Delete(md);
            continue;
        }
        if (!same_member(c, obj, other)) build_member(set, c->string, c);
    }
    return set;
}

cJSON *ks_fields_of(const cJSON *obj, int skip_status) { return fields_except_same(obj, NULL, skip_status); }

/* ---- walking fieldsets ---- */

typedef void (*leaf_fn)(const char **path, int n, void *ctx);

static void walk(const cJSON *node, const char **path, int depth, leaf_fn fn, void *ctx)
{
    if (depth >= MAX_PATH) return;
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

static void fs_walk(const cJSON *set, leaf_fn fn, void *ctx)
{
    const char *path[MAX_PATH];
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

static int fs_has_leaf(const cJSON *set, const char **path, int n)
{
    const cJSON *node = fs_node(set, path, n);
    return node && (!node->child || ks_j(node, "."));
}

static int fs_has_prefix(const cJSON *set, const char **path, int n)
{
    return fs_node(set, path, n) != NULL;
}

static void fs_add(cJSON *set, const char **path, int n)
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

static void fs_remove(cJSON *set, const char **path, int n)
{
    cJSON *chain[MAX_PATH + 1];
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
static const cJSON *value_at(const cJSON *obj, const char **path, int n)
{
    const cJSON *cur = obj;
    const char *field = NULL;
    for (int i = 0; i < n && cur; i++) {
        const char *p = path[i];
        if (!strncmp(p, "f:", 2)) {
            field = p + 2;
            cur = ks_j(cur, field);
        } else if (!strncmp(p, "k:", 2)) {
            cur = cJSON_IsArray(cur) ? find_by_key(cur, field, p) : NULL;
        } else if (!strncmp(p, "i:", 2)) {
            cur = cJSON_IsArray(cur) ? cJSON_GetArrayItem(cur, atoi(p + 2)) : NULL;
        } else {
            return NULL;
        }
    }
    return cur;
}

static void pretty_path(const char **path, int n, char *out, size_t sz)
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
                    len += (size_t)snprintf(out + len, sz - len, "%s%s=%s", first ? "" : ",", c->string,
                                            v ? v : "");
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

/* ---- removing and merging object content ---- */

/* Removes the value at a leaf path from an object (a list item for "k:" paths). */
static void remove_at(cJSON *obj, const char **path, int n)
{
    if (n <= 0) return;
    cJSON *parent = (cJSON *)value_at(obj, path, n - 1);
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

/* Merges src into dst as an apply does: maps recursively, associative lists by key, other
 * lists and scalars replaced; explicit nulls remove. */
static void apply_merge(cJSON *dst, const cJSON *src)
{
    const cJSON *c;
    cJSON_ArrayForEach(c, src)
    {
        cJSON *d = ks_j(dst, c->string);
        if (cJSON_IsNull(c)) {
            cJSON_DeleteItemFromObjectCaseSensitive(dst, c->string);
        } else if (cJSON_IsObject(c) && cJSON_IsObject(d)) {
            apply_merge(d, c);
        } else if (cJSON_IsArray(c) && cJSON_IsArray(d) && list_is_assoc(c->string, c) &&
                   (cJSON_GetArraySize(d) == 0 || list_is_assoc(c->string, d))) {
            /* result order: the applied items in applied order, then the other live items */
            cJSON *out = cJSON_CreateArray();
            if (!out) return;
            char kb[512], kb2[512];
            const cJSON *e;
            cJSON_ArrayForEach(e, c)
            {
                const char *k = ks_list_key(c->string, e, kb, sizeof kb);
                const cJSON *live = find_by_key(d, c->string, k);
                cJSON *item = live ? cJSON_Duplicate(live, 1) : cJSON_CreateObject();
                if (!item) continue;
                apply_merge(item, e);
                cJSON_AddItemToArray(out, item);
            }
            cJSON_ArrayForEach(e, d)
            {
                const char *k = ks_list_key(c->string, e, kb2, sizeof kb2);
                if (k && !find_by_key(c, c->string, k)) cJSON_AddItemToArray(out, cJSON_Duplicate(e, 1));
            }
            ks_jset(dst, c->string, out);
        } else {
            ks_jset(dst, c->string, cJSON_Duplicate(c, 1));
        }
    }
}

/* ---- managedFields ---- */

static cJSON *mf_find(cJSON *mf, const char *manager, const char *op, const char *sub)
{
    cJSON *e;
    cJSON_ArrayForEach(e, mf)
    {
        if (ks_streq(ks_jstr(e, "manager"), manager) && ks_streq(ks_jstr(e, "operation"), op) &&
            (sub ? ks_streq(ks_jstr(e, "subresource"), sub) : !ks_j(e, "subresource")))
            return e;
    }
    return NULL;
}

static cJSON *mf_entry(cJSON *mf, const char *manager, const char *op, const char *api_version,
                       const char *sub)
{
    cJSON *e = mf_find(mf, manager, op, sub);
    if (e) return e;
    e = cJSON_CreateObject();
    if (!e) return NULL;
    cJSON_AddStringToObject(e, "manager", manager);
    cJSON_AddStringToObject(e, "operation", op);
    cJSON_AddStringToObject(e, "apiVersion", api_version ? api_version : "v1");
    cJSON_AddStringToObject(e, "time", "");
    cJSON_AddStringToObject(e, "fieldsType", "FieldsV1");
    cJSON_AddItemToObject(e, "fieldsV1", cJSON_CreateObject());
    if (sub) cJSON_AddStringToObject(e, "subresource", sub);
    cJSON_AddItemToArray(mf, e);
    return e;
}

static void mf_prune(cJSON *mf)
{
    int i = 0;
    cJSON *e = mf ? mf->child : NULL;
    while (e) {
        cJSON *next = e->next;
        cJSON *f = ks_j(e, "fieldsV1");
        if (!f || !f->child)
            cJSON_DeleteItemFromArray(mf, i);
        else
            i++;
        e = next;
    }
}

static const char *mf_key(const cJSON *e, const char *key)
{
    const char *v = ks_jstr(e, key);
    return v ? v : "";
}

static int mf_cmp(const void *a, const void *b)
{
    static const char *keys[] = {"operation", "time", "manager", "apiVersion", "subresource"};
    const cJSON *x = *(const cJSON *const *)a, *y = *(const cJSON *const *)b;
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        int c = strcmp(mf_key(x, keys[i]), mf_key(y, keys[i]));
        if (c) return c;
    }
    return 0;
}

/* In the order the apiserver encodes them: Apply before Update, then by time (to the second,
 * as stored), manager, apiVersion and subresource. */
static void mf_sort(cJSON *mf)
{
    int n = cJSON_GetArraySize(mf);
    if (n < 2) return;
    cJSON **v = malloc((size_t)n * sizeof *v);
    if (!v) return;
    for (int i = 0; i < n; i++) v[i] = cJSON_DetachItemFromArray(mf, 0);
    qsort(v, (size_t)n, sizeof *v, mf_cmp);
    for (int i = 0; i < n; i++) cJSON_AddItemToArray(mf, v[i]);
    free(v);
}

static void mf_touch(struct ks_server *s, cJSON *e)
{
    char ts[32];
    ks_now_str(s, ts);
    ks_jset_str(e, "time", ts);
}

/* ---- apply ---- */

struct conflict_ctx {
    const cJSON *live, *applied, *other_set;
    const char *manager_desc;
    cJSON *causes;
    cJSON *leaves; /* paths (arrays of strings) that conflict, for force */
    int n;
    struct ks_buf *msg_items;
};

static cJSON *path_json(const char **path, int n)
{
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; a && i < n; i++) cJSON_AddItemToArray(a, cJSON_CreateString(path[i]));
    return a;
}

static int path_from_json(const cJSON *a, const char **path)
{
    int n = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, a) if (n < MAX_PATH) path[n++] = c->valuestring;
    return n;
}

static void conflict_leaf(const char **path, int n, void *vctx)
{
    struct conflict_ctx *c = vctx;
    if (!fs_has_leaf(c->other_set, path, n)) return;
    if (!strcmp(path[n - 1], ".") || !strncmp(path[n - 1], "k:", 2)) return; /* item presence */
    const cJSON *a = value_at(c->applied, path, n), *l = value_at(c->live, path, n);
    if (!l || ks_jequal(a, l)) return;
    char pretty[1024];
    pretty_path(path, n, pretty, sizeof pretty);
    cJSON *cause = cJSON_CreateObject();
    if (cause) {
        cJSON_AddStringToObject(cause, "reason", "FieldManagerConflict");
        char *m = ks_sprintf("conflict with %s", c->manager_desc);
        cJSON_AddStringToObject(cause, "message", m ? m : "");
        free(m);
        cJSON_AddStringToObject(cause, "field", pretty);
        cJSON_AddItemToArray(c->causes, cause);
    }
    cJSON_AddItemToArray(c->leaves, path_json(path, n));
    ks_buf_printf(c->msg_items, "\n- %s", pretty);
    c->n++;
}

struct removal_ctx {
    const cJSON *new_set;
    const cJSON *mf;       /* all managers */
    const cJSON *mine;     /* my entry (skipped) */
    cJSON *obj;
};

static void removal_leaf(const char **path, int n, void *vctx)
{
    struct removal_ctx *r = vctx;
    if (fs_has_prefix(r->new_set, path, n)) return;
    const cJSON *e;
    cJSON_ArrayForEach(e, r->mf)
    {
        if (e == r->mine) continue;
        if (fs_has_prefix(ks_j(e, "fieldsV1"), path, n)) return;
    }
    remove_at(r->obj, path, n);
}

static void add_leaf(const char **path, int n, void *ctx) { fs_add(ctx, path, n); }

cJSON *ks_apply(struct ks_server *s, const cJSON *live, const cJSON *applied, const char *manager,
                int force, int *code, cJSON **status)
{
    *status = NULL;
    *code = 200;
    const char *api_version = ks_jstr(applied, "apiVersion");
    cJSON *clean = cJSON_Duplicate(applied, 1);
    if (!clean) return NULL;
    cJSON_DeleteItemFromObjectCaseSensitive(clean, "status");
    cJSON *cmd = ks_j(clean, "metadata");
    cJSON_DeleteItemFromObjectCaseSensitive(cmd, "managedFields");
    cJSON_DeleteItemFromObjectCaseSensitive(cmd, "resourceVersion");
    cJSON_DeleteItemFromObjectCaseSensitive(cmd, "uid");
    cJSON_DeleteItemFromObjectCaseSensitive(cmd, "creationTimestamp");
    cJSON *new_set = ks_fields_of(clean, 1);
    cJSON *result = live ? cJSON_Duplicate(live, 1) : cJSON_CreateObject();
    if (!new_set || !result) goto oom;
    cJSON *md = ks_jobj(result, "metadata");
    cJSON *mf = ks_j(md, "managedFields");
    if (!cJSON_IsArray(mf)) {
        mf = cJSON_CreateArray();
        if (!mf) goto oom;
        ks_jset(md, "managedFields", mf);
    }

    /* conflicts with every other manager of the main resource */
    cJSON *causes = cJSON_CreateArray();
    struct ks_buf msg;
    ks_buf_init(&msg);
    int total = 0, managers_in_conflict = 0;
    cJSON *e;
    cJSON_ArrayForEach(e, mf)
    {
        const char *m = ks_jstr(e, "manager"), *op = ks_jstr(e, "operation");
        if (ks_j(e, "subresource")) continue;
        if (ks_streq(m, manager) && ks_streq(op, "Apply")) continue;
        char desc[300];
        if (ks_streq(op, "Apply"))
            snprintf(desc, sizeof desc, "\"%s\"", m ? m : "");
        else
            snprintf(desc, sizeof desc, "\"%s\" using %s", m ? m : "", ks_jstr(e, "apiVersion") ? ks_jstr(e, "apiVersion") : "v1");
        struct ks_buf items;
        ks_buf_init(&items);
        struct conflict_ctx c = {live, clean, ks_j(e, "fieldsV1"), desc, causes, cJSON_CreateArray(), 0, &items};
        if (c.leaves) fs_walk(new_set, conflict_leaf, &c);
        if (c.n && force) {
            const char *path[MAX_PATH];
            const cJSON *p;
            cJSON_ArrayForEach(p, c.leaves) fs_remove(ks_j(e, "fieldsV1"), path, path_from_json(p, path));
        } else if (c.n) {
            managers_in_conflict++;
            if (c.n == 1)
                ks_buf_printf(&msg, "%sconflict with %s: %s", msg.len ? "\n" : "", desc, items.data + 3);
            else
                ks_buf_printf(&msg, "%sconflicts with %s:%s", msg.len ? "\n" : "", desc, items.data);
            total += c.n;
        }
        ks_buf_free(&items);
        cJSON_Delete(c.leaves);
    }
    if (total && !force) {
        char *text = ks_sprintf("Apply failed with %d conflict%s: %s", total, total == 1 ? "" : "s",
                                msg.data ? msg.data : "");
        *status = ks_status_new(409, "Conflict", text ? text : "Apply failed");
        free(text);
        cJSON *d = cJSON_CreateObject();
        if (d && *status) {
            cJSON_AddItemToObject(d, "causes", causes);
            causes = NULL;
            cJSON_AddItemToObject(*status, "details", d);
        } else {
            cJSON_Delete(d);
        }
        *code = 409;
        cJSON_Delete(causes);
        ks_buf_free(&msg);
        cJSON_Delete(clean), cJSON_Delete(new_set), cJSON_Delete(result);
        return NULL;
    }
    (void)managers_in_conflict;
    cJSON_Delete(causes);
    ks_buf_free(&msg);

    /* fields I applied before and no longer apply, owned by nobody else, are removed */
    cJSON *mine = mf_find(mf, manager, "Apply", NULL);
    if (mine) {
        struct removal_ctx r = {new_set, mf, mine, result};
        fs_walk(ks_j(mine, "fieldsV1"), removal_leaf, &r);
    }
    apply_merge(result, clean);
    md = ks_jobj(result, "metadata");
    mf = ks_j(md, "managedFields");

    mine = mf_entry(mf, manager, "Apply", api_version, NULL);
    if (mine && !ks_jequal(ks_j(mine, "fieldsV1"), new_set)) {
        ks_jset(mine, "fieldsV1", new_set);
        new_set = NULL;
        mf_touch(s, mine);
    }
    mf_prune(mf);
    mf_sort(mf);
    cJSON_Delete(new_set);
    cJSON_Delete(clean);
    return result;
oom:
    cJSON_Delete(clean), cJSON_Delete(new_set), cJSON_Delete(result);
    *code = 500;
    *status = ks_status_new(500, "InternalError", "out of memory");
    return NULL;
}

/* ---- update managers ---- */

struct update_ctx {
    const cJSON *old, *nw;
    cJSON *changed; /* fieldset */
    const cJSON *new_set;
    cJSON *mf;
};

/* A leaf of the new fieldset at path, whose values are a (old) and b (new): changed? */
static void changed_leaf(struct update_ctx *u, const char **path, int n, const cJSON *a, const cJSON *b)
{
    if (!strcmp(path[n - 1], ".") || !strncmp(path[n - 1], "k:", 2)) {
        if (!a) fs_add(u->changed, path, n);
        return;
    }
    if (!a || !ks_jequal(a, b)) fs_add(u->changed, path, n);
}

/* One step of value_at: what the path element p names inside cur; field is the list's name. */
static const cJSON *value_step(const cJSON *cur, const char *p, const char *field)
{
    if (!cur) return NULL;
    if (!strncmp(p, "f:", 2)) return ks_j(cur, p + 2);
    if (!strncmp(p, "k:", 2)) return cJSON_IsArray(cur) ? find_by_key(cur, field, p) : NULL;
    if (!strncmp(p, "i:", 2)) return cJSON_IsArray(cur) ? cJSON_GetArrayItem(cur, atoi(p + 2)) : NULL;
    return NULL;
}

/* fs_walk over the new fieldset calling changed_leaf with value_at of both objects, done in one
 * descent: the values are carried down instead of looked up again from the root for every
 * leaf (a list element's key was computed per leaf and per element before it). */
static void changed_walk(struct update_ctx *u, const cJSON *node, const char **path, int depth, const cJSON *a,
                         const cJSON *b, const char *field)
{
    if (depth >= MAX_PATH) return;
    if (!node->child) {
        changed_leaf(u, path, depth, a, b);
        return;
    }
    const cJSON *c;
    cJSON_ArrayForEach(c, node)
    {
        if (!strcmp(c->string, ".")) {
            changed_leaf(u, path, depth, a, b);
            continue;
        }
        path[depth] = c->string;
        const char *f = !strncmp(c->string, "f:", 2) ? c->string + 2 : field;
        changed_walk(u, c, path, depth + 1, value_step(a, c->string, field), value_step(b, c->string, field), f);
    }
}

static void changed_fields(struct update_ctx *u)
{
    const char *path[MAX_PATH];
    const cJSON *c;
    cJSON_ArrayForEach(c, u->new_set)
    {
        path[0] = c->string;
        const char *f = !strncmp(c->string, "f:", 2) ? c->string + 2 : NULL;
        changed_walk(u, c, path, 1, value_step(u->old, c->string, NULL), value_step(u->nw, c->string, NULL), f);
    }
}

static void gone_leaf(const char **path, int n, void *vctx)
{
    struct update_ctx *u = vctx;
    if (fs_has_leaf(u->new_set, path, n)) return;
    cJSON *e;
    cJSON_ArrayForEach(e, u->mf) fs_remove(ks_j(e, "fieldsV1"), path, n);
}

struct steal_ctx {
    cJSON *mf;
    cJSON *me;
};

static void steal_leaf(const char **path, int n, void *vctx)
{
    struct steal_ctx *st = vctx;
    cJSON *e;
    cJSON_ArrayForEach(e, st->mf) if (e != st->me && fs_has_leaf(ks_j(e, "fieldsV1"), path, n))
        fs_remove(ks_j(e, "fieldsV1"), path, n);
}

/* The fieldset of an object's status alone: {"f:status": ...} or {}. */
static cJSON *status_fields(const cJSON *obj)
{
    cJSON *set = cJSON_CreateObject();
    const cJSON *st = ks_j(obj, "status");
    if (set && st) build_member(set, "status", st);
    return set;
}

static void record_update(struct ks_server *s, const cJSON *old, cJSON *nw, const char *manager,
                          const char *subresource, int whole);

void ks_fields_record_update(struct ks_server *s, const cJSON *old, cJSON *nw, const char *manager,
                             const char *subresource)
{
#ifdef KS_VERIFY_FASTPATH
    cJSON *slow = cJSON_Duplicate(nw, 1);
    record_update(s, old, slow, manager, subresource, 1);
#endif
    record_update(s, old, nw, manager, subresource, 0);
#ifdef KS_VERIFY_FASTPATH
    if (!ks_jequal(ks_jpath(slow, "metadata.managedFields"), ks_jpath(nw, "metadata.managedFields"))) {
        char *a = cJSON_PrintUnformatted(slow), *b = cJSON_PrintUnformatted(nw);
        fprintf(stderr, "fields fastpath mismatch:\n%s\n%s\n", a, b);
        abort();
    }
    cJSON_Delete(slow);
#endif
}

/* whole: the fieldsets of the whole objects, as the check of the fast path (KS_VERIFY_FASTPATH) */
static void record_update(struct ks_server *s, const cJSON *old, cJSON *nw, const char *manager,
                          const char *subresource, int whole)
{
    int status_only = subresource && !strcmp(subresource, "status");
    cJSON *md = ks_jobj(nw, "metadata");
    cJSON *mf = ks_j(md, "managedFields");
    if (!cJSON_IsArray(mf)) {
        mf = cJSON_CreateArray();
        if (!mf) return;
        ks_jset(md, "managedFields", mf);
    }
    /* a status write owns the status subtree only: the rest is not even looked at */
    /* only the members that changed matter (and all of them for a creation) */
    cJSON *new_set = status_only ? status_fields(nw) : fields_except_same(nw, whole ? NULL : old, 1);
    cJSON *old_set = !old         ? cJSON_CreateObject()
                     : status_only ? status_fields(old)
                                   : fields_except_same(old, whole ? NULL : nw, 1);
    cJSON *changed = cJSON_CreateObject();
    if (!new_set || !old_set || !changed) goto out;
    struct update_ctx u = {old, nw, changed, new_set, mf};
    if (old) {
        changed_fields(&u);
        fs_walk(old_set, gone_leaf, &u);
    } else {
        /* a creation: every leaf is new, and adding them all one by one rebuilds new_set */
#ifdef KS_VERIFY_FASTPATH
        changed_fields(&u);
        char *a = cJSON_PrintUnformatted(changed), *b = cJSON_PrintUnformatted(new_set);
        if (strcmp(a, b)) {
            fprintf(stderr, "fastpath mismatch:\n%s\n%s\n", a, b);
            abort();
        }
        free(a), free(b);
#endif
        cJSON_Delete(changed);
        changed = new_set;
        new_set = NULL;
    }
    if (changed->child) {
        char *gv = NULL;
        const char *av = ks_jstr(nw, "apiVersion");
        cJSON *me = mf_entry(mf, manager, "Update", av ? av : (gv = ks_strdup("v1")), subresource);
        free(gv);
        cJSON *fv = ks_j(me, "fieldsV1");
        if (me && fv && !fv->child && mf->child == me && !me->next) {
            /* the one manager, owning nothing yet (a creation): it owns what changed, which
             * is the set that taking the leaves from nobody and adding them one by one builds */
#ifdef KS_VERIFY_FASTPATH
            cJSON *slow = cJSON_CreateObject();
            fs_walk(changed, add_leaf, slow);
            char *a = cJSON_PrintUnformatted(slow), *b = cJSON_PrintUnformatted(changed);
            if (strcmp(a, b)) abort();
            free(a), free(b), cJSON_Delete(slow);
#endif
            ks_jset(me, "fieldsV1", changed);
            changed = NULL;
            mf_touch(s, me);
        } else if (me) {
            struct steal_ctx st = {mf, me};
            fs_walk(changed, steal_leaf, &st);
            fs_walk(changed, add_leaf, fv);
            mf_touch(s, me);
        }
    }
    mf_prune(mf);
    mf_sort(mf);
    if (!mf->child) cJSON_DeleteItemFromObjectCaseSensitive(md, "managedFields");
out:
    cJSON_Delete(new_set), cJSON_Delete(old_set), cJSON_Delete(changed);
}

/* ---- RFC 7386 merge patch ---- */

cJSON *ks_merge_patch(const cJSON *target, const cJSON *patch)
{
    if (!cJSON_IsObject(patch)) return cJSON_Duplicate(patch, 1);
    cJSON *res = cJSON_IsObject(target) ? cJSON_Duplicate(target, 1) : cJSON_CreateObject();
    if (!res) return NULL;
    const cJSON *c;
    cJSON_ArrayForEach(c, patch)
    {
        if (cJSON_IsNull(c)) {
            cJSON_DeleteItemFromObjectCaseSensitive(res, c->string);
            continue;
        }
        cJSON *v = ks_merge_patch(ks_j(res, c->string), c);
        if (!v) {
            cJSON_Delete(res);
            return NULL;
        }
        ks_jset(res, c->string, v);
    }
    return res;
}

/* ---- strategic merge patch (approximation: known list keys, directives stripped) ---- */

static cJSON *smp(const cJSON *target, const cJSON *patch, const char *field);

static cJSON *smp_list(const cJSON *target, const cJSON *patch, const char *field)
{
    char kb[512];
    int assoc = 1, any = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, patch)
    {
        any = 1;
        if (!ks_list_key(field, e, kb, sizeof kb)) assoc = 0;
    }
    if (!assoc || !any || !cJSON_IsArray(target)) {
        cJSON *out = cJSON_CreateArray();
        cJSON_ArrayForEach(e, patch)
        {
            if (!out) break;
            if (cJSON_IsObject(e) && ks_jstr(e, "$patch")) continue;
            cJSON_AddItemToArray(out, smp(NULL, e, NULL));
        }
        return out;
    }
    cJSON *out = cJSON_Duplicate(target, 1);
    if (!out) return NULL;
    cJSON_ArrayForEach(e, patch)
    {
        const char *k = ks_list_key(field, e, kb, sizeof kb);
        int idx = 0, found = -1;
        cJSON *t;
        char kb2[512];
        cJSON_ArrayForEach(t, out)
        {
            const char *k2 = ks_list_key(field, t, kb2, sizeof kb2);
            if (k2 && !strcmp(k, k2)) {
                found = idx;
                break;
            }
            idx++;
        }
        if (ks_streq(ks_jstr(e, "$patch"), "delete")) {
            if (found >= 0) cJSON_DeleteItemFromArray(out, found);
            continue;
        }
        cJSON *merged = smp(found >= 0 ? cJSON_GetArrayItem(out, found) : NULL, e, NULL);
        if (!merged) continue;
        if (found >= 0)
            cJSON_ReplaceItemInArray(out, found, merged);
        else
            cJSON_AddItemToArray(out, merged);
    }
    return out;
}

static cJSON *smp(const cJSON *target, const cJSON *patch, const char *field)
{
    (void)field;
    if (!cJSON_IsObject(patch)) return cJSON_Duplicate(patch, 1);
    const char *directive = ks_jstr(patch, "$patch");
    cJSON *res = (cJSON_IsObject(target) && !ks_streq(directive, "replace")) ? cJSON_Duplicate(target, 1)
                                                                             : cJSON_CreateObject();
    if (!res) return NULL;
    const cJSON *c;
    cJSON_ArrayForEach(c, patch)
    {
        const char *k = c->string;
        if (k[0] == '$') {
            if (!strncmp(k, "$deleteFromPrimitiveList/", 25)) {
                cJSON *list = ks_j(res, k + 25);
                const cJSON *v;
                cJSON_ArrayForEach(v, c)
                {
                    int idx = 0;
                    cJSON *t;
                    cJSON_ArrayForEach(t, list)
                    {
                        if (ks_jequal(t, v)) {
                            cJSON_DeleteItemFromArray(list, idx);
                            break;
                        }
                        idx++;
                    }
                }
            }
            continue;
        }
        if (cJSON_IsNull(c)) {
            cJSON_DeleteItemFromObjectCaseSensitive(res, k);
            continue;
        }
        cJSON *v = cJSON_IsArray(c) ? smp_list(ks_j(res, k), c, k) : smp(ks_j(res, k), c, k);
        if (v) ks_jset(res, k, v);
    }
    const cJSON *retain = ks_j(patch, "$retainKeys");
    if (cJSON_IsArray(retain)) {
        cJSON *m = res->child;
        while (m) {
            cJSON *next = m->next;
            int keep = 0;
            const cJSON *r;
            cJSON_ArrayForEach(r, retain) if (cJSON_IsString(r) && !strcmp(r->valuestring, m->string)) keep = 1;
            if (!keep) cJSON_DeleteItemFromObjectCaseSensitive(res, m->string);
            m = next;
        }
    }
    return res;
}

cJSON *ks_strategic_patch(const cJSON *target, const cJSON *patch) { return smp(target, patch, NULL); }

/* ---- RFC 6902 JSON patch ---- */

/* Resolves a JSON pointer to (parent, last token); the token is unescaped into tok. */
static cJSON *ptr_parent(cJSON *doc, const char *ptr, char *tok, size_t toksz)
{
    if (*ptr != '/') return NULL;
    cJSON *cur = doc;
    const char *p = ptr + 1;
    for (;;) {
        size_t n = 0;
        while (*p && *p != '/' && n + 1 < toksz) {
            if (p[0] == '~' && p[1] == '0') tok[n++] = '~', p += 2;
            else if (p[0] == '~' && p[1] == '1') tok[n++] = '/', p += 2;
            else tok[n++] = *p++;
        }
        tok[n] = 0;
        if (!*p) return cur;
        p++;
        if (cJSON_IsObject(cur))
            cur = ks_j(cur, tok);
        else if (cJSON_IsArray(cur))
            cur = cJSON_GetArrayItem(cur, atoi(tok));
        else
            return NULL;
        if (!cur) return NULL;
    }
}

static cJSON *ptr_get(cJSON *doc, const char *ptr)
{
    if (!*ptr) return doc;
    char tok[512];
    cJSON *par = ptr_parent(doc, ptr, tok, sizeof tok);
    if (cJSON_IsObject(par)) return ks_j(par, tok);
    if (cJSON_IsArray(par)) return cJSON_GetArrayItem(par, atoi(tok));
    return NULL;
}

static int ptr_add(cJSON *doc, const char *ptr, cJSON *v)
{
    char tok[512];
    cJSON *par = ptr_parent(doc, ptr, tok, sizeof tok);
    if (cJSON_IsObject(par)) {
        ks_jset(par, tok, v);
        return 0;
    }
    if (cJSON_IsArray(par)) {
        int n = cJSON_GetArraySize(par);
        if (!strcmp(tok, "-")) {
            cJSON_AddItemToArray(par, v);
            return 0;
        }
        int i = atoi(tok);
        if (i < 0 || i > n) goto bad;
        if (i == n)
            cJSON_AddItemToArray(par, v);
        else
            cJSON_InsertItemInArray(par, i, v);
        return 0;
    }
bad:
    cJSON_Delete(v);
    return -1;
}

static cJSON *ptr_detach(cJSON *doc, const char *ptr)
{
    char tok[512];
    cJSON *par = ptr_parent(doc, ptr, tok, sizeof tok);
    if (cJSON_IsObject(par)) return cJSON_DetachItemFromObjectCaseSensitive(par, tok);
    if (cJSON_IsArray(par)) {
        int i = atoi(tok);
        if (i < 0 || i >= cJSON_GetArraySize(par)) return NULL;
        return cJSON_DetachItemFromArray(par, i);
    }
    return NULL;
}

cJSON *ks_json_patch(const cJSON *target, const cJSON *ops, char **err)
{
    *err = NULL;
    if (!cJSON_IsArray(ops)) {
        *err = ks_strdup("json patch must be an array of operations");
        return NULL;
    }
    cJSON *doc = cJSON_Duplicate(target, 1);
    if (!doc) return NULL;
    const cJSON *op;
    cJSON_ArrayForEach(op, ops)
    {
        const char *o = ks_jstr(op, "op"), *path = ks_jstr(op, "path"), *from = ks_jstr(op, "from");
        const cJSON *val = ks_j(op, "value");
        if (!o || !path) goto bad;
        if (!strcmp(o, "add") || !strcmp(o, "replace")) {
            if (!val) goto bad;
            if (!strcmp(o, "replace")) {
                cJSON *old = ptr_detach(doc, path);
                if (!old) goto bad;
                cJSON_Delete(old);
            }
            if (ptr_add(doc, path, cJSON_Duplicate(val, 1)) < 0) goto bad;
        } else if (!strcmp(o, "remove")) {
            cJSON *old = ptr_detach(doc, path);
            if (!old) goto bad;
            cJSON_Delete(old);
        } else if (!strcmp(o, "move") || !strcmp(o, "copy")) {
            if (!from) goto bad;
            cJSON *v = !strcmp(o, "move") ? ptr_detach(doc, from) : cJSON_Duplicate(ptr_get(doc, from), 1);
            if (!v || ptr_add(doc, path, v) < 0) goto bad;
        } else if (!strcmp(o, "test")) {
            if (!ks_jequal(ptr_get(doc, path), val)) {
                *err = ks_sprintf("testing value %s failed", path);
                cJSON_Delete(doc);
                return NULL;
            }
        } else {
            goto bad;
        }
    }
    return doc;
bad:
    *err = ks_sprintf("the server rejected our request due to an error in our request: invalid json patch operation");
    cJSON_Delete(doc);
    return NULL;
}
