/* moonship-kubesim: parses the command line, loads the scenario, starts the HTTP server and the
 * controllers, writes the kubeconfig, prints the address and serves until SIGTERM/SIGINT. */
#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include "http.h"
#include "scenario.h"
#include "tls.h"

static void usage(FILE *f)
{
    fputs("usage: moonship-kubesim [--listen 127.0.0.1:PORT] [--kubeconfig-out PATH] [--scenario FILE]\n"
          "                        [--time-scale F] [--seed N] [--tls] [--token T]\n"
          "                        [--kinds group/version/Kind/plural[:cluster],...]\n"
          "                        [--bookmark-interval SECONDS] [--history EVENTS] [--exit-with-parent] [-v]\n"
          "A Kubernetes API simulator for tests and demos; see docs/kubesim.md.\n",
          f);
}

/* Registers --kinds entries: stored as-is, without a controller. */
static int add_kinds(struct ks_server *s, const char *spec)
{
    char *copy = ks_strdup(spec), *save = NULL;
    if (!copy) return -1;
    for (char *item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
        char *parts[4] = {0};
        int n = 0;
        int cluster = 0;
        char *colon = strchr(item, ':');
        if (colon) {
            *colon = 0;
            cluster = !strcmp(colon + 1, "cluster");
        }
        char *save2 = NULL;
        for (char *p = strtok_r(item, "/", &save2); p && n < 4; p = strtok_r(NULL, "/", &save2)) parts[n++] = p;
        if (n != 4) {
            fprintf(stderr, "moonship-kubesim: --kinds entries are group/version/Kind/plural (got '%s')\n", item);
            free(copy);
            return -1;
        }
        if (!ks_rtype_add(s, strcmp(parts[0], "core") ? parts[0] : "", parts[1], parts[2], parts[3], !cluster)) {
            free(copy);
            return -1;
        }
    }
    free(copy);
    return 0;
}

static int create_namespace(struct ks_server *s, const char *name)
{
    struct ks_rtype *rt = ks_rtype_find(s, "", "v1", "namespaces");
    if (ks_obj_get(s, rt, "", name)) return 0;
    cJSON *o = cJSON_CreateObject();
    if (!o) return -1;
    cJSON_AddStringToObject(cJSON_AddObjectToObject(o, "metadata"), "name", name);
    ks_defaults_apply(s, rt, o, NULL);
    ks_fields_record_update(s, NULL, o, "kube-apiserver", NULL);
    return ks_obj_insert(s, rt, o) ? 0 : -1;
}

static int bootstrap(struct ks_server *s)
{
    static const char *system_ns[] = {"default", "kube-system", "kube-public", "kube-node-lease"};
    int rc = 0;
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < 4; i++) rc |= create_namespace(s, system_ns[i]);
    for (int i = 0; i < s->sc->nnamespaces; i++) rc |= create_namespace(s, s->sc->namespaces[i]);
    /* the node every simulated pod runs on, and the default/kubernetes Service */
    const char *node = "{\"metadata\":{\"name\":\"kubesim-node-1\",\"labels\":{\"kubernetes.io/hostname\":"
                       "\"kubesim-node-1\"}},\"spec\":{},\"status\":{\"conditions\":[{\"type\":\"Ready\",\"status\":"
                       "\"True\",\"reason\":\"KubeletReady\"}],\"nodeInfo\":{\"kubeletVersion\":\"v1.37.0-kubesim\"}}}";
    const char *svc = "{\"metadata\":{\"name\":\"kubernetes\",\"namespace\":\"default\",\"labels\":{\"component\":"
                      "\"apiserver\",\"provider\":\"kubernetes\"}},\"spec\":{\"clusterIP\":\"10.96.0.1\",\"ports\":"
                      "[{\"name\":\"https\",\"port\":443,\"targetPort\":6443}]}}";
    struct ks_rtype *nrt = ks_rtype_find(s, "", "v1", "nodes"), *srt = ks_rtype_find(s, "", "v1", "services");
    cJSON *n = cJSON_Parse(node), *v = cJSON_Parse(svc);
    if (n) {
        ks_fields_record_update(s, NULL, n, "kubelet", NULL);
        rc |= ks_obj_insert(s, nrt, n) ? 0 : -1;
    }
    if (v) {
        ks_defaults_apply(s, srt, v, NULL);
        ks_fields_record_update(s, NULL, v, "kube-apiserver", NULL);
        rc |= ks_obj_insert(s, srt, v) ? 0 : -1;
    }
    pthread_mutex_unlock(&s->mu);
    return rc || !n || !v ? -1 : 0;
}

static void stats_free(struct ks_stats *st)
{
    ks_map_free(&st->by_verb);
    ks_map_free(&st->by_resource);
    ks_map_free(&st->faults);
    ks_map_free(&st->by_code);
}

/* The command line's settings; -1 (time_scale, seed) is "not given: the scenario's". */
struct options {
    const char *listen, *kubeconfig, *scenario, *kinds, *token;
    double time_scale, bookmark;
    long long seed;
    int tls, verbose, history, exit_with_parent, port;
};

/* parse_options' answer when the server is to start; any other is main's exit status */
#define OPTIONS_OK -1

static int parse_options(int argc, char **argv, struct options *o)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        /* clang-format off */ /* one option a line */
#define NEED_ARG                                                                      \
    do {                                                                              \
        if (!v) {                                                                     \
            fprintf(stderr, "moonship-kubesim: %s needs a value\n", a);              \
            return 2;                                                                 \
        }                                                                             \
        i++;                                                                          \
    } while (0)
        if (!strcmp(a, "--listen")) { NEED_ARG; o->listen = v; }
        else if (!strcmp(a, "--kubeconfig-out")) { NEED_ARG; o->kubeconfig = v; }
        else if (!strcmp(a, "--scenario")) { NEED_ARG; o->scenario = v; }
        else if (!strcmp(a, "--time-scale")) { NEED_ARG; o->time_scale = atof(v); }
        else if (!strcmp(a, "--seed")) { NEED_ARG; o->seed = atoll(v); }
        else if (!strcmp(a, "--kinds")) { NEED_ARG; o->kinds = v; }
        else if (!strcmp(a, "--token")) { NEED_ARG; o->token = v; }
        else if (!strcmp(a, "--bookmark-interval")) { NEED_ARG; o->bookmark = atof(v); }
        else if (!strcmp(a, "--history")) { NEED_ARG; o->history = atoi(v); }
        else if (!strcmp(a, "--tls")) o->tls = 1;
        else if (!strcmp(a, "--exit-with-parent")) o->exit_with_parent = 1;
        else if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) o->verbose = 1;
        /* clang-format on */
        else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "moonship-kubesim: unknown option '%s'\n", a);
            usage(stderr);
            return 2;
        }
#undef NEED_ARG
    }
    const char *colon = strrchr(o->listen, ':');
    if (!colon || (strncmp(o->listen, "127.0.0.1:", 10) && strncmp(o->listen, "localhost:", 10))) {
        fprintf(stderr, "moonship-kubesim: --listen must be 127.0.0.1:PORT (loopback only)\n");
        return 2;
    }
    o->port = atoi(colon + 1);
    if (o->time_scale == 0 || o->time_scale < -1 || o->bookmark <= 0) {
        fprintf(stderr, "moonship-kubesim: --time-scale and --bookmark-interval must be positive\n");
        return 2;
    }
    return OPTIONS_OK;
}

/* The server with its scenario, clocks, random streams and store; 0, or main's exit status. */
static int server_new(const struct options *o, struct ks_server **out)
{
    struct ks_server *s = calloc(1, sizeof *s);
    if (!s) return 1;
    pthread_mutex_init(&s->mu, NULL);
    pthread_mutex_init(&s->stats_mu, NULL);
    pthread_cond_init(&s->ev_cond, NULL);
    pthread_cond_init(&s->ctl_cond, NULL);
    s->verbose = o->verbose;
    s->bookmark_every = o->bookmark;
    char *err = NULL;
    s->sc = ks_scenario_load(o->scenario, &s->faults, &err);
    if (!s->sc) {
        fprintf(stderr, "moonship-kubesim: %s\n", err ? err : "cannot load the scenario");
        free(err);
        return 2;
    }
    if (o->history > 0) s->faults.history = o->history;
    s->time_scale = o->time_scale > 0 ? o->time_scale : s->sc->time_scale > 0 ? s->sc->time_scale : 1.0;
    if (o->seed >= 0)
        s->seed = (uint64_t)o->seed;
    else if (s->sc->seed >= 0)
        s->seed = (uint64_t)s->sc->seed;
    else
        s->seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    ks_rng_seed(&s->rng, s->seed);
    ks_rng_seed(&s->frng, s->seed ^ 0x5eedfa17u);
    s->mono0 = ks_mono();
    s->wall0 = ks_wall();
    if (ks_store_init(s) < 0 || (o->kinds && add_kinds(s, o->kinds) < 0)) {
        fprintf(stderr, "moonship-kubesim: cannot initialise the store\n");
        return 1;
    }
    *out = s;
    return 0;
}

/* Signals are taken by sigwait (serve), so every thread must block them: this runs before any starts. */
static void block_signals(sigset_t *set, const struct options *o, pid_t parent)
{
    sigemptyset(set);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, set, NULL);
    signal(SIGPIPE, SIG_IGN);
    /* Started by `moonship deploy --sim`: a SIGKILLed moonship must not leave us running. The
     * kernel sends SIGTERM (taken by the sigwait) when the parent dies; a parent that died
     * before this line is seen by its pid changing. */
    if (o->exit_with_parent && (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0 || getppid() != parent)) kill(getpid(), SIGTERM);
}

/* --tls: the certificates the server presents and the kubeconfig trusts, and the bearer token. */
static int make_tls(struct ks_server *s, const struct options *o, struct ks_tls *certs)
{
    char *err = NULL;
    if (ks_tls_make(certs, &err) < 0) {
        fprintf(stderr, "moonship-kubesim: %s\n", err);
        free(err);
        return -1;
    }
    if (o->token)
        s->token = ks_strdup(o->token);
    else {
        char t[40];
        ks_rng_suffix(&s->rng, t, 32);
        s->token = ks_sprintf("kubesim-%s", t);
    }
    return 0;
}

/* The controllers and the HTTP server, then the kubeconfig and the address line callers wait for. */
static struct MHD_Daemon *start(struct ks_server *s, const struct options *o, const struct ks_tls *certs)
{
    if (bootstrap(s) < 0 || ks_ctl_start(s) < 0) {
        fprintf(stderr, "moonship-kubesim: cannot start the controllers\n");
        return NULL;
    }
    int bound = 0;
    struct MHD_Daemon *d = ks_http_start(s, o->port, certs->cert_pem, certs->key_pem, &bound);
    if (!d) {
        fprintf(stderr, "moonship-kubesim: cannot listen on %s: %s\n", o->listen, strerror(errno));
        return NULL;
    }
    char url[64], *err = NULL;
    snprintf(url, sizeof url, "%s://127.0.0.1:%d", o->tls ? "https" : "http", bound);
    if (o->kubeconfig && ks_kubeconfig_write(o->kubeconfig, url, o->tls ? certs : NULL, s->token, &err) < 0) {
        fprintf(stderr, "moonship-kubesim: %s\n", err);
        free(err);
        MHD_stop_daemon(d);
        return NULL;
    }
    printf("kubesim listening on %s\n", url);
    fflush(stdout);
    return d;
}

static void wait_for_signal(sigset_t *set, int verbose)
{
    int sig = 0;
    while (sigwait(set, &sig) != 0) {
    }
    if (verbose) fprintf(stderr, "moonship-kubesim: signal %d, stopping\n", sig);
}

/* Stops the watches, the controllers and the HTTP server, then frees what they used. */
static void stop(struct ks_server *s, struct MHD_Daemon *d, struct ks_tls *certs)
{
    pthread_mutex_lock(&s->mu);
    s->stopping = 1;
    pthread_cond_broadcast(&s->ev_cond);
    pthread_mutex_unlock(&s->mu);
    ks_ctl_stop(s);
    MHD_stop_daemon(d);
    ks_store_free(s);
    ks_scenario_free(s->sc);
    stats_free(&s->stats);
    free(s->faults.verbs);
    free(s->token);
    ks_tls_free(certs);
    pthread_cond_destroy(&s->ev_cond);
    pthread_cond_destroy(&s->ctl_cond);
    pthread_mutex_destroy(&s->mu);
    pthread_mutex_destroy(&s->stats_mu);
    free(s);
}

int main(int argc, char **argv)
{
    struct options o = {.listen = "127.0.0.1:0", .time_scale = -1, .bookmark = 60, .seed = -1};
    pid_t parent = getppid();
    int rc = parse_options(argc, argv, &o);
    if (rc != OPTIONS_OK) return rc;

    /* The controller's thread arena otherwise gives memory back after each burst and takes it
     * again page by page for the next (mprotect and page faults were an eighth of its time). */
    mallopt(M_TRIM_THRESHOLD, 64 << 20);
    mallopt(M_TOP_PAD, 4 << 20);
    struct ks_server *s = NULL;
    if ((rc = server_new(&o, &s)) != 0) return rc;
    sigset_t set;
    block_signals(&set, &o, parent);
    struct ks_tls certs = {0};
    if (o.tls && make_tls(s, &o, &certs) < 0) return 1;
    struct MHD_Daemon *d = start(s, &o, &certs);
    if (!d) return 1;
    wait_for_signal(&set, o.verbose);
    stop(s, d, &certs);
    return 0;
}
