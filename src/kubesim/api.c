/* The resource verbs: get, list (+watch), create, update, patch (apply, merge, strategic,
 * json), delete and deletecollection, with the status, scale, log and finalize subresources.
 * Each handler holds the server lock for its whole read-modify-write, so writes are serial. */
#include "http.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *qualified(struct ks_rtype *rt, char *buf, size_t n) { return ks_rtype_qualified(rt, buf, n); }

static const char NOT_ALLOWED[] = "the server does not allow this method on the requested resource";
static const char NO_RESOURCE[] = "the server could not find the requested resource";

static void not_found(struct ks_req *r, struct ks_resp *resp)
{
    char q[300];
    ks_resp_status(resp, ks_status_obj(404, "NotFound", r->rt, r->name, "%s \"%s\" not found",
                                       qualified(r->rt, q, sizeof q), r->name ? r->name : ""));
}

/* Real objects nest about 20 levels; the recursive apply and patch code runs on connection
 * threads with small stacks, so deeper bodies are refused up front. */
#define MAX_BODY_DEPTH 100

static int too_deep(const cJSON *o, int depth)
{
    if (depth > MAX_BODY_DEPTH) return 1;
    const cJSON *c;
    cJSON_ArrayForEach(c, o) if ((cJSON_IsObject(c) || cJSON_IsArray(c)) && too_deep(c, depth + 1)) return 1;
    return 0;
}

cJSON *ks_body_parse(struct ks_req *r, cJSON **status)
{
    *status = NULL;
    const char *ct = ks_hdr(r, "Content-Type");
    if (ct && strstr(ct, "protobuf")) {
        *status = ks_status_new(415, "UnsupportedMediaType",
                                "the body of the request was in an unknown format - accepted media types "
                                "include: application/json, application/yaml");
        return NULL;
    }
    if (!r->body.len) {
        *status = ks_status_new(400, "BadRequest",
                                "the server rejected our request due to an error in our "
                                "request: request body is empty");
        return NULL;
    }
    cJSON *o = NULL;
    /* JSON is YAML: a YAML body that is JSON (what kubectl sends for apply) takes the fast path */
    if (ct && strstr(ct, "yaml") && r->body.data[0] == '{') o = cJSON_ParseWithLength(r->body.data, r->body.len);
    if (!o && ct && strstr(ct, "yaml")) {
        char *err = NULL;
        o = ks_yaml_parse(r->body.data, r->body.len, &err);
        if (!o) {
            char *m = ks_sprintf("error decoding YAML: %s", err ? err : "invalid");
            *status = ks_status_new(400, "BadRequest", m ? m : "invalid YAML");
            free(m);
            free(err);
            return NULL;
        }
    } else if (!o) {
        const char *end = NULL;
        o = cJSON_ParseWithLengthOpts(r->body.data, r->body.len, &end, 0);
        if (!o) {
            char *m = ks_sprintf("the object provided is unrecognized (must be of type %s): couldn't get "
                                 "version/kind; json parse error: invalid JSON near offset %ld",
                                 r->rt ? r->rt->kind : "object", end ? (long)(end - r->body.data) : 0L);
            *status = ks_status_new(400, "BadRequest", m ? m : "invalid JSON");
            free(m);
            return NULL;
        }
    }
    if (too_deep(o, 0)) {
        cJSON_Delete(o);
        *status = ks_status_new(400, "BadRequest", "the request body is nested too deeply");
        return NULL;
    }
    return o;
}

/* Checks apiVersion/kind of a body against the URL's resource (both optional on update). */
static cJSON *check_kind(struct ks_req *r, const cJSON *obj, int required)
{
    if (!cJSON_IsObject(obj))
        return ks_status_new(400, "BadRequest", "the body of the request must be a JSON or YAML object");
    const char *kind = ks_jstr(obj, "kind"), *av = ks_jstr(obj, "apiVersion");
    if (required && (!kind || !*kind)) {
        char *m = ks_sprintf("Object 'Kind' is missing in '%.200s'", r->body.data ? r->body.data : "");
        cJSON *st = ks_status_new(400, "BadRequest", m ? m : "Object 'Kind' is missing");
        free(m);
        return st;
    }
    if (required && (!av || !*av)) {
        char *m = ks_sprintf("Object 'apiVersion' is missing in '%.200s'", r->body.data ? r->body.data : "");
        cJSON *st = ks_status_new(400, "BadRequest", m ? m : "Object 'apiVersion' is missing");
        free(m);
        return st;
    }
    char *gv = ks_rtype_gv(r->rt);
    cJSON *st = NULL;
    if (kind && strcmp(kind, r->rt->kind)) {
        char *m = ks_sprintf("the server rejected our request due to an error in our request: kind %s does "
                             "not match the expected kind %s",
                             kind, r->rt->kind);
        st = ks_status_new(400, "BadRequest", m ? m : "kind mismatch");
        free(m);
    } else if (av && gv && strcmp(av, gv)) {
        char *m = ks_sprintf("the API version in the data (%s) does not match the expected API version (%s)", av, gv);
        st = ks_status_new(400, "BadRequest", m ? m : "apiVersion mismatch");
        free(m);
    }
    free(gv);
    return st;
}

static const char *manager_of(struct ks_req *r, char *buf, size_t n)
{
    const char *fm = ks_q(r, "fieldManager");
    if (fm && *fm) return fm;
    const char *ua = ks_hdr(r, "User-Agent");
    if (!ua || !*ua) return "unknown";
    size_t i = 0;
    while (ua[i] && ua[i] != '/' && i + 1 < n) {
        buf[i] = ua[i];
        i++;
    }
    buf[i] = 0;
    return buf;
}

static int dry_run(struct ks_req *r) { return ks_q(r, "dryRun") != NULL; }

/* NamespaceLifecycle: in kube-apiserver a mutating admission plugin, so it runs after the body
 * was decoded against the schema (ks_schema_check) and before the strategy's defaults and
 * validation (ks_validate): an object for a namespace that does not exist gets 404, dry run or
 * not, whatever else is wrong with it beyond its field types. */
static cJSON *namespace_check(struct ks_req *r)
{
    if (!r->rt->namespaced) return NULL;
    struct ks_rtype *nsrt = ks_rtype_find(r->s, "", "v1", "namespaces");
    struct ks_obj *ns = ks_obj_get(r->s, nsrt, "", r->ns);
    if (!ns) return ks_status_obj(404, "NotFound", nsrt, r->ns, "namespaces \"%s\" not found", r->ns);
    if (ks_jpath(ns->json, "metadata.deletionTimestamp")) {
        char q[300];
        cJSON *st = ks_status_obj(403, "Forbidden", r->rt, r->name,
                                  "%s \"%s\" is forbidden: unable to create new content in namespace %s because "
                                  "it is being terminated",
                                  qualified(r->rt, q, sizeof q), r->name ? r->name : "", r->ns);
        cJSON *cause = cJSON_CreateObject();
        if (cause) {
            cJSON_AddStringToObject(cause, "reason", "NamespaceTerminating");
            char *m = ks_sprintf("namespace %s is being terminated", r->ns);
            cJSON_AddStringToObject(cause, "message", m ? m : "");
            free(m);
            cJSON_AddStringToObject(cause, "field", "metadata.namespace");
            cJSON_AddItemToArray(cJSON_AddArrayToObject(ks_j(st, "details"), "causes"), cause);
        }
        return st;
    }
    return NULL;
}

/* ---- responses with objects ---- */

static void send_obj(struct ks_req *r, struct ks_resp *resp, int code, const cJSON *obj)
{
    if (ks_wants_table(r) && !strcmp(r->method, "GET")) {
        cJSON *items = cJSON_CreateArray();
        if (items) cJSON_AddItemToArray(items, cJSON_Duplicate(obj, 1));
        ks_resp_json(resp, code,
                     ks_table_of(r->s, r->rt, items,
                                 ks_jpath(obj, "metadata.resourceVersion")
                                     ? ks_jpath(obj, "metadata.resourceVersion")->valuestring
                                     : "0"),
                     "application/json;as=Table;v=v1;g=meta.k8s.io");
        return;
    }
    ks_resp_json(resp, code, cJSON_Duplicate(obj, 1), NULL);
}

/* Answers with the stored object's cached text (no copy of the tree, no printing). */
static void send_stored(struct ks_req *r, struct ks_resp *resp, int code, struct ks_obj *o)
{
    size_t len;
    const char *text = ks_obj_text(o, &len);
    if (!text || (ks_wants_table(r) && !strcmp(r->method, "GET"))) {
        send_obj(r, resp, code, o->json);
        return;
    }
    free(resp->body);
    resp->body = ks_strndup(text, len);
    resp->len = resp->body ? len : 0;
    resp->code = resp->body ? code : 500;
    resp->ctype = "application/json";
}

/* ---- get / list ---- */

static void do_get(struct ks_req *r, struct ks_resp *resp)
{
    struct ks_obj *o = ks_obj_get(r->s, r->rt, r->ns, r->name);
    if (!o) return not_found(r, resp);
    send_stored(r, resp, 200, o);
}

static int parse_selectors(struct ks_req *r, struct ks_resp *resp, struct ks_selector **ls, struct ks_selector **fs)
{
    char *err = NULL;
    *ls = *fs = NULL;
    const char *l = ks_q(r, "labelSelector"), *f = ks_q(r, "fieldSelector");
    if (l && *l && !(*ls = ks_sel_parse_labels(l, &err))) {
        ks_resp_error(resp, 400, "BadRequest", err ? err : "bad labelSelector");
        free(err);
        return -1;
    }
    if (f && *f && !(*fs = ks_sel_parse_fields(f, r->rt, &err))) {
        ks_resp_error(resp, 400, "BadRequest", err ? err : "bad fieldSelector");
        free(err);
        ks_sel_free(*ls);
        *ls = NULL;
        return -1;
    }
    return 0;
}

static void do_list(struct ks_req *r, struct ks_resp *resp, struct ks_selector *ls, struct ks_selector *fs)
{
    struct ks_server *s = r->s;
    const char *lim = ks_q(r, "limit"), *cont = ks_q(r, "continue");
    long limit = lim ? atol(lim) : 0, start = 0;
    if (cont && *cont) {
        if (strncmp(cont, "o:", 2)) {
            ks_resp_error(resp, 410, "Expired",
                          "The provided continue parameter is too old to display a "
                          "consistent list result. You can start a new list without the "
                          "continue parameter.");
            return;
        }
        start = atol(cont + 2);
    }
    size_t n;
    struct ks_obj **all = ks_obj_list(s, r->rt, r->ns, &n);
    if (!all) {
        ks_resp_error(resp, 500, "InternalError", "out of memory");
        return;
    }
    int table = ks_wants_table(r);
    cJSON *items = table ? cJSON_CreateArray() : NULL;
    struct ks_buf body;
    ks_buf_init(&body);
    char *gv = ks_rtype_gv(r->rt);
    ks_buf_printf(&body, "{\"kind\":\"%s\",\"apiVersion\":\"%s\",\"metadata\":{\"resourceVersion\":\"%llu\"",
                  r->rt->list_kind, gv ? gv : "v1", (unsigned long long)s->rv);
    free(gv);
    /* items are appended first into their own buffer: the continue token is known at the end */
    struct ks_buf its;
    ks_buf_init(&its);
    long matched = 0, emitted = 0, next = -1, remaining = 0;
    for (size_t i = 0; i < n; i++) {
        if (!ks_sel_match(ls, all[i]->json) || !ks_sel_match(fs, all[i]->json)) continue;
        if (matched++ < start) continue;
        if (limit > 0 && emitted >= limit) {
            if (next < 0) next = matched - 1;
            remaining++;
            continue;
        }
        if (table) {
            cJSON_AddItemToArray(items, cJSON_Duplicate(all[i]->json, 1));
        } else {
            size_t len;
            const char *t = ks_obj_text(all[i], &len);
            if (emitted) ks_buf_add(&its, ",", 1);
            if (t) ks_buf_add(&its, t, len);
        }
        emitted++;
    }
    free(all);
    if (table) {
        char rv[24];
        snprintf(rv, sizeof rv, "%llu", (unsigned long long)s->rv);
        ks_buf_free(&body);
        ks_buf_free(&its);
        ks_resp_json(resp, 200, ks_table_of(s, r->rt, items, rv), "application/json;as=Table;v=v1;g=meta.k8s.io");
        return;
    }
    /* how many remain is told only of a list without selectors, as the apiserver tells it */
    if (next >= 0) ks_buf_printf(&body, ",\"continue\":\"o:%ld\"", next);
    if (next >= 0 && !ls && !fs) ks_buf_printf(&body, ",\"remainingItemCount\":%ld", remaining);
    ks_buf_adds(&body, "},\"items\":[");
    if (its.len) ks_buf_add(&body, its.data, its.len);
    ks_buf_adds(&body, "]}");
    ks_buf_free(&its);
    if (body.oom) {
        ks_buf_free(&body);
        ks_resp_error(resp, 500, "InternalError", "out of memory");
        return;
    }
    free(resp->body);
    resp->code = 200;
    resp->len = body.len;
    resp->body = ks_buf_steal(&body);
    resp->ctype = "application/json";
}

/* ---- writes ---- */

/* Stores nw (takes it) as the new content of o after defaulting, validation and the
 * managedFields bookkeeping; answers with the stored object. */
static void commit_update(struct ks_req *r, struct ks_resp *resp, struct ks_obj *o, cJSON *nw, const char *manager,
                          const char *subresource, int record_fields)
{
    struct ks_server *s = r->s;
    cJSON *st = NULL;
    if (subresource && !strcmp(subresource, "status")) {
        /* a status write changes status only */
        cJSON *status = cJSON_DetachItemFromObjectCaseSensitive(nw, "status");
        cJSON *merged = cJSON_Duplicate(o->json, 1);
        cJSON_Delete(nw);
        if (!merged) {
            cJSON_Delete(status);
            ks_resp_error(resp, 500, "InternalError", "out of memory");
            return;
        }
        cJSON_DeleteItemFromObjectCaseSensitive(merged, "status");
        if (status) cJSON_AddItemToObject(merged, "status", status);
        nw = merged;
    } else if (r->rt->status_sub) {
        cJSON_DeleteItemFromObjectCaseSensitive(nw, "status");
        cJSON *old_status = ks_j(o->json, "status");
        if (old_status) cJSON_AddItemToObject(nw, "status", cJSON_Duplicate(old_status, 1));
    }
    ks_defaults_apply(s, r->rt, nw, o->json);
    if (ks_validate(s, r->rt, nw, o->json, &st) < 0) {
        cJSON_Delete(nw);
        ks_resp_status(resp, st);
        return;
    }
    if (record_fields) {
        /* managedFields are the server's: a client's copy in the body is ignored */
        cJSON *md = ks_jobj(nw, "metadata");
        cJSON *omf = ks_jpath(o->json, "metadata.managedFields");
        if (omf)
            ks_jset(md, "managedFields", cJSON_Duplicate(omf, 1));
        else
            cJSON_DeleteItemFromObjectCaseSensitive(md, "managedFields");
        ks_fields_record_update(s, o->json, nw, manager, subresource);
    }
    if (dry_run(r)) {
        ks_resp_json(resp, 200, nw, NULL);
        return;
    }
    int finalizing = ks_jpath(o->json, "metadata.deletionTimestamp") != NULL;
    ks_obj_update(s, o, nw);
    if (finalizing) {
        cJSON *fin = ks_jpath(o->json, "metadata.finalizers");
        if (!fin || !cJSON_GetArraySize(fin)) {
            cJSON *copy = cJSON_Duplicate(o->json, 1);
            ks_obj_remove(s, o);
            ks_resp_json(resp, 200, copy, NULL);
            return;
        }
    }
    send_stored(r, resp, 200, o);
}

static void do_create(struct ks_req *r, struct ks_resp *resp, cJSON *body)
{
    struct ks_server *s = r->s;
    cJSON *st = check_kind(r, body, 1);
    if (!st) st = ks_schema_check(r->rt, body, 0);
    if (st) {
        cJSON_Delete(body);
        ks_resp_status(resp, st);
        return;
    }
    cJSON *md = ks_jobj(body, "metadata");
    const char *bns = ks_jstr(md, "namespace");
    if (r->rt->namespaced) {
        if (bns && *bns && strcmp(bns, r->ns)) {
            cJSON_Delete(body);
            ks_resp_error(resp, 400, "BadRequest",
                          "the namespace of the provided object does not match the "
                          "namespace sent on the request");
            return;
        }
        ks_jset_str(md, "namespace", r->ns);
    }
    const char *gen = ks_jstr(md, "generateName");
    if (!ks_jstr(md, "name") && gen) {
        char suf[8];
        ks_rng_suffix(&s->rng, suf, 5);
        char *name = ks_sprintf("%s%s", gen, suf);
        if (name) ks_jset_str(md, "name", name);
        free(name);
    }
    const char *name = ks_jstr(md, "name");
    free(r->name);
    r->name = ks_strdup(name);
    /* server-owned metadata from a client is dropped */
    static const char *drop[] = {"uid",           "resourceVersion",   "creationTimestamp", "generation",
                                 "managedFields", "deletionTimestamp", "selfLink"};
    for (size_t i = 0; i < sizeof drop / sizeof drop[0]; i++) cJSON_DeleteItemFromObjectCaseSensitive(md, drop[i]);
    if (r->rt->status_sub && strcmp(r->rt->kind, "Namespace")) cJSON_DeleteItemFromObjectCaseSensitive(body, "status");
    if ((st = namespace_check(r))) {
        cJSON_Delete(body);
        ks_resp_status(resp, st);
        return;
    }
    ks_defaults_apply(s, r->rt, body, NULL);
    if (ks_validate(s, r->rt, body, NULL, &st) < 0) {
        cJSON_Delete(body);
        ks_resp_status(resp, st);
        return;
    }
    if (ks_obj_get(s, r->rt, r->ns, name)) {
        char q[300];
        cJSON_Delete(body); /* name pointed into body: r->name is the copy */
        ks_resp_status(resp, ks_status_obj(409, "AlreadyExists", r->rt, r->name, "%s \"%s\" already exists",
                                           qualified(r->rt, q, sizeof q), r->name));
        return;
    }
    char mb[128];
    ks_fields_record_update(s, NULL, body, manager_of(r, mb, sizeof mb), NULL);
    if (dry_run(r)) {
        ks_obj_stamp(s, r->rt, body); /* what would be stored, but for its resourceVersion */
        ks_resp_json(resp, 201, body, NULL);
        return;
    }
    struct ks_obj *o = ks_obj_insert(s, r->rt, body);
    if (!o) {
        ks_resp_error(resp, 500, "InternalError", "out of memory");
        return;
    }
    send_stored(r, resp, 201, o);
}

static cJSON *rv_conflict(struct ks_req *r, struct ks_obj *o, const cJSON *body)
{
    const char *rv =
        ks_jpath(body, "metadata.resourceVersion") ? ks_jstr(ks_j(body, "metadata"), "resourceVersion") : NULL;
    const char *cur = ks_jstr(ks_j(o->json, "metadata"), "resourceVersion");
    if (!rv || !*rv || ks_streq(rv, cur)) return NULL;
    char q[300];
    return ks_status_obj(409, "Conflict", r->rt, o->name,
                         "Operation cannot be fulfilled on %s \"%s\": the object has been modified; please apply "
                         "your changes to the latest version and try again",
                         qualified(r->rt, q, sizeof q), o->name);
}

static cJSON *name_mismatch(struct ks_req *r, const cJSON *body)
{
    const char *bn = ks_jstr(ks_j(body, "metadata"), "name");
    if (bn && r->name && strcmp(bn, r->name)) {
        char *m = ks_sprintf("the name of the object (%s) does not match the name on the URL (%s)", bn, r->name);
        cJSON *st = ks_status_new(400, "BadRequest", m ? m : "name mismatch");
        free(m);
        return st;
    }
    const char *bns = ks_jstr(ks_j(body, "metadata"), "namespace");
    if (r->rt->namespaced && bns && *bns && strcmp(bns, r->ns))
        return ks_status_new(400, "BadRequest",
                             "the namespace of the provided object does not match the namespace "
                             "sent on the request");
    return NULL;
}

static void do_update(struct ks_req *r, struct ks_resp *resp, cJSON *body)
{
    cJSON *st = check_kind(r, body, 0);
    if (!st) st = ks_schema_check(r->rt, body, 0);
    if (!st) st = name_mismatch(r, body);
    if (st) {
        cJSON_Delete(body);
        ks_resp_status(resp, st);
        return;
    }
    struct ks_obj *o = ks_obj_get(r->s, r->rt, r->ns, r->name);
    if (!o) {
        cJSON_Delete(body);
        return not_found(r, resp);
    }
    if ((st = rv_conflict(r, o, body))) {
        cJSON_Delete(body);
        ks_resp_status(resp, st);
        return;
    }
    char mb[128];
    commit_update(r, resp, o, body, manager_of(r, mb, sizeof mb), r->sub, 1);
}

static void do_apply(struct ks_req *r, struct ks_resp *resp, cJSON *body)
{
    struct ks_server *s = r->s;
    const char *fm = ks_q(r, "fieldManager");
    if (!fm || !*fm) {
        cJSON_Delete(body);
        ks_resp_error(resp, 422, "Invalid",
                      "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: "
                      "is required for apply patch");
        return;
    }
    cJSON *st = check_kind(r, body, 1);
    if (!st) st = ks_schema_check(r->rt, body, 1);
    if (!st) st = name_mismatch(r, body);
    if (st) {
        cJSON_Delete(body);
        ks_resp_status(resp, st);
        return;
    }
    struct ks_obj *o = ks_obj_get(s, r->rt, r->ns, r->name);
    if (o && (st = rv_conflict(r, o, body))) {
        cJSON_Delete(body);
        ks_resp_status(resp, st);
        return;
    }
    if (!o && r->sub) {
        cJSON_Delete(body);
        return not_found(r, resp);
    }
    int code;
    cJSON *res = ks_apply(s, o ? o->json : NULL, body, fm, ks_qbool(r, "force"), &code, &st);
    cJSON_Delete(body);
    if (!res) {
        ks_resp_status(resp, st);
        return;
    }
    if (o) {
        commit_update(r, resp, o, res, fm, r->sub, 0);
        return;
    }
    /* apply creates */
    cJSON *md = ks_jobj(res, "metadata");
    ks_jset_str(md, "name", r->name);
    if (r->rt->namespaced) ks_jset_str(md, "namespace", r->ns);
    if ((st = namespace_check(r))) {
        cJSON_Delete(res);
        ks_resp_status(resp, st);
        return;
    }
    ks_defaults_apply(s, r->rt, res, NULL);
    if (ks_validate(s, r->rt, res, NULL, &st) < 0) {
        cJSON_Delete(res);
        ks_resp_status(resp, st);
        return;
    }
    if (dry_run(r)) {
        ks_obj_stamp(s, r->rt, res);
        ks_resp_json(resp, 201, res, NULL);
        return;
    }
    o = ks_obj_insert(s, r->rt, res);
    if (!o) {
        ks_resp_error(resp, 500, "InternalError", "out of memory");
        return;
    }
    send_stored(r, resp, 201, o);
}

static void do_patch(struct ks_req *r, struct ks_resp *resp, cJSON *patch)
{
    const char *ct = ks_hdr(r, "Content-Type");
    if (ks_q(r, "force")) {
        cJSON_Delete(patch);
        ks_resp_error(resp, 422, "Invalid",
                      "PatchOptions.meta.k8s.io \"\" is invalid: force: Forbidden: may not be "
                      "specified for non-apply patch");
        return;
    }
    struct ks_obj *o = ks_obj_get(r->s, r->rt, r->ns, r->name);
    if (!o) {
        cJSON_Delete(patch);
        return not_found(r, resp);
    }
    cJSON *res = NULL;
    char *err = NULL;
    /* "strategic-merge-patch+json" contains "merge-patch": test it first */
    if (strstr(ct, "strategic-merge-patch"))
        res = ks_strategic_patch(o->json, patch);
    else if (strstr(ct, "json-patch"))
        res = ks_json_patch(o->json, patch, &err);
    else
        res = ks_merge_patch(o->json, patch);
    cJSON *st = NULL;
    if (res && (st = rv_conflict(r, o, res))) {
        cJSON_Delete(res);
        res = NULL;
    }
    if (!res && !st) {
        st = ks_status_new(err ? 422 : 500, err ? "Invalid" : "InternalError", err ? err : "patch failed");
        free(err);
    }
    if (!st && res) st = name_mismatch(r, res);
    cJSON_Delete(patch);
    if (st) {
        cJSON_Delete(res);
        ks_resp_status(resp, st);
        return;
    }
    char mb[128];
    commit_update(r, resp, o, res, manager_of(r, mb, sizeof mb), r->sub, 1);
}

/* ---- delete ---- */

/* A DELETE's options: from the body when there is one, else from the query. */
struct delete_opts {
    cJSON *body; /* the DeleteOptions sent, or NULL */
    char policy[16];
    int dry;
};

/* Reads the options; answers (400, 422) and returns -1 when they are not valid. */
static int delete_opts_read(struct ks_req *r, struct ks_resp *resp, struct delete_opts *d)
{
    cJSON *opts = NULL;
    if (r->body.len) {
        opts = cJSON_ParseWithLength(r->body.data, r->body.len);
        if (!cJSON_IsObject(opts)) {
            cJSON_Delete(opts);
            ks_resp_error(resp, 400, "BadRequest",
                          "the server rejected our request due to an error in our "
                          "request: invalid DeleteOptions");
            return -1;
        }
    }
    /* The DeleteOptions come from the body when there is one, else from the query, never from
     * both (kube-apiserver's handlers/delete.go): a ?dryRun=All beside a body is not a dry run. */
    const char *prop = opts ? ks_jstr(opts, "propagationPolicy") : ks_q(r, "propagationPolicy");
    if (opts ? ks_jbool(opts, "orphanDependents", 0) : ks_qbool(r, "orphanDependents")) prop = "Orphan";
    if (prop && strcmp(prop, "Background") && strcmp(prop, "Foreground") && strcmp(prop, "Orphan")) {
        char *m = ks_sprintf("DeleteOptions.meta.k8s.io \"\" is invalid: propagationPolicy: Unsupported value: "
                             "\"%s\": supported values: \"Foreground\", \"Background\", \"Orphan\"",
                             prop);
        ks_resp_error(resp, 422, "Invalid", m ? m : "invalid propagationPolicy");
        free(m);
        cJSON_Delete(opts);
        return -1;
    }
    snprintf(d->policy, sizeof d->policy, "%s", prop ? prop : "Background");
    d->dry = opts ? cJSON_GetArraySize(ks_j(opts, "dryRun")) > 0 : dry_run(r);
    d->body = opts;
    return 0;
}

/* Answers 409 (and returns 1) when the options' preconditions (uid, resourceVersion) do not hold for o. */
static int precondition_failed(struct ks_req *r, struct ks_resp *resp, const struct ks_obj *o, const cJSON *opts)
{
    const cJSON *pre = ks_j(opts, "preconditions");
    const char *puid = ks_jstr(pre, "uid"), *prv = ks_jstr(pre, "resourceVersion");
    const char *orv = ks_jstr(ks_j(o->json, "metadata"), "resourceVersion");
    if (!(puid && strcmp(puid, o->uid)) && !(prv && !ks_streq(prv, orv))) return 0;
    char q[300];
    ks_resp_status(resp, ks_status_obj(409, "Conflict", r->rt, o->name,
                                       "Operation cannot be fulfilled on %s \"%s\": Precondition failed: %s "
                                       "in precondition: %s, %s in object meta: %s",
                                       qualified(r->rt, q, sizeof q), o->name, puid ? "UID" : "ResourceVersion",
                                       puid ? puid : prv, puid ? "UID" : "ResourceVersion", puid ? o->uid : orv));
    return 1;
}

/* Deletes o and answers as kube-apiserver does: the object while it stays (finalizers, foreground) or as it
 * was marked (a pod, which answers with the deleted object: ks_ctl_delete marks every one), or a Success
 * Status. */
static void delete_and_answer(struct ks_req *r, struct ks_resp *resp, struct ks_obj *o, const char *policy)
{
    cJSON *marked = NULL;
    char uid[64];
    snprintf(uid, sizeof uid, "%s", o->uid);
    struct ks_obj *kept = ks_ctl_delete(r->s, o, policy, &marked);
    if (kept || marked) { /* on its way out: the object as it stays, or as it was marked */
        ks_resp_json(resp, 200, marked ? marked : cJSON_Duplicate(kept->json, 1), NULL);
        return;
    }
    /* a Success Status names what went, without a code or a message */
    cJSON *st = ks_status_obj(200, NULL, r->rt, r->name, "%s", "");
    cJSON_DeleteItemFromObjectCaseSensitive(st, "message");
    cJSON_DeleteItemFromObjectCaseSensitive(st, "code");
    cJSON_AddStringToObject(ks_j(st, "details"), "uid", uid);
    ks_resp_json(resp, 200, st, NULL);
}

static void delete_one(struct ks_req *r, struct ks_resp *resp, const struct delete_opts *d)
{
    struct ks_obj *o = ks_obj_get(r->s, r->rt, r->ns, r->name);
    if (!o) return not_found(r, resp);
    if (precondition_failed(r, resp, o, d->body)) return;
    if (!strcmp(r->rt->kind, "Namespace") &&
        (!strcmp(o->name, "default") || !strcmp(o->name, "kube-system") || !strcmp(o->name, "kube-public"))) {
        ks_resp_status(resp,
                       ks_status_obj(403, "Forbidden", r->rt, o->name,
                                     "namespaces \"%s\" is forbidden: this namespace may not be deleted", o->name));
        return;
    }
    if (d->dry) {
        ks_resp_json(resp, 200, cJSON_Duplicate(o->json, 1), NULL);
        return;
    }
    delete_and_answer(r, resp, o, d->policy);
}

/* deletecollection: answers the list of what the selectors matched (and, unless a dry run, deleted). */
static void delete_collection(struct ks_req *r, struct ks_resp *resp, const struct delete_opts *d)
{
    struct ks_server *s = r->s;
    struct ks_selector *ls, *fs;
    if (parse_selectors(r, resp, &ls, &fs) < 0) return;
    size_t n;
    struct ks_obj **all = ks_obj_list(s, r->rt, r->ns, &n);
    cJSON *items = cJSON_CreateArray();
    for (size_t i = 0; all && items && i < n; i++) {
        /* an earlier deletion may have collected this one: look it up again by key */
        char ns[256], name[256];
        snprintf(ns, sizeof ns, "%s", all[i]->ns);
        snprintf(name, sizeof name, "%s", all[i]->name);
        all[i] = NULL;
        struct ks_obj *o = ks_obj_get(s, r->rt, ns, name);
        if (!o || !ks_sel_match(ls, o->json) || !ks_sel_match(fs, o->json)) continue;
        cJSON_AddItemToArray(items, cJSON_Duplicate(o->json, 1));
        if (!d->dry) ks_ctl_delete(s, o, d->policy, NULL);
    }
    free(all);
    ks_sel_free(ls);
    ks_sel_free(fs);
    cJSON *list = cJSON_CreateObject();
    char *gv = ks_rtype_gv(r->rt);
    cJSON_AddStringToObject(list, "kind", r->rt->list_kind);
    cJSON_AddStringToObject(list, "apiVersion", gv ? gv : "v1");
    free(gv);
    cJSON_AddItemToObject(list, "metadata", cJSON_CreateObject());
    cJSON_AddItemToObject(list, "items", items);
    ks_resp_json(resp, 200, list, NULL);
}

static void do_delete(struct ks_req *r, struct ks_resp *resp)
{
    struct delete_opts d;
    if (delete_opts_read(r, resp, &d) < 0) return;
    if (r->name)
        delete_one(r, resp, &d);
    else
        delete_collection(r, resp, &d);
    cJSON_Delete(d.body);
}

/* ---- scale subresource ---- */

static cJSON *scale_of(struct ks_obj *o)
{
    cJSON *sc = cJSON_CreateObject();
    if (!sc) return NULL;
    cJSON_AddStringToObject(sc, "kind", "Scale");
    cJSON_AddStringToObject(sc, "apiVersion", "autoscaling/v1");
    cJSON *md = cJSON_AddObjectToObject(sc, "metadata");
    static const char *keys[] = {"name", "namespace", "uid", "resourceVersion", "creationTimestamp"};
    for (size_t i = 0; i < 5; i++) {
        cJSON *v = ks_jpath(o->json, "metadata") ? ks_j(ks_j(o->json, "metadata"), keys[i]) : NULL;
        if (v) cJSON_AddItemToObject(md, keys[i], cJSON_Duplicate(v, 1));
    }
    cJSON_AddNumberToObject(cJSON_AddObjectToObject(sc, "spec"), "replicas",
                            ks_jnum(ks_j(o->json, "spec"), "replicas", 1));
    cJSON *st = cJSON_AddObjectToObject(sc, "status");
    cJSON_AddNumberToObject(st, "replicas", ks_jnum(ks_j(o->json, "status"), "replicas", 0));
    struct ks_buf sel;
    ks_buf_init(&sel);
    const cJSON *ml = ks_jpath(o->json, "spec.selector.matchLabels"), *l;
    cJSON_ArrayForEach(l, ml) if (cJSON_IsString(l))
        ks_buf_printf(&sel, "%s%s=%s", sel.len ? "," : "", l->string, l->valuestring);
    cJSON_AddStringToObject(st, "selector", sel.data ? sel.data : "");
    ks_buf_free(&sel);
    return sc;
}

static void do_scale(struct ks_req *r, struct ks_resp *resp, cJSON *body)
{
    struct ks_obj *o = ks_obj_get(r->s, r->rt, r->ns, r->name);
    if (!o) {
        cJSON_Delete(body);
        return not_found(r, resp);
    }
    if (!strcmp(r->method, "GET")) {
        ks_resp_json(resp, 200, scale_of(o), NULL);
        return;
    }
    cJSON *sc = scale_of(o), *res = NULL;
    const char *ct = ks_hdr(r, "Content-Type");
    if (!strcmp(r->method, "PUT"))
        res = cJSON_Duplicate(body, 1);
    else if (ct && strstr(ct, "json-patch")) {
        char *err = NULL;
        res = ks_json_patch(sc, body, &err);
        free(err);
    } else
        res = ks_merge_patch(sc, body);
    cJSON_Delete(sc);
    cJSON_Delete(body);
    const cJSON *rep = ks_jpath(res, "spec.replicas");
    if (!cJSON_IsNumber(rep) || rep->valuedouble < 0) {
        cJSON_Delete(res);
        ks_resp_error(resp, 422, "Invalid",
                      "Scale.autoscaling \"\" is invalid: spec.replicas: Invalid value: must be "
                      "greater than or equal to 0");
        return;
    }
    cJSON *nw = cJSON_Duplicate(o->json, 1);
    ks_jset_num(ks_jobj(nw, "spec"), "replicas", rep->valuedouble);
    cJSON_Delete(res);
    char mb[128];
    struct ks_resp inner = {0};
    free(r->sub);
    r->sub = NULL;
    commit_update(r, &inner, o, nw, manager_of(r, mb, sizeof mb), NULL, 1);
    if (inner.code == 200) {
        free(inner.body);
        struct ks_obj *now = ks_obj_get(r->s, r->rt, r->ns, r->name);
        ks_resp_json(resp, 200, now ? scale_of(now) : cJSON_CreateObject(), NULL);
    } else {
        *resp = inner;
    }
}

/* ---- namespace finalize ---- */

static void do_finalize(struct ks_req *r, struct ks_resp *resp, cJSON *body)
{
    struct ks_obj *o = ks_obj_get(r->s, r->rt, "", r->name);
    if (!o) {
        cJSON_Delete(body);
        return not_found(r, resp);
    }
    cJSON *nw = cJSON_Duplicate(o->json, 1);
    cJSON *fin = ks_jpath(body, "spec.finalizers");
    ks_jset(ks_jobj(nw, "spec"), "finalizers", fin ? cJSON_Duplicate(fin, 1) : cJSON_CreateArray());
    cJSON_Delete(body);
    ks_obj_update(r->s, o, nw);
    cJSON *copy = cJSON_Duplicate(o->json, 1);
    /* a terminating namespace left without finalizers goes, as the registry deletes it */
    if (ks_jpath(o->json, "metadata.deletionTimestamp") && !cJSON_GetArraySize(ks_jpath(o->json, "spec.finalizers")) &&
        !cJSON_GetArraySize(ks_jpath(o->json, "metadata.finalizers")))
        ks_obj_remove(r->s, o);
    ks_resp_json(resp, 200, copy, NULL);
}

/* Whether the Accept header names a media type the apiserver encodes objects in (JSON, YAML,
 * protobuf; kubesim answers JSON to all three) or the wildcard; no header means JSON. A pod's
 * log is plain text, but its request is negotiated the same way: text/plain alone is refused. */
static int acceptable(struct ks_req *r)
{
    static const char *types[] = {"*/*", "application/json", "application/yaml", "application/vnd.kubernetes.protobuf"};
    const char *acc = ks_hdr(r, "Accept");
    if (!acc || !*acc) return 1;
    for (const char *p = acc; *p;) {
        while (*p == ' ' || *p == ',') p++;
        size_t n = strcspn(p, ",;");
        while (n && p[n - 1] == ' ') n--;
        for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
            if (n == strlen(types[i]) && !strncasecmp(p, types[i], n)) return 1;
        p += strcspn(p, ",");
    }
    return 0;
}

static void not_acceptable(struct ks_req *r, struct ks_resp *resp)
{
    static const char media[] = "application/json, application/yaml, application/vnd.kubernetes.protobuf";
    char msg[300];
    if (r->sub && !strcmp(r->sub, "log")) {
        snprintf(msg, sizeof msg, "only the following media types are accepted: %s", media);
        ks_resp_error(resp, 406, "NotAcceptable", msg);
        return;
    }
    snprintf(msg, sizeof msg, "406: Not Acceptable\n\nAvailable representations: %s%s", media,
             r->name ? "" : ", application/json;stream=watch, application/vnd.kubernetes.protobuf;stream=watch");
    ks_resp_generic(resp, 406, "NotAcceptable", msg);
}

static int is_sub(const struct ks_req *r, const char *sub) { return r->sub && !strcmp(r->sub, sub); }

/* GET pods/NAME/log: the log a pod's containers write (followed with ?follow). */
static void serve_log(struct ks_req *r, struct ks_resp *resp)
{
    struct ks_server *s = r->s;
    if (strcmp(r->rt->kind, "Pod") || strcmp(r->method, "GET")) {
        ks_resp_generic(resp, 405, "MethodNotAllowed", NOT_ALLOWED);
        return;
    }
    pthread_mutex_lock(&s->mu);
    struct ks_obj *o = ks_obj_get(s, r->rt, r->ns, r->name);
    if (!o) {
        not_found(r, resp);
        pthread_mutex_unlock(&s->mu);
        return;
    }
    ks_log_start(r, resp, o, ks_q(r, "container"));
    pthread_mutex_unlock(&s->mu);
}

/* Answers (and returns 1) a path or method the resource does not serve: 404 or 405, before any body is read. */
static int refuse_route(struct ks_req *r, struct ks_resp *resp)
{
    const char *m = r->method;
    if (r->sub && strcmp(r->sub, "status") && strcmp(r->sub, "scale") && strcmp(r->sub, "finalize")) {
        ks_resp_generic(resp, 404, "NotFound", NO_RESOURCE);
        return 1;
    }
    if (is_sub(r, "scale") && !r->rt->scale_sub) {
        ks_resp_generic(resp, 404, "NotFound", NO_RESOURCE);
        return 1;
    }
    if (r->name && !strcmp(m, "POST")) {
        ks_resp_generic(resp, 405, "MethodNotAllowed", NOT_ALLOWED);
        return 1;
    }
    if (!r->name && (!strcmp(m, "PUT") || !strcmp(m, "PATCH") || (!strcmp(m, "DELETE") && !r->rt->deletecollection))) {
        ks_resp_generic(resp, 405, "MethodNotAllowed", NOT_ALLOWED);
        return 1;
    }
    if (r->rt->namespaced && !r->ns && (strcmp(m, "GET") || r->name)) {
        /* a namespaced object needs a namespace in the path */
        ks_resp_generic(resp, 404, "NotFound", NO_RESOURCE);
        return 1;
    }
    return 0;
}

/* Answers (and returns 1) a PATCH whose Content-Type is no patch type the resource takes. */
static int refuse_patch_type(struct ks_req *r, struct ks_resp *resp, const char *ct)
{
    if (!ct || (!strstr(ct, "apply-patch") && !strstr(ct, "merge-patch+json") && !strstr(ct, "json-patch+json") &&
                !strstr(ct, "strategic-merge-patch+json"))) {
        ks_resp_error(resp, 415, "UnsupportedMediaType",
                      "the body of the request was in an unknown format - accepted media types include: "
                      "application/json-patch+json, application/merge-patch+json, "
                      "application/apply-patch+yaml, application/strategic-merge-patch+json");
        return 1;
    }
    /* a custom resource has no strategy to merge by */
    if (strstr(ct, "strategic") && !r->rt->builtin) {
        ks_resp_error(resp, 415, "UnsupportedMediaType",
                      "the body of the request was in an unknown format - accepted media types include: "
                      "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml");
        return 1;
    }
    return 0;
}

/* The body of a POST, PUT or PATCH: an object, or a JSON patch's array. Answers and returns -1 when there is none. */
static int read_body(struct ks_req *r, struct ks_resp *resp, cJSON **out)
{
    const char *m = r->method, *ct = ks_hdr(r, "Content-Type");
    int is_patch = !strcmp(m, "PATCH");
    if (is_patch && refuse_patch_type(r, resp, ct)) return -1;
    cJSON *st;
    cJSON *body = ks_body_parse(r, &st);
    if (!body) {
        ks_resp_status(resp, st);
        return -1;
    }
    int patch_array = is_patch && ct && strstr(ct, "json-patch+json");
    if (!patch_array && !cJSON_IsObject(body)) {
        cJSON_Delete(body);
        ks_resp_error(resp, 400, "BadRequest", "the body of the request must be a JSON or YAML object");
        return -1;
    }
    *out = body;
    return 0;
}

/* GET of a collection: a list, or a watch with ?watch. */
static void serve_collection(struct ks_req *r, struct ks_resp *resp)
{
    struct ks_selector *ls, *fs;
    if (parse_selectors(r, resp, &ls, &fs) < 0) return;
    if (ks_qbool(r, "watch")) {
        ks_watch_start(r, resp, ls, fs, r->ns);
        return;
    }
    pthread_mutex_lock(&r->s->mu);
    do_list(r, resp, ls, fs);
    pthread_mutex_unlock(&r->s->mu);
    ks_sel_free(ls);
    ks_sel_free(fs);
}

/* One object (or a DELETE of a collection), by subresource and method; called with the lock held. body is owned. */
static void serve_object(struct ks_req *r, struct ks_resp *resp, cJSON *body)
{
    const char *m = r->method;
    if (is_sub(r, "scale")) {
        do_scale(r, resp, body);
    } else if (is_sub(r, "finalize")) {
        if (strcmp(r->rt->kind, "Namespace") || strcmp(m, "PUT")) {
            cJSON_Delete(body);
            ks_resp_generic(resp, 404, "NotFound", NO_RESOURCE);
        } else {
            do_finalize(r, resp, body);
        }
    } else if (!strcmp(m, "GET")) {
        do_get(r, resp);
    } else if (!strcmp(m, "POST")) {
        do_create(r, resp, body);
    } else if (!strcmp(m, "PUT")) {
        do_update(r, resp, body);
    } else if (!strcmp(m, "PATCH")) {
        if (strstr(ks_hdr(r, "Content-Type"), "apply-patch"))
            do_apply(r, resp, body);
        else
            do_patch(r, resp, body);
    } else if (!strcmp(m, "DELETE")) {
        do_delete(r, resp);
    } else {
        cJSON_Delete(body);
        ks_resp_generic(resp, 405, "MethodNotAllowed", NOT_ALLOWED);
    }
}

void ks_api_handle(struct ks_req *r, struct ks_resp *resp)
{
    const char *m = r->method;
    int is_get = !strcmp(m, "GET");
    int needs_body = !strcmp(m, "POST") || !strcmp(m, "PUT") || !strcmp(m, "PATCH");

    if (is_get && !acceptable(r)) {
        not_acceptable(r, resp);
        return;
    }
    if (is_sub(r, "log")) {
        serve_log(r, resp);
        return;
    }
    if (refuse_route(r, resp)) return;
    cJSON *body = NULL;
    if (needs_body && read_body(r, resp, &body) < 0) return;
    if (is_get && !r->name) {
        serve_collection(r, resp);
        return;
    }
    pthread_mutex_lock(&r->s->mu);
    serve_object(r, resp, body);
    pthread_mutex_unlock(&r->s->mu);
}
