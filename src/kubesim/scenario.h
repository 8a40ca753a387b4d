/* The scenario file: how simulated workloads behave (delays, jitter, job outcomes and logs,
 * dependencies, broken and crashing images) and which faults the API injects. See docs/kubesim.md. */
#ifndef KS_SCENARIO_H
#define KS_SCENARIO_H

#include "kubesim.h"

#define KS_MAX_LIST 32

/* Behaviour of one workload (matched by the name of its top owner); negative = unset. */
struct ks_rule {
    char name[254];
    double start_delay; /* Pending (ContainerCreating) -> Running, seconds */
    double ready_delay; /* Running -> Ready */
    double jitter;      /* each delay gets a uniform [0, jitter) addition */
    int never_ready;    /* the readiness probe never passes */
    double duration;    /* jobs: how long a pod runs */
    int exit_code;      /* jobs: exit code of a failing attempt (0 = succeed) */
    int fail_attempts;  /* jobs: the first N attempts fail */
    double crash_after; /* a pod whose requirement is missing exits after this long */
    int nrequires;
    char requires[KS_MAX_LIST][254]; /* Service names that must have a ready endpoint */
    int nlogs;
    char *logs[KS_MAX_LIST]; /* owns; log lines, spread over the run */
};

struct ks_scenario {
    struct ks_rule dflt;
    struct ks_rule *rules; /* owns */
    int nrules;
    char *broken[KS_MAX_LIST]; /* owns; image patterns, '*' wildcard */
    int nbroken;
    char *crashing[KS_MAX_LIST]; /* owns; image patterns whose container exits at start */
    int ncrashing;
    char *namespaces[KS_MAX_LIST]; /* owns; created at start-up */
    int nnamespaces;
    /* users authenticated by a bearer token (in --tls mode) and bound to no role */
    char *unbound_users[KS_MAX_LIST], *unbound_tokens[KS_MAX_LIST]; /* owns */
    int nunbound;
    double seed, time_scale; /* < 0 when absent */
};

/* Loads a scenario (path NULL = built-in defaults) and its faults into s->faults. */
struct ks_scenario *ks_scenario_load(const char *path, struct ks_faults *faults, char **err);
void ks_scenario_free(struct ks_scenario *sc);
/* The effective rule for a workload name: the defaults overlaid with its own entry. */
void ks_scenario_rule(const struct ks_scenario *sc, const char *name, struct ks_rule *out);
int ks_scenario_image_broken(const struct ks_scenario *sc, const char *image);
/* Whether a container of image exits soon after it starts, every time (crashing_images). */
int ks_scenario_image_crashes(const struct ks_scenario *sc, const char *image);
/* The unbound user whose bearer token this is, or NULL. */
const char *ks_scenario_unbound_user(const struct ks_scenario *sc, const char *token);

#endif
