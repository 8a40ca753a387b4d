/* Resolving the chosen context of the loaded kubeconfig files (kubeconfig.c) into struct
 * ms_kubeconfig, as kubectl does: its cluster (server, TLS), its user (token, token file, basic
 * auth, client certificate and key) and the user's exec credential plugin, or else the pod's
 * service account (in-cluster). Only the selected context, cluster and user are validated.
 * Apart from the loading because it reads one entry's fields with their rules (paths relative to
 * the kubeconfig, base64 data, what kubectl refuses together), where the loading merges files. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/codec.h"
#include "core/kubeconfig.h"
#include "core/kubeconfig_loader.h"
#include "core/yaml.h"

/* ---- small helpers -------------------------------------------------------------------------- */

/* p made absolute against dir (kubectl resolves a kubeconfig's paths against its directory). */
static char *resolve_path(const char *dir, const char *p)
{
    if (p[0] == '/')
        return strdup(p);
    size_t len = strlen(dir) + 1 + strlen(p) + 1;
    char *full = malloc(len);
    if (full)
        snprintf(full, len, "%s/%s", dir, p);
    return full;
}

static void trim(char *s, size_t *len)
{
    size_t n = *len, start = 0;
    while (n > 0 && strchr(" \t\r\n", s[n - 1]))
        n--;
    while (start < n && strchr(" \t\r\n", s[start]))
        start++;
    memmove(s, s + start, n - start);
    s[n - start] = '\0';
    *len = n - start;
}

/* ---- reading the tree ----------------------------------------------------------------------- */

/* A field of the mapping at `at` (path names it in messages): *out is its text, or NULL when
 * absent, null or empty. Fails when the value is not a scalar. */
static int get_str(struct loader *ld, size_t fi, const struct ms_yaml_node *map, const char *path,
                   const char *key, const char **out, const struct ms_yaml_node **node)
{
    const struct ms_yaml_node *v = ms_kc_map_get(map, key);
    *out = NULL;
    if (node)
        *node = v;
    if (v == NULL || v->type == MS_YAML_NULL)
        return 0;
    if (!ms_kc_is_scalar(v))
        return ms_kc_fail_at(ld, fi, v, "%s.%s: expected a string", path, key);
    if (v->len > 0)
        *out = v->text;
    return 0;
}

static int get_bool(struct loader *ld, size_t fi, const struct ms_yaml_node *map, const char *path,
                    const char *key, int *out)
{
    const struct ms_yaml_node *v = ms_kc_map_get(map, key);
    *out = 0;
    if (v == NULL || v->type == MS_YAML_NULL)
        return 0;
    if (v->type != MS_YAML_BOOL)
        return ms_kc_fail_at(ld, fi, v, "%s.%s: expected true or false", path, key);
    *out = v->v.boolean;
    return 0;
}

/* Sets *dst to a copy of src (NULL stays NULL). */
static int copy_str(struct loader *ld, char **dst, const char *src)
{
    if (src == NULL)
        return 0;
    *dst = strdup(src);
    return *dst ? 0 : ms_kc_oom(ld);
}

/* Reads a file named by a field: path relative to the kubeconfig's directory. */
static int read_field_file(struct loader *ld, size_t fi, const struct ms_yaml_node *node,
                           const char *path, const char *key, const char *name, char **data,
                           size_t *len, char **abs)
{
    char *full = resolve_path(ld->files[fi].dir, name);
    if (full == NULL)
        return ms_kc_oom(ld);
    int e = ms_kc_read_file(full, data, len);
    if (e != 0) {
        ms_kc_fail_at(ld, fi, node, "%s.%s: %s: %s", path, key, full, strerror(e));
        free(full);
        return ld->rc;
    }
    if (abs)
        *abs = full;
    else
        free(full);
    return 0;
}

/* Decodes a *-data field. */
static int decode_field(struct loader *ld, size_t fi, const struct ms_yaml_node *node,
                        const char *path, const char *key, const char *text, char **data,
                        size_t *len)
{
    int rc = ms_base64_decode(text, strlen(text), data, len);
    if (rc == MS_CODEC_ENOMEM)
        return ms_kc_oom(ld);
    if (rc < 0)
        return ms_kc_fail_at(ld, fi, node, "%s.%s: invalid base64", path, key);
    return 0;
}

/* A PEM value from key-data (base64) or key (a file), which kubectl refuses together. */
static int pem_field(struct loader *ld, size_t fi, const struct ms_yaml_node *body,
                     const char *path, const char *file_key, const char *data_key, char **out,
                     size_t *outlen)
{
    const char *file, *data;
    const struct ms_yaml_node *fnode, *dnode;
    if (get_str(ld, fi, body, path, file_key, &file, &fnode) ||
        get_str(ld, fi, body, path, data_key, &data, &dnode))
        return ld->rc;
    if (file && data)
        return ms_kc_fail_at(ld, fi, dnode, "%s: %s and %s are both set; set one", path, data_key,
                             file_key);
    if (data)
        return decode_field(ld, fi, dnode, path, data_key, data, out, outlen);
    if (file)
        return read_field_file(ld, fi, fnode, path, file_key, file, out, outlen, NULL);
    return 0;
}

/* ---- resolving ------------------------------------------------------------------------------ */

static const struct entry *find(const struct loader *ld, int k, const char *name)
{
    for (size_t i = 0; i < ld->lists[k].n; i++)
        if (strcmp(ld->lists[k].v[i].name, name) == 0)
            return &ld->lists[k].v[i];
    return NULL;
}

static int resolve_cluster(struct loader *ld, const struct entry *e)
{
    struct ms_kubeconfig *c = ld->c;
    size_t fi = e->file;
    char path[128];
    snprintf(path, sizeof path, "clusters[%zu].cluster", e->index);
    const struct ms_yaml_node *body = e->body;
    const char *server, *name, *proxy;
    const struct ms_yaml_node *ca_node;
    if (get_str(ld, fi, body, path, "server", &server, NULL) ||
        get_str(ld, fi, body, path, "tls-server-name", &name, NULL) ||
        get_str(ld, fi, body, path, "proxy-url", &proxy, NULL) ||
        get_bool(ld, fi, body, path, "insecure-skip-tls-verify", &c->insecure))
        return ld->rc;
    if (server == NULL)
        return ms_kc_fail_at(ld, fi, body ? body : e->item, "%s.server: missing (cluster \"%s\")",
                             path, e->name);
    if (copy_str(ld, &c->server, server) || copy_str(ld, &c->server_name, name) ||
        copy_str(ld, &c->proxy_url, proxy))
        return ld->rc;
    if (pem_field(ld, fi, body, path, "certificate-authority", "certificate-authority-data", &c->ca,
                  &c->ca_len))
        return ld->rc;
    if (c->ca && c->ca_len == 0) {
        free(c->ca);
        c->ca = NULL;
    }
    if (c->ca && c->insecure) {
        ca_node = ms_kc_map_get(body, "insecure-skip-tls-verify");
        return ms_kc_fail_at(ld, fi, ca_node,
                             "%s.insecure-skip-tls-verify: cannot be combined with a "
                             "certificate authority (cluster \"%s\")",
                             path, e->name);
    }
    return 0;
}

static int resolve_exec(struct loader *ld, size_t fi, const struct ms_yaml_node *node,
                        const char *upath)
{
    struct ms_kube_exec *x = calloc(1, sizeof *x);
    if (x == NULL)
        return ms_kc_oom(ld);
    ld->c->exec = x;
    char path[160];
    snprintf(path, sizeof path, "%s.exec", upath);
    const char *api, *cmd, *hint, *mode;
    const struct ms_yaml_node *api_node, *mode_node;
    if (get_str(ld, fi, node, path, "apiVersion", &api, &api_node) ||
        get_str(ld, fi, node, path, "command", &cmd, NULL) ||
        get_str(ld, fi, node, path, "installHint", &hint, NULL) ||
        get_str(ld, fi, node, path, "interactiveMode", &mode, &mode_node) ||
        get_bool(ld, fi, node, path, "provideClusterInfo", &x->provide_cluster_info))
        return ld->rc;
    if (cmd == NULL)
        return ms_kc_fail_at(ld, fi, node, "%s.command: missing", path);
    if (api == NULL)
        return ms_kc_fail_at(ld, fi, node, "%s.apiVersion: missing", path);
    int beta = strcmp(api, "client.authentication.k8s.io/v1beta1") == 0;
    if (!beta && strcmp(api, "client.authentication.k8s.io/v1") != 0)
        return ms_kc_fail_at(
            ld, fi, api_node,
            "%s.apiVersion: \"%s\" is not supported (use "
            "client.authentication.k8s.io/v1 or client.authentication.k8s.io/v1beta1)",
            path, api);
    if (mode == NULL && beta)
        mode = "IfAvailable"; /* kubectl's default for v1beta1; v1 requires it */
    if (mode == NULL)
        return ms_kc_fail_at(ld, fi, node,
                             "%s.interactiveMode: missing (Never, IfAvailable or Always)", path);
    if (strcmp(mode, "Never") != 0 && strcmp(mode, "IfAvailable") != 0 &&
        strcmp(mode, "Always") != 0)
        return ms_kc_fail_at(ld, fi, mode_node,
                             "%s.interactiveMode: \"%s\" is not one of Never, IfAvailable, Always",
                             path, mode);
    if (copy_str(ld, &x->api_version, api) || copy_str(ld, &x->install_hint, hint) ||
        copy_str(ld, &x->interactive_mode, mode))
        return ld->rc;
    /* Like kubectl: a command with a '/' is a path relative to the kubeconfig. */
    x->command = strchr(cmd, '/') ? resolve_path(ld->files[fi].dir, cmd) : strdup(cmd);
    if (x->command == NULL)
        return ms_kc_oom(ld);

    const struct ms_yaml_node *args = ms_kc_map_get(node, "args");
    if (args && args->type != MS_YAML_NULL) {
        if (args->type != MS_YAML_SEQ)
            return ms_kc_fail_at(ld, fi, args, "%s.args: expected a list of strings", path);
        x->args = calloc(args->count + 1, sizeof *x->args);
        if (x->args == NULL)
            return ms_kc_oom(ld);
        for (size_t i = 0; i < args->count; i++) {
            const struct ms_yaml_node *a = args->items[i];
            if (!ms_kc_is_scalar(a))
                return ms_kc_fail_at(ld, fi, a, "%s.args[%zu]: expected a string", path, i);
            if ((x->args[i] = ms_kc_dupn(a->text ? a->text : "", a->text ? a->len : 0)) == NULL)
                return ms_kc_oom(ld);
            x->nargs++;
        }
    }
    const struct ms_yaml_node *env = ms_kc_map_get(node, "env");
    if (env && env->type != MS_YAML_NULL) {
        if (env->type != MS_YAML_SEQ)
            return ms_kc_fail_at(ld, fi, env, "%s.env: expected a list of {name, value}", path);
        x->env = calloc(env->count + 1, sizeof *x->env);
        if (x->env == NULL)
            return ms_kc_oom(ld);
        for (size_t i = 0; i < env->count; i++) {
            const struct ms_yaml_node *v = env->items[i];
            char epath[200];
            snprintf(epath, sizeof epath, "%s.env[%zu]", path, i);
            if (v->type != MS_YAML_MAP)
                return ms_kc_fail_at(ld, fi, v, "%s: expected a mapping with name and value",
                                     epath);
            const char *name, *value;
            if (get_str(ld, fi, v, epath, "name", &name, NULL) ||
                get_str(ld, fi, v, epath, "value", &value, NULL))
                return ld->rc;
            if (name == NULL)
                return ms_kc_fail_at(ld, fi, v, "%s.name: missing", epath);
            struct ms_kube_exec_env *ev = &x->env[x->nenv];
            ev->name = strdup(name);
            ev->value = ev->name ? strdup(value ? value : "") : NULL;
            if (ev->value == NULL) {
                free(ev->name);
                ev->name = NULL;
                return ms_kc_oom(ld);
            }
            x->nenv++;
        }
    }
    return 0;
}

static int resolve_user(struct loader *ld, const struct entry *e)
{
    struct ms_kubeconfig *c = ld->c;
    size_t fi = e->file;
    char path[128];
    snprintf(path, sizeof path, "users[%zu].user", e->index);
    const struct ms_yaml_node *body = e->body;
    const char *token, *token_file, *user, *pass;
    const struct ms_yaml_node *tf_node, *user_node;
    if (get_str(ld, fi, body, path, "token", &token, NULL) ||
        get_str(ld, fi, body, path, "tokenFile", &token_file, &tf_node) ||
        get_str(ld, fi, body, path, "username", &user, &user_node) ||
        get_str(ld, fi, body, path, "password", &pass, NULL))
        return ld->rc;
    if (token && (user || pass))
        return ms_kc_fail_at(
            ld, fi, user_node ? user_node : body,
            "%s: more than one authentication method (token and username/password; "
            "user \"%s\")",
            path, e->name);
    const struct ms_yaml_node *provider = ms_kc_map_get(body, "auth-provider");
    if (provider && provider->type != MS_YAML_NULL) {
        const char *pname = NULL;
        get_str(ld, fi, provider, path, "name", &pname, NULL);
        return ms_kc_fail_at(ld, fi, provider,
                             "%s.auth-provider: auth providers (%s) are not supported; use an exec "
                             "credential plugin",
                             path, pname ? pname : "unnamed");
    }
    if (copy_str(ld, &c->token, token) || copy_str(ld, &c->username, user) ||
        copy_str(ld, &c->password, pass))
        return ld->rc;
    if (token == NULL && token_file) {
        size_t len;
        if (read_field_file(ld, fi, tf_node, path, "tokenFile", token_file, &c->token, &len,
                            &c->token_file))
            return ld->rc;
        trim(c->token, &len);
    }
    if (pem_field(ld, fi, body, path, "client-certificate", "client-certificate-data", &c->cert,
                  &c->cert_len) ||
        pem_field(ld, fi, body, path, "client-key", "client-key-data", &c->key, &c->key_len))
        return ld->rc;
    if (c->cert && !c->key)
        return ms_kc_fail_at(ld, fi, body,
                             "%s: client-certificate without client-key or client-key-data", path);
    if (c->key && !c->cert)
        return ms_kc_fail_at(ld, fi, body,
                             "%s: client-key without client-certificate or client-certificate-data",
                             path);
    const struct ms_yaml_node *exec = ms_kc_map_get(body, "exec");
    if (exec && exec->type != MS_YAML_NULL) {
        if (exec->type != MS_YAML_MAP)
            return ms_kc_fail_at(ld, fi, exec, "%s.exec: expected a mapping", path);
        if (resolve_exec(ld, fi, exec, path))
            return ld->rc;
    }
    c->auth = c->exec               ? MS_KUBE_AUTH_EXEC
              : c->token            ? MS_KUBE_AUTH_TOKEN
              : c->username || pass ? MS_KUBE_AUTH_BASIC
              : c->cert             ? MS_KUBE_AUTH_CERT
                                    : MS_KUBE_AUTH_NONE;
    return 0;
}

int ms_kc_resolve_context(struct loader *ld, const char *name, int explicit)
{
    char names[512], srcs[1024];
    const struct entry *ctx = find(ld, CONTEXTS, name);
    if (ctx == NULL) {
        if (!explicit)
            return ms_kc_fail_at(ld, ld->current_file, ld->current,
                                 "current-context: context \"%s\" not found %s", name,
                                 ms_kc_names_of(ld, CONTEXTS, names, sizeof names));
        return ms_kc_fail(ld, "%s: context \"%s\" not found %s",
                          ms_kc_sources_of(ld, srcs, sizeof srcs), name,
                          ms_kc_names_of(ld, CONTEXTS, names, sizeof names));
    }
    struct ms_kubeconfig *c = ld->c;
    size_t fi = ctx->file;
    char path[128];
    snprintf(path, sizeof path, "contexts[%zu].context", ctx->index);
    const char *cluster, *user, *ns;
    const struct ms_yaml_node *cl_node, *us_node;
    if (get_str(ld, fi, ctx->body, path, "cluster", &cluster, &cl_node) ||
        get_str(ld, fi, ctx->body, path, "user", &user, &us_node) ||
        get_str(ld, fi, ctx->body, path, "namespace", &ns, NULL))
        return ld->rc;
    if (cluster == NULL)
        return ms_kc_fail_at(ld, fi, ctx->body ? ctx->body : ctx->item,
                             "%s.cluster: missing (context \"%s\")", path, name);
    const struct entry *cl = find(ld, CLUSTERS, cluster);
    if (cl == NULL)
        return ms_kc_fail_at(ld, fi, cl_node, "%s.cluster: cluster \"%s\" not found %s", path,
                             cluster, ms_kc_names_of(ld, CLUSTERS, names, sizeof names));
    const struct entry *us = NULL;
    if (user) {
        us = find(ld, USERS, user);
        if (us == NULL)
            return ms_kc_fail_at(ld, fi, us_node, "%s.user: user \"%s\" not found %s", path, user,
                                 ms_kc_names_of(ld, USERS, names, sizeof names));
    }
    const char *override = ld->o->namespace && *ld->o->namespace ? ld->o->namespace : NULL;
    if (copy_str(ld, &c->context, name) || copy_str(ld, &c->cluster, cluster) ||
        copy_str(ld, &c->user, user) ||
        copy_str(ld, &c->namespace,
                 override ? override
                 : ns     ? ns
                          : "default"))
        return ld->rc;
    if (resolve_cluster(ld, cl))
        return ld->rc;
    return us ? resolve_user(ld, us) : 0;
}

/* The service account of a pod: KUBERNETES_SERVICE_HOST/PORT, token, ca.crt, namespace. */
int ms_kc_resolve_in_cluster(struct loader *ld, const char *host, const char *port)
{
    struct ms_kubeconfig *c = ld->c;
    const char *dir = ld->o->sa_dir ? ld->o->sa_dir : MS_KUBECONFIG_SA_DIR;
    size_t plen = strlen(dir) + 16;
    char *p = malloc(plen);
    if (p == NULL)
        return ms_kc_oom(ld);
    size_t len;
    snprintf(p, plen, "%s/token", dir);
    int e = ms_kc_read_file(p, &c->token, &len);
    if (e != 0) {
        ms_kc_fail(ld, "in-cluster configuration: %s: %s", p, strerror(e));
        free(p);
        return ld->rc;
    }
    trim(c->token, &len);
    c->token_file = p;
    char *path = malloc(plen);
    if (path == NULL)
        return ms_kc_oom(ld);
    snprintf(path, plen, "%s/ca.crt", dir);
    e = ms_kc_read_file(path, &c->ca, &c->ca_len);
    if (e != 0 && e != ENOENT) {
        ms_kc_fail(ld, "in-cluster configuration: %s: %s", path, strerror(e));
        free(path);
        return ld->rc;
    }
    snprintf(path, plen, "%s/namespace", dir);
    e = ms_kc_read_file(path, &c->namespace, &len);
    free(path);
    if (e == 0)
        trim(c->namespace, &len);
    if (e == 0 && len == 0) {
        free(c->namespace);
        c->namespace = NULL;
    }
    if (ld->o->namespace && *ld->o->namespace) {
        free(c->namespace);
        c->namespace = NULL;
        if (copy_str(ld, &c->namespace, ld->o->namespace))
            return ld->rc;
    }
    if (c->namespace == NULL && copy_str(ld, &c->namespace, "default"))
        return ld->rc;
    size_t slen = strlen(host) + strlen(port) + 16;
    if ((c->server = malloc(slen)) == NULL)
        return ms_kc_oom(ld);
    if (strchr(host, ':'))
        snprintf(c->server, slen, "https://[%s]:%s", host, port);
    else
        snprintf(c->server, slen, "https://%s:%s", host, port);
    c->auth = MS_KUBE_AUTH_TOKEN;
    c->in_cluster = 1;
    return 0;
}

/* As kubectl: KUBERNETES_SERVICE_HOST and _PORT are set and the token file exists. */
int ms_kc_in_cluster_possible(const struct loader *ld, const char *host, const char *port)
{
    if (!host || !*host || !port || !*port)
        return 0;
    char path[4200];
    snprintf(path, sizeof path, "%.4096s/token",
             ld->o->sa_dir ? ld->o->sa_dir : MS_KUBECONFIG_SA_DIR);
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}
