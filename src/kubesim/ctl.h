/* Controller internals shared by ctl.c (thread, timers, queue, events, deletion and garbage
 * collection), ctl_pods.c (the simulated kubelet and the Job controller) and ctl_apps.c
 * (Deployment, ReplicaSet, StatefulSet, DaemonSet). All of it runs under s->mu. */
#ifndef KS_CTL_H
#define KS_CTL_H

#include "kubesim.h"
#include "scenario.h"

/* Simulated kubelet state of one pod. Flat on purpose: the store frees it with free(). */
enum ks_pod_stage { PS_NEW, PS_CREATING, PS_PULL_ERR, PS_PULL_BACKOFF, PS_RUNNING, PS_READY, PS_CRASHED, PS_DONE };

struct ks_pod {
    enum ks_pod_stage stage;
    char rule[254]; /* the scenario workload name that drives it */
    int job;        /* runs to completion */
    int attempt;    /* jobs: 0-based attempt number */
    double next_at; /* simulated time of the next transition; < 0 = none */
    double started_at, ready_at, finished_at;
    int restarts, pull_failures, exit_code;
    char ip[20];
    char started_ts[32], finished_ts[32], last_started_ts[32], last_finished_ts[32];
    char missing[254];       /* the required Service that was unavailable at the last start */
    char crashing[254];      /* the image (crashing_images) whose container exits at start, or "" */
    char unschedulable[320]; /* why the scheduler cannot place it (a missing claim), or "" */
};

struct ks_timer {
    double due;
    uint64_t seq;
    char uid[40];
};

/* A queued reconcile, with the simulated time of what caused it: a write by a client is worked
 * out as of the moment it was made, however long the controller took to get to it. */
struct ks_work {
    char uid[40];
    double at;
};

struct ks_ctl {
    pthread_t thread;
    int started;
    struct ks_timer *heap;
    size_t nheap, capheap;
    uint64_t seq;
    struct ks_work *queue; /* FIFO of objects to reconcile */
    size_t qhead, qlen, qcap;
    struct ks_map queued;
    double now;         /* simulated time of the work being done */
    double held_since;  /* monotonic time the loop last took the lock */
    char (*events)[40]; /* uids of recorded Events, oldest first, to bound their number */
    size_t ehead, elen;
};

/* ctl.c */
void ks_ctl_enqueue(struct ks_server *s, const char *uid);
void ks_ctl_at(struct ks_server *s, const char *uid, double due);
double ks_ctl_now(struct ks_server *s);
void ks_ctl_wall_str(struct ks_server *s, char out[32]); /* the wall time of ks_ctl_now */
void ks_ctl_event(struct ks_server *s, struct ks_obj *about, const char *type, const char *reason,
                  const char *component, const char *fmt, ...) __attribute__((format(printf, 6, 7)));
struct ks_obj **ks_ctl_owned(struct ks_server *s, struct ks_rtype *rt, const char *ns, const char *owner_uid,
                             size_t *n);
cJSON *ks_ctl_owner_ref(struct ks_obj *owner);
/* A copy of o's content to change and hand to ks_ctl_write, with a null standing in for its
 * managedFields (often half the object, and most passes write nothing); NULL on OOM. */
cJSON *ks_ctl_copy(const struct ks_obj *o);
/* Writes a controller's change (takes nw), recording the manager for status writes. */
void ks_ctl_write(struct ks_server *s, struct ks_obj *o, cJSON *nw, const char *manager, int status_only);
struct ks_rtype *ks_ctl_type(struct ks_server *s, const char *group, const char *plural);
void ks_ctl_set_condition(cJSON *status, const char *type, const char *st, const char *reason, const char *msg,
                          const char *now, int touch_update);
const cJSON *ks_ctl_condition(const cJSON *status, const char *type);

/* ctl_pods.c */
void ks_pod_init(struct ks_server *s, struct ks_obj *pod);
void ks_pod_reconcile(struct ks_server *s, struct ks_obj *pod);
void ks_job_reconcile(struct ks_server *s, struct ks_obj *job);
int ks_pod_ready(const struct ks_obj *pod);
struct ks_obj *ks_pod_create(struct ks_server *s, struct ks_obj *owner, const cJSON *tpl, const char *name,
                             const cJSON *extra_labels);

/* ctl_net.c */
void ks_endpoints_reconcile(struct ks_server *s, struct ks_obj *svc);

/* ctl_apps.c */
void ks_deploy_reconcile(struct ks_server *s, struct ks_obj *d);
void ks_rs_reconcile(struct ks_server *s, struct ks_obj *rs);
void ks_sts_reconcile(struct ks_server *s, struct ks_obj *sts);
void ks_ds_reconcile(struct ks_server *s, struct ks_obj *ds);

#endif
