/* The patch types of a PATCH request other than server-side apply: RFC 7386 JSON merge patch,
 * strategic merge patch (an approximation: known list keys, directives stripped) and RFC 6902
 * JSON patch. Apart from apply.c because they transform the object alone and know nothing of
 * field ownership; the strategic merge only borrows the list keys (ks_list_key). */
#include "kubesim.h"

#include <stdlib.h>
#include <string.h>

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
    cJSON *res =
        (cJSON_IsObject(target) && !ks_streq(directive, "replace")) ? cJSON_Duplicate(target, 1) : cJSON_CreateObject();
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
            if (p[0] == '~' && p[1] == '0')
                tok[n++] = '~', p += 2;
            else if (p[0] == '~' && p[1] == '1')
                tok[n++] = '/', p += 2;
            else
                tok[n++] = *p++;
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
