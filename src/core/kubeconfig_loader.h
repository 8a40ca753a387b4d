/* The state of one kubeconfig load and the helpers that its two halves share: kubeconfig.c
 * reads and merges the files, kubeconfig_resolve.c resolves the chosen context. Internal to
 * those two files. Every helper that fails records the first error in the loader (ld->rc,
 * ld->err) and returns ld->rc, so a caller can stop at `if (helper(...)) return ld->rc;`. */
#ifndef MS_KUBECONFIG_LOADER_H
#define MS_KUBECONFIG_LOADER_H

#include <stddef.h>

#include "core/kubeconfig.h"
#include "core/yaml.h"

enum { CLUSTERS, USERS, CONTEXTS, NLISTS };

struct file {
    char *path; /* owns: as given, for messages */
    char *dir;  /* owns: absolute directory, for the relative paths the file names */
    struct ms_yaml_stream *yaml; /* owns */
};

/* A named entry of a clusters/users/contexts list. Borrows nodes of its file's stream. */
struct entry {
    const char *name;
    const struct ms_yaml_node *item; /* the list item: {name:, cluster:} */
    const struct ms_yaml_node *body; /* its cluster/user/context mapping, or NULL */
    size_t file, index;
};

struct list {
    struct entry *v;
    size_t n, cap;
};

struct loader {
    const struct ms_kubeconfig_opts *o;
    struct file *files;
    size_t nfiles, capfiles;
    struct list lists[NLISTS];
    const struct ms_yaml_node *current; /* current-context, from the first file that sets it */
    size_t current_file;
    char *err; /* owns: the first error */
    int rc;
    struct ms_kubeconfig *c;
};

/* ---- kubeconfig.c ---- */

int ms_kc_oom(struct loader *ld);
int ms_kc_fail(struct loader *ld, const char *fmt, ...);
/* "file:line:col: " + message; the node may be NULL ("file: "). */
int ms_kc_fail_at(struct loader *ld, size_t fi, const struct ms_yaml_node *n, const char *fmt, ...);
char *ms_kc_dupn(const char *s, size_t n);
/* Reads a whole file. Returns 0, or an errno value. */
int ms_kc_read_file(const char *path, char **data, size_t *len);
int ms_kc_is_scalar(const struct ms_yaml_node *n);
const struct ms_yaml_node *ms_kc_map_get(const struct ms_yaml_node *map, const char *key);
/* "(contexts: a, b)" or "(no contexts are defined)" into buf. */
const char *ms_kc_names_of(const struct loader *ld, int k, char *buf, size_t cap);
/* The files read, joined by ':' like KUBECONFIG. */
const char *ms_kc_sources_of(const struct loader *ld, char *buf, size_t cap);

/* ---- kubeconfig_resolve.c ---- */

/* Resolves the context called name (explicit: named by --context, else current-context). */
int ms_kc_resolve_context(struct loader *ld, const char *name, int explicit);
/* The service account of a pod: KUBERNETES_SERVICE_HOST/PORT, token, ca.crt, namespace. */
int ms_kc_resolve_in_cluster(struct loader *ld, const char *host, const char *port);
/* As kubectl: KUBERNETES_SERVICE_HOST and _PORT are set and the token file exists. */
int ms_kc_in_cluster_possible(const struct loader *ld, const char *host, const char *port);

#endif
