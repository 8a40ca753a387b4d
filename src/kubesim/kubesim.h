/* kubesim: the shared picture of the simulator. One struct ks_server holds everything (no
 * globals); one mutex guards the store, the watch history and the controllers, so controller
 * transitions and API writes are totally ordered by resourceVersion. */
#ifndef KS_KUBESIM_H
#define KS_KUBESIM_H

#include <pthread.h>
#include <stdint.h>
#include <cjson/cJSON.h>

#include "util.h"

struct ks_scenario;
struct ks_ctl;
struct ks_pod;

extern const char KS_LABELS[];   /* "metadata.labels" */
extern const char KS_SELECTOR[]; /* "spec.selector" */

/* A resource type: built in, from a CRD, or from --kinds. */
struct ks_rtype {
    char *group, *version, *kind, *plural, *singular, *list_kind; /* owns */
    char *short_names;                                            /* owns; comma-separated, may be "" */
    char *categories; /* owns; comma-separated ("all": listed by "kubectl get all"), may be "" */
    int namespaced;
    int status_sub; /* has a status subresource: main writes keep status */
    int scale_sub;
    int generation;       /* its registry strategy keeps metadata.generation (workloads, custom kinds) */
    int deletecollection; /* the collection can be deleted (not namespaces) */
    int builtin;
    int order;          /* registration rank: dependents are collected type by type in this order */
    struct ks_map objs; /* "ns/name" -> struct ks_obj* (owned by the store) */
    /* Indexes, so a controller's lookup costs what it finds rather than the store's size:
     * namespace -> its objects; and "ns\x1fkey\x1fvalue" -> the objects whose map at
     * label_path has that member: pods by label (what a Service selects), Services by selector
     * (which Services a pod's change concerns). Values are struct ks_objset* owned by the map. */
    struct ks_map by_ns, by_label;
    const char *label_path; /* KS_LABELS, KS_SELECTOR or NULL (no by_label) */
    struct ks_rtype *next;
};

struct ks_obj {
    struct ks_rtype *rt;
    char *ns, *name, *uid; /* owns; ns is "" for cluster-scoped objects */
    cJSON *json;           /* owns: the full object as served */
    uint64_t rv;
    struct ks_pod *pod; /* owns: simulated kubelet state of a pod, NULL otherwise */
    double progress_at; /* workloads: simulated time of the last progress (deadline clock);
                         * a terminating Namespace: when the namespace controller cleans it */
    double started_at;  /* jobs: simulated time the controller started it (0 = not yet) */
    int gone;           /* removed from the store but still referenced by the caller */
    char *text;         /* owns: json serialized as of rv (reads copy it instead of printing) */
    size_t text_len;
    char **owners; /* owns: the uids of its ownerReferences, as filed in s->owned */
    int nowners;
    char **lkeys; /* owns: its rt->by_label keys (types with a label_path) */
    int nlkeys;
};

/* An index bucket: an unordered set of objects (lookups copy and sort what they return). */
struct ks_objset {
    struct ks_obj **v;
    size_t n, cap;
};

enum ks_evtype { KS_ADDED, KS_MODIFIED, KS_DELETED };

/* One entry of the bounded watch history. */
struct ks_event {
    uint64_t rv;
    enum ks_evtype type;
    struct ks_rtype *rt;
    char *ns;    /* owns */
    cJSON *obj;  /* owns: the object without managedFields, for selectors and tables; NULL
                  * until a watch needs it (most filter nothing), then parsed from line */
    cJSON *prev; /* owns: MODIFIED only, the state before, so a filtered watch sees an object
                  * enter (ADDED) or leave (DELETED) its selection */
    char *line;  /* owns: {"type":..,"object":..}\n as sent */
    size_t line_len;
};

struct ks_faults {
    double error_rate; /* fraction of API requests answered with an error code */
    int error_codes[8];
    int n_error_codes;
    int retry_after;  /* seconds, sent with 429 and 503 */
    double drop_rate; /* fraction of requests whose connection is closed unanswered */
    double latency;   /* seconds added to each API request (real seconds) */
    double latency_jitter;
    double watch_close_every; /* real seconds; 0 = never */
    double expire_every;      /* real seconds: an open watch gets ERROR 410 and ends; 0 = never */
    int history;              /* events kept for watch resume (older resourceVersions get 410) */
    char *verbs;              /* owns; comma-separated verbs faults apply to, NULL = all */
};

struct ks_stats {
    uint64_t requests_total;
    struct ks_map by_verb;     /* verb -> (uintptr_t) count */
    struct ks_map by_resource; /* plural[.group] -> count */
    struct ks_map faults;      /* kind -> count */
    struct ks_map by_code;     /* HTTP status ("200", "404", "dropped") -> count */
    int watches_open;
    uint64_t watches_total;
    uint64_t timers_fired; /* controller timers run */
    double timer_late_max; /* real seconds the most overdue one ran after its due time */
};

struct ks_server {
    pthread_mutex_t mu;
    /* Guards stats and frng only, so a request's bookkeeping never waits behind the controllers'
     * pass holding mu (an apply's answer used to wait for the ReplicaSet and pods it caused).
     * Taken alone or inside mu, never the other way round. */
    pthread_mutex_t stats_mu;
    pthread_cond_t ev_cond; /* broadcast on every watch event, log line and shutdown */
    pthread_cond_t ctl_cond;

    uint64_t rv;            /* last resourceVersion handed out */
    struct ks_rtype *types; /* owns the list */
    struct ks_map uids;     /* uid -> struct ks_obj* */
    struct ks_map owned;    /* owner uid -> struct ks_objset* of the objects that reference it */
    int index_lost;         /* an index update ran out of memory: lookups scan the store instead */
    size_t nobjects;

    struct ks_event *ring; /* watch history, ring_cap entries */
    size_t ring_cap, ring_start, ring_len;
    uint64_t evicted_rv; /* newest rv that fell out of the history */

    struct ks_rng rng;  /* controllers: names, uids, jitter */
    struct ks_rng frng; /* faults: kept apart so faults do not shift controller choices */
    uint64_t seed;

    double time_scale; /* real seconds per simulated second */
    double mono0, wall0;
    double bookmark_every; /* real seconds between watch bookmarks */

    struct ks_scenario *sc; /* owns */
    struct ks_faults faults;
    struct ks_stats stats;
    struct ks_ctl *ctl; /* owns */

    char *token; /* owns; bearer token required in --tls mode, else NULL */
    int stopping;
    int verbose;
};

/* ---- store.c ---- */
int ks_store_init(struct ks_server *s);
void ks_store_free(struct ks_server *s);
struct ks_rtype *ks_rtype_add(struct ks_server *s, const char *group, const char *version, const char *kind,
                              const char *plural, int namespaced);
struct ks_rtype *ks_rtype_find(struct ks_server *s, const char *group, const char *version, const char *plural);
struct ks_rtype *ks_rtype_by_kind(struct ks_server *s, const char *api_version, const char *kind);
char *ks_rtype_gv(const struct ks_rtype *rt);                                   /* "apps/v1" or "v1"; caller frees */
const char *ks_rtype_qualified(const struct ks_rtype *rt, char *buf, size_t n); /* deployments.apps */
struct ks_obj *ks_obj_get(struct ks_server *s, struct ks_rtype *rt, const char *ns, const char *name);
struct ks_obj *ks_obj_by_uid(struct ks_server *s, const char *uid);
/* Gives a new object what the store sets on creation, resourceVersion aside: uid (unless
 * defaulting chose it), creationTimestamp, generation (for the kinds that keep one), apiVersion
 * and kind. What a dry-run create answers with. */
void ks_obj_stamp(struct ks_server *s, struct ks_rtype *rt, cJSON *json);
/* Stores a new object (takes json), stamped as above, with a resourceVersion; records ADDED.
 * NULL on OOM. */
struct ks_obj *ks_obj_insert(struct ks_server *s, struct ks_rtype *rt, cJSON *json);
/* Replaces the object's content (takes json); bumps generation when anything outside metadata
 * and status changed; records MODIFIED. Returns 0, or 1 when nothing changed (no new rv). */
int ks_obj_update(struct ks_server *s, struct ks_obj *o, cJSON *json);
/* The same for the server's own writes that no client could make (a deletion's mark, a pod's
 * binding): deletionTimestamp, deletionGracePeriodSeconds and generation are taken from json,
 * where ks_obj_update keeps the stored ones and bumps the generation on a spec change. */
int ks_obj_update_as_server(struct ks_server *s, struct ks_obj *o, cJSON *json);
/* Removes the object now; records DELETED; frees it. */
void ks_obj_remove(struct ks_server *s, struct ks_obj *o);
/* Sorted snapshot of the objects of a type (ns NULL = all namespaces); caller frees array. */
struct ks_obj **ks_obj_list(struct ks_server *s, struct ks_rtype *rt, const char *ns, size_t *n);
/* The objects with an ownerReference to uid, by type (registration order), namespace and name;
 * caller frees the array; NULL on OOM. */
struct ks_obj **ks_obj_children(struct ks_server *s, const char *uid, size_t *n);
/* The objects of a type in ns whose labels include every member of match (a plain map, as a
 * Service selector), sorted by name; caller frees the array; NULL on OOM. */
struct ks_obj **ks_obj_select(struct ks_server *s, struct ks_rtype *rt, const char *ns, const cJSON *match, size_t *n);
/* The objects of a type indexed by selector (Services) in ns whose selector, a non-empty plain
 * map, selects labels or was (the labels before a change), sorted by name; caller frees the
 * array; NULL on OOM. */
struct ks_obj **ks_obj_selecting(struct ks_server *s, struct ks_rtype *rt, const char *ns, const cJSON *labels,
                                 const cJSON *was, size_t *n);
void ks_obj_set_rv(struct ks_obj *o);
/* The object's JSON text (cached until its next write); NULL on OOM. */
const char *ks_obj_text(struct ks_obj *o, size_t *len);
double ks_sim_now(struct ks_server *s);
void ks_now_str(struct ks_server *s, char out[32]);
void ks_stat_inc(struct ks_map *m, const char *key);

/* ---- select.c: label and field selectors ---- */
struct ks_selector;
struct ks_selector *ks_sel_parse_labels(const char *text, char **err);
/* Field selectors by the fields kube-apiserver selects the kind by (rt NULL: any path); *err
 * is the apiserver's message for an unknown field or a bad selector. */
struct ks_selector *ks_sel_parse_fields(const char *text, const struct ks_rtype *rt, char **err);
int ks_sel_match(const struct ks_selector *sel, const cJSON *obj);
void ks_sel_free(struct ks_selector *sel);
/* LabelSelector objects ({matchLabels, matchExpressions}) and plain maps (Service selectors). */
int ks_labelsel_match(const cJSON *selector, const cJSON *labels);
int ks_map_subset(const cJSON *want, const cJSON *labels);

/* ---- fieldset.c: FieldsV1 sets (the internals that apply.c uses are in fieldset.h) ---- */
/* Fieldset (FieldsV1) of an object's content: what an applier or creator owns. */
cJSON *ks_fields_of(const cJSON *obj, int skip_status);
/* The key of an element of an associative list as a FieldsV1 path element
 * ("k:{\"name\":\"web\"}") in buf, or NULL when the list named field is atomic. */
const char *ks_list_key(const char *field, const cJSON *elem, char *buf, size_t n);

/* ---- apply.c: server-side apply and managedFields ---- */
/* Computes the applied result. live may be NULL (create). Returns the new object (caller
 * owns) or NULL with *status set to a Status error body and *code to its HTTP code. */
cJSON *ks_apply(struct ks_server *s, const cJSON *live, const cJSON *applied, const char *manager, int force, int *code,
                cJSON **status);
/* Records an Update-operation manager for the fields changed between old (may be NULL) and
 * nw; subresource may be NULL. Modifies nw's metadata.managedFields. */
void ks_fields_record_update(struct ks_server *s, const cJSON *old, cJSON *nw, const char *manager,
                             const char *subresource);

/* ---- patch.c: the other patch types ---- */
cJSON *ks_merge_patch(const cJSON *target, const cJSON *patch);          /* RFC 7386 */
cJSON *ks_strategic_patch(const cJSON *target, const cJSON *patch);      /* approximation */
cJSON *ks_json_patch(const cJSON *target, const cJSON *ops, char **err); /* RFC 6902 */

/* ---- defaults.c: apiserver defaulting and validation ---- */
void ks_defaults_apply(struct ks_server *s, struct ks_rtype *rt, cJSON *obj, const cJSON *old);
/* A pod's QoS class by its containers' requests and limits: BestEffort, Burstable, Guaranteed. */
const char *ks_qos_class(const cJSON *pod_spec);
/* 0 when valid; else a Status body (422 Invalid) in *status. */
int ks_validate(struct ks_server *s, struct ks_rtype *rt, const cJSON *obj, const cJSON *old, cJSON **status);

/* ---- schema.c: the types of known fields, checked as the apiserver decodes a body ---- */
/* NULL when every field kubesim knows has its type; else a Status (400 BadRequest) naming the
 * first one that does not, worded for a server-side apply patch (apply) or a create/update. */
cJSON *ks_schema_check(const struct ks_rtype *rt, const cJSON *obj, int apply);

/* ---- status.c: Status bodies ---- */
cJSON *ks_status_new(int code, const char *reason, const char *message);
cJSON *ks_status_obj(int code, const char *reason, const struct ks_rtype *rt, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* ---- ctl.c: controllers ---- */
int ks_ctl_start(struct ks_server *s);
void ks_ctl_stop(struct ks_server *s);
/* Under lock; old is the content before a KS_MODIFIED change (NULL otherwise or unknown). */
void ks_ctl_changed(struct ks_server *s, struct ks_obj *o, enum ks_evtype t, const cJSON *old);
/* Delete with propagation ("Background", "Foreground", "Orphan"); under lock. Returns the
 * object when it stays (deletionTimestamp set: finalizers, a terminating Namespace), else NULL
 * after removal; *marked (may be NULL) gets a copy of the object as its deletion marked it on
 * its way out (Foreground, Orphan, a pod's grace period), else NULL. */
struct ks_obj *ks_ctl_delete(struct ks_server *s, struct ks_obj *o, const char *propagation, cJSON **marked);
/* Pod logs: appends the lines visible now to out; *done set when no more will come. */
int ks_ctl_pod_log(struct ks_server *s, struct ks_obj *pod, const char *container, int previous, size_t *cursor,
                   struct ks_buf *out, int *done, char **err);

#endif
