/* The HTTP front: libmicrohttpd with a thread per connection (watches and log streams block in
 * their content callbacks), request bodies, bearer-token checks, fault injection, counters,
 * and the route from a path to discovery, OpenAPI or a resource handler. */
#include "http.h"
#include "scenario.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_BODY (16u << 20)

const char *ks_q(struct ks_req *r, const char *key)
{
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, key);
}

const char *ks_hdr(struct ks_req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

int ks_qbool(struct ks_req *r, const char *key)
{
    const char *v = ks_q(r, key);
    return v && (!strcmp(v, "true") || !strcmp(v, "1") || !strcmp(v, "True"));
}

void ks_resp_json(struct ks_resp *resp, int code, cJSON *obj, const char *ctype)
{
    char *text = ks_jprint(obj);
    cJSON_Delete(obj);
    free(resp->body);
    if (!text) {
        resp->code = 500;
        resp->body = ks_strdup("{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\","
                               "\"message\":\"out of memory\",\"reason\":\"InternalError\",\"code\":500}");
        resp->len = resp->body ? strlen(resp->body) : 0;
        resp->ctype = "application/json";
        return;
    }
    resp->code = code;
    resp->body = text;
    resp->len = strlen(text);
    resp->ctype = ctype ? ctype : "application/json";
}

void ks_resp_status(struct ks_resp *resp, cJSON *status)
{
    int code = (int)ks_jnum(status, "code", 500);
    ks_resp_json(resp, code, status, "application/json");
}

void ks_resp_error(struct ks_resp *resp, int code, const char *reason, const char *msg)
{
    ks_resp_status(resp, ks_status_new(code, reason, msg));
}

void ks_resp_generic(struct ks_resp *resp, int code, const char *reason, const char *msg)
{
    cJSON *st = ks_status_new(code, reason, msg);
    if (st) cJSON_AddItemToObject(st, "details", cJSON_CreateObject());
    ks_resp_status(resp, st);
}

void ks_resp_text(struct ks_resp *resp, int code, const char *text, const char *ctype)
{
    free(resp->body);
    resp->code = code;
    resp->body = ks_strdup(text);
    resp->len = resp->body ? strlen(resp->body) : 0;
    resp->ctype = ctype ? ctype : "text/plain; charset=utf-8";
}

static void req_free(struct ks_req *r)
{
    if (!r) return;
    ks_buf_free(&r->body);
    free(r->path), free(r->ns), free(r->name), free(r->sub);
    free(r);
}

/* ---- routing of resource paths ---- */

/* Splits /api/v1/namespaces/x/pods/p/log and /apis/apps/v1/deployments into a route.
 * Returns 1 when the path is a resource path (r->rt set), 0 when it is not one, -1 when it
 * looks like one but names no known resource. */
static int route(struct ks_req *r)
{
    char *segs[16];
    int n = 0;
    char *copy = ks_strdup(r->path);
    if (!copy) return 0;
    char *save = NULL; /* strtok_r: requests are parsed on many threads at once */
    for (char *t = strtok_r(copy, "/", &save); t && n < 16; t = strtok_r(NULL, "/", &save)) segs[n++] = t;
    const char *group = NULL, *version = NULL;
    int i;
    if (n >= 3 && !strcmp(segs[0], "api")) {
        group = "";
        version = segs[1];
        i = 2;
    } else if (n >= 4 && !strcmp(segs[0], "apis")) {
        group = segs[1];
        version = segs[2];
        i = 3;
    } else {
        free(copy);
        return 0;
    }
    int rest = n - i;
    struct ks_rtype *rt = NULL;
    if (rest >= 3 && !strcmp(segs[i], "namespaces")) {
        rt = ks_rtype_find(r->s, group, version, segs[i + 2]);
        if (rt && rt->namespaced) {
            r->ns = ks_strdup(segs[i + 1]);
            i += 2;
            rest -= 2;
        } else {
            rt = NULL;
        }
    }
    if (!rt) rt = ks_rtype_find(r->s, group, version, segs[i]);
    if (!rt || rest > 3) {
        free(copy);
        return -1;
    }
    r->rt = rt;
    if (rest >= 2) r->name = ks_strdup(segs[i + 1]);
    if (rest >= 3) r->sub = ks_strdup(segs[i + 2]);
    free(copy);
    return 1;
}

static const char *verb_of(struct ks_req *r)
{
    const char *m = r->method;
    if (!strcmp(m, "GET")) {
        if (r->name) return "get";
        return ks_qbool(r, "watch") ? "watch" : "list";
    }
    if (!strcmp(m, "POST")) return "create";
    if (!strcmp(m, "PUT")) return "update";
    if (!strcmp(m, "PATCH")) {
        const char *ct = ks_hdr(r, "Content-Type");
        return ct && strstr(ct, "apply-patch") ? "apply" : "patch";
    }
    if (!strcmp(m, "DELETE")) return r->name ? "delete" : "deletecollection";
    return "other";
}

/* ---- faults ---- */

static int verb_faultable(struct ks_server *s, const char *verb)
{
    const char *list = s->faults.verbs;
    if (!list || !*list) return 1;
    size_t n = strlen(verb);
    for (const char *p = list; *p;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == n && !strncmp(p, verb, n)) return 1;
        p += len;
        if (*p == ',') p++;
    }
    return 0;
}

/* Decides under the lock (the fault PRNG is shared), acts after it. */
static int apply_faults(struct ks_req *r, struct ks_resp *resp)
{
    struct ks_server *s = r->s;
    struct ks_faults *f = &s->faults;
    double delay = 0;
    int drop = 0, code = 0;
    pthread_mutex_lock(&s->stats_mu);
    if (verb_faultable(s, r->verb)) {
        if (f->latency > 0 || f->latency_jitter > 0) {
            delay = f->latency + f->latency_jitter * ks_rng_unit(&s->frng);
            ks_stat_inc(&s->stats.faults, "latency");
        }
        if (f->drop_rate > 0 && ks_rng_unit(&s->frng) < f->drop_rate) {
            drop = 1;
            ks_stat_inc(&s->stats.faults, "drop");
        } else if (f->error_rate > 0 && ks_rng_unit(&s->frng) < f->error_rate) {
            code = f->n_error_codes ? f->error_codes[ks_rng_next(&s->frng) % (uint64_t)f->n_error_codes] : 500;
            char key[32];
            snprintf(key, sizeof key, "error_%d", code);
            ks_stat_inc(&s->stats.faults, key);
        }
    }
    pthread_mutex_unlock(&s->stats_mu);
    if (delay > 0) {
        struct timespec ts = {(time_t)delay, (long)((delay - (double)(time_t)delay) * 1e9)};
        nanosleep(&ts, NULL);
    }
    if (drop) {
        resp->drop = 1;
        return 1;
    }
    if (!code) return 0;
    const char *reason = code == 429   ? "TooManyRequests"
                         : code == 503 ? "ServiceUnavailable"
                         : code == 504 ? "Timeout"
                                       : "InternalError";
    const char *msg = code == 429   ? "Too many requests, please try again later."
                      : code == 503 ? "the server is currently unable to handle the request"
                      : code == 504 ? "Timeout: request did not complete within the allotted timeout"
                                    : "Internal error occurred: injected fault";
    cJSON *st = ks_status_new(code, reason, msg);
    if ((code == 429 || code == 503 || code == 500) && f->retry_after > 0) {
        resp->retry_after = f->retry_after;
        cJSON *d = cJSON_CreateObject();
        if (d) {
            cJSON_AddNumberToObject(d, "retryAfterSeconds", f->retry_after);
            if (code == 500) {
                cJSON *causes = cJSON_CreateArray(), *c = cJSON_CreateObject();
                if (c) cJSON_AddStringToObject(c, "message", "injected fault");
                cJSON_AddItemToArray(causes, c);
                cJSON_AddItemToObject(d, "causes", causes);
            }
            cJSON_AddItemToObject(st, "details", d);
        }
    }
    ks_resp_status(resp, st);
    return 1;
}

/* ---- /kubesim/stats ---- */

static cJSON *counters(struct ks_map *m)
{
    cJSON *o = cJSON_CreateObject();
    for (size_t i = 0; o && i < m->nb; i++)
        for (struct ks_map_ent *e = m->b[i]; e; e = e->next)
            cJSON_AddNumberToObject(o, e->key, (double)(uintptr_t)e->val);
    return o;
}

static void stats(struct ks_req *r, struct ks_resp *resp)
{
    struct ks_server *s = r->s;
    cJSON *o = cJSON_CreateObject();
    if (!o) {
        ks_resp_error(resp, 500, "InternalError", "out of memory");
        return;
    }
    pthread_mutex_lock(&s->mu);
    pthread_mutex_lock(&s->stats_mu);
    cJSON_AddNumberToObject(o, "requests_total", (double)s->stats.requests_total);
    cJSON_AddItemToObject(o, "requests_by_verb", counters(&s->stats.by_verb));
    cJSON_AddItemToObject(o, "requests_by_resource", counters(&s->stats.by_resource));
    cJSON_AddItemToObject(o, "requests_by_code", counters(&s->stats.by_code));
    cJSON_AddNumberToObject(o, "watches_open", s->stats.watches_open);
    cJSON_AddNumberToObject(o, "watches_total", (double)s->stats.watches_total);
    cJSON_AddItemToObject(o, "faults", counters(&s->stats.faults));
    cJSON_AddNumberToObject(o, "timers_fired", (double)s->stats.timers_fired);
    cJSON_AddNumberToObject(o, "timer_late_max_ms", s->stats.timer_late_max * 1000);
    cJSON_AddNumberToObject(o, "objects", (double)s->nobjects);
    cJSON_AddNumberToObject(o, "resource_version", (double)s->rv);
    cJSON_AddNumberToObject(o, "sim_time", ks_sim_now(s));
    cJSON_AddNumberToObject(o, "time_scale", s->time_scale);
    cJSON_AddNumberToObject(o, "seed", (double)s->seed);
    pthread_mutex_unlock(&s->stats_mu);
    pthread_mutex_unlock(&s->mu);
    ks_resp_json(resp, 200, o, NULL);
}

/* What RBAC answers a user bound to no role, worded as the apiserver's authorization filter
 * words it ("<resource> \"<name>\" is forbidden: User \"u\" cannot get resource ..."). */
static void forbidden(struct ks_req *r, struct ks_resp *resp, const char *user)
{
    struct ks_rtype *rt = r->rt;
    const char *verb = !strcmp(r->verb, "apply") ? "patch" : r->verb;
    /* a namespace's own namespace is itself, as in the apiserver's request info */
    const char *ns = r->ns ? r->ns : (!strcmp(rt->plural, "namespaces") && r->name ? r->name : NULL);
    char q[300], scope[300];
    if (ns)
        snprintf(scope, sizeof scope, "in the namespace \"%s\"", ns);
    else
        snprintf(scope, sizeof scope, "at the cluster scope");
    char name[300] = "";
    if (r->name) snprintf(name, sizeof name, " \"%s\"", r->name);
    cJSON *st = ks_status_obj(403, "Forbidden", rt, r->name,
                              "%s%s is forbidden: User \"%s\" cannot %s resource \"%s%s%s\" in API group \"%s\" %s",
                              ks_rtype_qualified(rt, q, sizeof q), name, user, verb, rt->plural, r->sub ? "/" : "",
                              r->sub ? r->sub : "", rt->group, scope);
    ks_resp_status(resp, st);
}

static void handle(struct ks_req *r, struct ks_resp *resp)
{
    struct ks_server *s = r->s;
    const char *p = r->path;
    if (!strncmp(p, "/kubesim/", 9)) {
        if (!strcmp(p, "/kubesim/stats"))
            stats(r, resp);
        else
            ks_resp_error(resp, 404, "NotFound", "the server could not find the requested resource");
        return;
    }
    int rc = route(r);
    r->verb = rc == 1 ? verb_of(r) : (!strcmp(r->method, "GET") ? "get" : "other");
    pthread_mutex_lock(&s->stats_mu);
    s->stats.requests_total++;
    ks_stat_inc(&s->stats.by_verb, r->verb);
    if (rc == 1) {
        char q[300];
        ks_stat_inc(&s->stats.by_resource, ks_rtype_qualified(r->rt, q, sizeof q));
    }
    pthread_mutex_unlock(&s->stats_mu);

    const char *unbound = NULL; /* an authenticated user bound to no role */
    if (s->token) {
        const char *auth = ks_hdr(r, "Authorization");
        int public_path =
            !strcmp(p, "/version") || !strcmp(p, "/healthz") || !strcmp(p, "/livez") || !strcmp(p, "/readyz");
        int bearer = auth && !strncmp(auth, "Bearer ", 7);
        int ok = bearer && !strcmp(auth + 7, s->token);
        if (!ok && bearer) unbound = ks_scenario_unbound_user(s->sc, auth + 7);
        if (!ok && !unbound && (auth || !public_path)) {
            ks_resp_error(resp, 401, "Unauthorized", "Unauthorized");
            return;
        }
    }
    /* such a user may still read /version, health and discovery (system:discovery and
     * system:public-info-viewer hold for every authenticated user), nothing else */
    if (unbound && rc == 1) {
        forbidden(r, resp, unbound);
        return;
    }
    if (apply_faults(r, resp)) return;
    if (rc == 1) {
        ks_api_handle(r, resp);
        return;
    }
    if (rc == 0 && ks_disc_handle(r, resp)) return;
    ks_resp_generic(resp, 404, "NotFound", "the server could not find the requested resource");
}

static enum MHD_Result access_cb(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                 const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
    (void)version;
    struct ks_server *s = cls;
    struct ks_req *r = *con_cls;
    if (!r) {
        r = calloc(1, sizeof *r);
        if (!r) return MHD_NO;
        r->s = s;
        r->conn = conn;
        r->method = method;
        r->path = ks_strdup(url);
        if (!r->path) {
            free(r);
            return MHD_NO;
        }
        ks_buf_init(&r->body);
        *con_cls = r;
        return MHD_YES;
    }
    if (*upload_size) {
        if (r->body.len + *upload_size > MAX_BODY)
            r->body_too_large = 1;
        else
            ks_buf_add(&r->body, upload, *upload_size);
        *upload_size = 0;
        return MHD_YES;
    }
    struct ks_resp resp = {0};
    if (r->body_too_large)
        ks_resp_error(&resp, 413, "RequestEntityTooLarge", "Request entity too large: limit is 3145728");
    else if (r->body.oom)
        ks_resp_error(&resp, 500, "InternalError", "out of memory");
    else
        handle(r, &resp);
    if (strncmp(r->path, "/kubesim/", 9)) {
        char code[16];
        snprintf(code, sizeof code, "%d", resp.code ? resp.code : 200);
        pthread_mutex_lock(&s->stats_mu);
        ks_stat_inc(&s->stats.by_code, resp.drop ? "dropped" : code);
        pthread_mutex_unlock(&s->stats_mu);
    }
    if (resp.drop) {
        free(resp.body);
        if (resp.stream) MHD_destroy_response(resp.stream);
        return MHD_NO;
    }
    struct MHD_Response *mr = resp.stream;
    if (!mr) {
        mr = MHD_create_response_from_buffer(resp.len, resp.body ? resp.body : (void *)"",
                                             resp.body ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
        if (!mr) {
            free(resp.body);
            return MHD_NO;
        }
        MHD_add_response_header(mr, "Content-Type", resp.ctype ? resp.ctype : "application/json");
    } else {
        free(resp.body);
    }
    MHD_add_response_header(mr, "Cache-Control", "no-cache, private");
    MHD_add_response_header(mr, "Audit-Id", "00000000-0000-0000-0000-000000000000");
    if (resp.retry_after > 0) {
        char ra[16];
        snprintf(ra, sizeof ra, "%d", resp.retry_after);
        MHD_add_response_header(mr, "Retry-After", ra);
    }
    enum MHD_Result ret = MHD_queue_response(conn, (unsigned)(resp.code ? resp.code : 200), mr);
    MHD_destroy_response(mr);
    return ret;
}

static void completed_cb(void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode toe)
{
    (void)cls, (void)conn, (void)toe;
    req_free(*con_cls);
    *con_cls = NULL;
}

struct MHD_Daemon *ks_http_start(struct ks_server *s, int port, const char *cert_pem, const char *key_pem,
                                 int *bound_port)
{
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_USE_ERROR_LOG;
    struct MHD_Daemon *d;
    if (cert_pem) {
        flags |= MHD_USE_TLS;
        d = MHD_start_daemon(flags, (uint16_t)port, NULL, NULL, access_cb, s, MHD_OPTION_SOCK_ADDR, &addr,
                             MHD_OPTION_NOTIFY_COMPLETED, completed_cb, s, MHD_OPTION_CONNECTION_LIMIT, (unsigned)4000,
                             MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)0, MHD_OPTION_THREAD_STACK_SIZE,
                             (size_t)(512 * 1024), MHD_OPTION_HTTPS_MEM_CERT, cert_pem, MHD_OPTION_HTTPS_MEM_KEY,
                             key_pem, MHD_OPTION_END);
    } else {
        d = MHD_start_daemon(flags, (uint16_t)port, NULL, NULL, access_cb, s, MHD_OPTION_SOCK_ADDR, &addr,
                             MHD_OPTION_NOTIFY_COMPLETED, completed_cb, s, MHD_OPTION_CONNECTION_LIMIT, (unsigned)4000,
                             MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)0, MHD_OPTION_THREAD_STACK_SIZE,
                             (size_t)(512 * 1024), MHD_OPTION_END);
    }
    if (!d) return NULL;
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    *bound_port = info ? info->port : port;
    return d;
}
