/* Server-side apply and the bookkeeping of metadata.managedFields for every other write: an
 * apply's conflicts are checked per leaf against the live value, as apimachinery's
 * structured-merge-diff does, and a create, update or patch records what its manager changed as
 * an Update entry. Field ownership itself (the FieldsV1 sets) is fieldset.c's. */
#include "fieldset.h"
#include "kubesim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- merging applied content ---- */

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
        } else if (cJSON_IsArray(c) && cJSON_IsArray(d) && ks_list_is_assoc(c->string, c) &&
                   (cJSON_GetArraySize(d) == 0 || ks_list_is_assoc(c->string, d))) {
            /* result order: the applied items in applied order, then the other live items */
            cJSON *out = cJSON_CreateArray();
            if (!out) return;
            char kb[512], kb2[512];
            const cJSON *e;
            cJSON_ArrayForEach(e, c)
            {
                const char *k = ks_list_key(c->string, e, kb, sizeof kb);
                const cJSON *live = ks_list_find(d, c->string, k);
                cJSON *item = live ? cJSON_Duplicate(live, 1) : cJSON_CreateObject();
                if (!item) continue;
                apply_merge(item, e);
                cJSON_AddItemToArray(out, item);
            }
            cJSON_ArrayForEach(e, d)
            {
                const char *k = ks_list_key(c->string, e, kb2, sizeof kb2);
                if (k && !ks_list_find(c, c->string, k)) cJSON_AddItemToArray(out, cJSON_Duplicate(e, 1));
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

static cJSON *mf_entry(cJSON *mf, const char *manager, const char *op, const char *api_version, const char *sub)
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
    cJSON_ArrayForEach(c, a) if (n < KS_FIELD_PATH_MAX) path[n++] = c->valuestring;
    return n;
}

static void conflict_leaf(const char **path, int n, void *vctx)
{
    struct conflict_ctx *c = vctx;
    if (!ks_fs_has_leaf(c->other_set, path, n)) return;
    if (!strcmp(path[n - 1], ".") || !strncmp(path[n - 1], "k:", 2)) return; /* item presence */
    const cJSON *a = ks_value_at(c->applied, path, n), *l = ks_value_at(c->live, path, n);
    if (!l || ks_jequal(a, l)) return;
    char pretty[1024];
    ks_path_pretty(path, n, pretty, sizeof pretty);
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
    const cJSON *mf;   /* all managers */
    const cJSON *mine; /* my entry (skipped) */
    cJSON *obj;
};

static void removal_leaf(const char **path, int n, void *vctx)
{
    struct removal_ctx *r = vctx;
    if (ks_fs_has_prefix(r->new_set, path, n)) return;
    const cJSON *e;
    cJSON_ArrayForEach(e, r->mf)
    {
        if (e == r->mine) continue;
        if (ks_fs_has_prefix(ks_j(e, "fieldsV1"), path, n)) return;
    }
    ks_value_remove(r->obj, path, n);
}

static void add_leaf(const char **path, int n, void *ctx) { ks_fs_add(ctx, path, n); }

cJSON *ks_apply(struct ks_server *s, const cJSON *live, const cJSON *applied, const char *manager, int force, int *code,
                cJSON **status)
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
            snprintf(desc, sizeof desc, "\"%s\" using %s", m ? m : "",
                     ks_jstr(e, "apiVersion") ? ks_jstr(e, "apiVersion") : "v1");
        struct ks_buf items;
        ks_buf_init(&items);
        struct conflict_ctx c = {live, clean, ks_j(e, "fieldsV1"), desc, causes, cJSON_CreateArray(), 0, &items};
        if (c.leaves) ks_fs_walk(new_set, conflict_leaf, &c);
        if (c.n && force) {
            const char *path[KS_FIELD_PATH_MAX];
            const cJSON *p;
            cJSON_ArrayForEach(p, c.leaves) ks_fs_remove(ks_j(e, "fieldsV1"), path, path_from_json(p, path));
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
        char *text =
            ks_sprintf("Apply failed with %d conflict%s: %s", total, total == 1 ? "" : "s", msg.data ? msg.data : "");
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
        ks_fs_walk(ks_j(mine, "fieldsV1"), removal_leaf, &r);
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
        if (!a) ks_fs_add(u->changed, path, n);
        return;
    }
    if (!a || !ks_jequal(a, b)) ks_fs_add(u->changed, path, n);
}

/* One step of ks_value_at: what the path element p names inside cur; field is the list's name. */
static const cJSON *value_step(const cJSON *cur, const char *p, const char *field)
{
    if (!cur) return NULL;
    if (!strncmp(p, "f:", 2)) return ks_j(cur, p + 2);
    if (!strncmp(p, "k:", 2)) return cJSON_IsArray(cur) ? ks_list_find(cur, field, p) : NULL;
    if (!strncmp(p, "i:", 2)) return cJSON_IsArray(cur) ? cJSON_GetArrayItem(cur, atoi(p + 2)) : NULL;
    return NULL;
}

/* ks_fs_walk over the new fieldset calling changed_leaf with ks_value_at of both objects, done in one
 * descent: the values are carried down instead of looked up again from the root for every
 * leaf (a list element's key was computed per leaf and per element before it). */
static void changed_walk(struct update_ctx *u, const cJSON *node, const char **path, int depth, const cJSON *a,
                         const cJSON *b, const char *field)
{
    if (depth >= KS_FIELD_PATH_MAX) return;
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
    const char *path[KS_FIELD_PATH_MAX];
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
    if (ks_fs_has_leaf(u->new_set, path, n)) return;
    cJSON *e;
    cJSON_ArrayForEach(e, u->mf) ks_fs_remove(ks_j(e, "fieldsV1"), path, n);
}

struct steal_ctx {
    cJSON *mf;
    cJSON *me;
};

static void steal_leaf(const char **path, int n, void *vctx)
{
    struct steal_ctx *st = vctx;
    cJSON *e;
    cJSON_ArrayForEach(e, st->mf) if (e != st->me && ks_fs_has_leaf(ks_j(e, "fieldsV1"), path, n))
        ks_fs_remove(ks_j(e, "fieldsV1"), path, n);
}

/* The fieldset of an object's status alone: {"f:status": ...} or {}. */
static cJSON *status_fields(const cJSON *obj)
{
    cJSON *set = cJSON_CreateObject();
    const cJSON *st = ks_j(obj, "status");
    if (set && st) ks_fields_add_member(set, "status", st);
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
    cJSON *new_set = status_only ? status_fields(nw) : ks_fields_except_same(nw, whole ? NULL : old, 1);
    cJSON *old_set = !old          ? cJSON_CreateObject()
                     : status_only ? status_fields(old)
                                   : ks_fields_except_same(old, whole ? NULL : nw, 1);
    cJSON *changed = cJSON_CreateObject();
    if (!new_set || !old_set || !changed) goto out;
    struct update_ctx u = {old, nw, changed, new_set, mf};
    if (old) {
        changed_fields(&u);
        ks_fs_walk(old_set, gone_leaf, &u);
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
            ks_fs_walk(changed, add_leaf, slow);
            char *a = cJSON_PrintUnformatted(slow), *b = cJSON_PrintUnformatted(changed);
            if (strcmp(a, b)) abort();
            free(a), free(b), cJSON_Delete(slow);
#endif
            ks_jset(me, "fieldsV1", changed);
            changed = NULL;
            mf_touch(s, me);
        } else if (me) {
            struct steal_ctx st = {mf, me};
            ks_fs_walk(changed, steal_leaf, &st);
            ks_fs_walk(changed, add_leaf, fv);
            mf_touch(s, me);
        }
    }
    mf_prune(mf);
    mf_sort(mf);
    if (!mf->child) cJSON_DeleteItemFromObjectCaseSensitive(md, "managedFields");
out:
    cJSON_Delete(new_set), cJSON_Delete(old_set), cJSON_Delete(changed);
}
