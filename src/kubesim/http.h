/* The request/response shapes shared by the HTTP front (http.c), the resource handlers
 * (api.c), discovery and OpenAPI (discovery.c) and the streaming answers (watch.c). */
#ifndef KS_HTTP_H
#define KS_HTTP_H

#include <microhttpd.h>

#include "kubesim.h"

struct ks_req {
    struct ks_server *s;
    struct MHD_Connection *conn;
    const char *method; /* borrows from MHD */
    char *path;         /* owns: the URL path without the query */
    struct ks_buf body;
    int body_too_large;
    /* the resource route, when the path names one */
    struct ks_rtype *rt;
    char *ns, *name, *sub; /* owns; NULL when absent */
    const char *verb;      /* for stats and faults: get, list, watch, create, ... */
};

struct ks_resp {
    int code;
    char *body; /* owns */
    size_t len;
    const char *ctype;
    int retry_after;             /* > 0: a Retry-After header */
    struct MHD_Response *stream; /* a streaming answer (watch, log follow); owns */
    int drop;                    /* close the connection without an answer */
};

const char *ks_q(struct ks_req *r, const char *key);                              /* query parameter or NULL */
const char *ks_hdr(struct ks_req *r, const char *name);                           /* request header or NULL */
int ks_qbool(struct ks_req *r, const char *key);                                  /* "true"/"1" */
void ks_resp_json(struct ks_resp *resp, int code, cJSON *obj, const char *ctype); /* takes obj */
void ks_resp_status(struct ks_resp *resp, cJSON *status);                         /* takes */
void ks_resp_error(struct ks_resp *resp, int code, const char *reason, const char *msg);
/* An error about no object in particular (an unknown resource, a method or media type a path
 * does not serve): the apiserver's handlers send these with empty details. */
void ks_resp_generic(struct ks_resp *resp, int code, const char *reason, const char *msg);
void ks_resp_text(struct ks_resp *resp, int code, const char *text, const char *ctype);

/* http.c: starts the daemon on 127.0.0.1:port (0 = any); TLS when cert_pem is given. */
struct MHD_Daemon *ks_http_start(struct ks_server *s, int port, const char *cert_pem, const char *key_pem,
                                 int *bound_port);

/* api.c */
void ks_api_handle(struct ks_req *r, struct ks_resp *resp);
cJSON *ks_body_parse(struct ks_req *r, cJSON **status); /* JSON or YAML by Content-Type */

/* discovery.c */
int ks_disc_handle(struct ks_req *r, struct ks_resp *resp); /* 1 when it answered */
int ks_wants_table(struct ks_req *r);
cJSON *ks_table_of(struct ks_server *s, struct ks_rtype *rt, cJSON *items, const char *rv);

/* watch.c */
void ks_watch_start(struct ks_req *r, struct ks_resp *resp, struct ks_selector *labels, struct ks_selector *fields,
                    const char *ns);
void ks_log_start(struct ks_req *r, struct ks_resp *resp, struct ks_obj *pod, const char *container);

#endif
