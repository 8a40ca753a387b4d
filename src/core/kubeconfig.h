/* kubeconfig files read as kubectl reads them (KUBECONFIG merging, contexts, clusters, users,
 * paths relative to the file that names them) and in-cluster service-account configuration,
 * resolved into one flat struct for the client. Built on core/yaml.h; no Lua here. */
#ifndef MS_KUBECONFIG_H
#define MS_KUBECONFIG_H

#include <stddef.h>

/* Error codes (negative, as everywhere in src/core). */
#define MS_KUBECONFIG_EINVAL                                                                       \
    (-1) /* bad or missing configuration: the message names file and field */
#define MS_KUBECONFIG_ENOMEM (-2) /* out of memory */

#define MS_KUBECONFIG_SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"

enum ms_kube_auth_kind {
    MS_KUBE_AUTH_NONE,
    MS_KUBE_AUTH_TOKEN, /* token or tokenFile (a client certificate may come with it) */
    MS_KUBE_AUTH_BASIC, /* username / password */
    MS_KUBE_AUTH_CERT,  /* client certificate and key only */
    MS_KUBE_AUTH_EXEC,  /* an exec credential plugin (a client certificate may come with it) */
};

struct ms_kube_exec_env {
    char *name, *value;
};

/* A user's exec credential plugin, as written (command resolved like kubectl: relative to the
 * kubeconfig's directory when it contains a '/', else looked up on PATH when run). */
struct ms_kube_exec {
    char *api_version; /* client.authentication.k8s.io/v1 or /v1beta1 */
    char *command;
    char **args; /* nargs strings */
    size_t nargs;
    struct ms_kube_exec_env *env; /* nenv pairs, in order */
    size_t nenv;
    char *install_hint; /* or NULL */
    int provide_cluster_info;
    char *interactive_mode; /* Never, IfAvailable or Always */
};

/* The resolved configuration. Every string is owned and NUL-terminated; the binary ones
 * (ca, cert, key: PEM) also carry their length. Absent values are NULL. */
struct ms_kubeconfig {
    char *context, *cluster, *user; /* the names chosen (NULL in-cluster) */
    char *server;
    char *ca; /* PEM */
    size_t ca_len;
    int insecure;      /* insecure-skip-tls-verify */
    char *server_name; /* tls-server-name */
    char *proxy_url;
    char *namespace; /* --namespace, else the context's, else "default" */
    enum ms_kube_auth_kind auth;
    char *token;      /* token, or tokenFile's content trimmed */
    char *token_file; /* the absolute path when the token came from a file */
    char *username, *password;
    char *cert, *key; /* PEM */
    size_t cert_len, key_len;
    struct ms_kube_exec *exec; /* or NULL */
    char **sources;            /* the files read, in KUBECONFIG order */
    size_t nsources;
    int in_cluster; /* from the service account, not a file */
};

struct ms_kubeconfig_opts {
    const char *kubeconfig; /* explicit file (--kubeconfig): must exist; NULL: KUBECONFIG, then
                               ~/.kube/config, then in-cluster */
    const char *context;    /* --context; NULL or "": current-context */
    const char *namespace;  /* --namespace; NULL or "": the context's */
    const char *const *env; /* "NAME=value" strings, NULL-terminated, read instead of the process
                               environment (KUBECONFIG, HOME, KUBERNETES_SERVICE_HOST/PORT);
                               NULL: getenv */
    const char *sa_dir;     /* the service-account directory; NULL: MS_KUBECONFIG_SA_DIR */
    const char *text;       /* with kubeconfig set: that file's content, used instead of
                               reading it (kubeconfig then names it in messages and is the base
                               of relative paths); borrowed; for tests and fuzzing */
    size_t text_len;
};

/* Loads and resolves. Returns 0 with *out set, or a negative code with *err set to a message
 * ("/path/config:12:5: users[0].user.client-key-data: invalid base64") that never contains a
 * secret. The caller frees *out with ms_kubeconfig_free and *err with free. */
int ms_kubeconfig_load(const struct ms_kubeconfig_opts *opts, struct ms_kubeconfig **out,
                       char **err);

/* Accepts NULL. */
void ms_kubeconfig_free(struct ms_kubeconfig *c);

#endif
