/* kubeconfig loading by kubectl's rules: the files of KUBECONFIG merged (the first file to
 * define a cluster, user or context name wins; current-context comes from the first file that
 * sets it; missing files are skipped), an explicit --kubeconfig that must exist, ~/.kube/config
 * otherwise, and in-cluster service-account configuration when there is no kubeconfig at all.
 * Only the selected context, cluster and user are resolved and validated. Messages name the
 * file, position and field, and never contain a token, password or key. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/codec.h"
#include "core/kubeconfig.h"
#include "core/yaml.h"

#define MAX_FILE_SIZE (16u << 20)

enum { CLUSTERS, USERS, CONTEXTS, NLISTS };
static const char *const list_key[NLISTS] = {"clusters", "users", "contexts"};
static const char *const body_key[NLISTS] = {"cluster", "user", "context"};

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

/* ---- errors -------------------------------------------------------------------------------- */

static int oom(struct loader *ld)
{
    if (ld->rc == 0) {
        ld->rc = MS_KUBECONFIG_ENOMEM;
        free(ld->err);
        ld->err = strdup("out of memory");
    }
    return ld->rc;
}

static int vfail(struct loader *ld, const char *prefix, const char *fmt, va_list ap)
{
    if (ld->rc != 0)
        return ld->rc;
    ld->rc = MS_KUBECONFIG_EINVAL;
    char msg[1024];
    int n = snprintf(msg, sizeof msg, "%s", prefix);
    if (n < 0)
        n = 0;
    if ((size_t)n < sizeof msg)
        vsnprintf(msg + n, sizeof msg - (size_t)n, fmt, ap);
    ld->err = strdup(msg);
    if (ld->err == NULL)
        ld->rc = MS_KUBECONFIG_ENOMEM;
    return ld->rc;
}

static int fail(struct loader *ld, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = vfail(ld, "", fmt, ap);
    va_end(ap);
    return rc;
}

/* "file:line:col: " + message; the node may be NULL ("file: "). */
static int fail_at(struct loader *ld, size_t fi, const struct ms_yaml_node *n, const char *fmt,
                   ...)
{
    char prefix[600];
    if (n)
        snprintf(prefix, sizeof prefix, "%.500s:%d:%d: ", ld->files[fi].path, n->line, n->col);
    else
        snprintf(prefix, sizeof prefix, "%.500s: ", ld->files[fi].path);
    va_list ap;
    va_start(ap, fmt);
    int rc = vfail(ld, prefix, fmt, ap);
    va_end(ap);
    return rc;
}

/* ---- small helpers ------------------------------------------------------------------------- */

static char *dupn(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

static const char *env_get(const struct loader *ld, const char *name)
{
    if (ld->o->env == NULL)
        return getenv(name);
    size_t n = strlen(name);
    for (const char *const *e = ld->o->env; *e; e++)
        if (strncmp(*e, name, n) == 0 && (*e)[n] == '=')
            return *e + n + 1;
    return NULL;
}

/* Reads a whole file. Returns 0, or an errno value. */
static int read_file(const char *path, char **data, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (size_t)st.st_size > MAX_FILE_SIZE) {
        int e = S_ISDIR(st.st_mode) ? EISDIR : S_ISREG(st.st_mode) ? EFBIG : EINVAL;
        close(fd);
        return e;
    }
    size_t cap = (size_t)st.st_size + 1, n = 0;
    char *buf = malloc(cap);
    if (buf == NULL) {
        close(fd);
        return ENOMEM;
    }
    for (;;) {
        if (n + 1 >= cap) { /* the file grew meanwhile */
            if (cap > MAX_FILE_SIZE) {
                free(buf);
                close(fd);
                return EFBIG;
            }
            char *b = realloc(buf, cap * 2);
            if (b == NULL) {
                free(buf);
                close(fd);
                return ENOMEM;
            }
            buf = b;
            cap *= 2;
        }
        ssize_t r = read(fd, buf + n, cap - 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;
            free(buf);
            close(fd);
            return e;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    buf[n] = '\0';
    *data = buf;
    *len = n;
    return 0;
}

/* The absolute directory of path, or NULL when out of memory. */
static char *abs_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir;
    if (slash == NULL)
        dir = strdup(".");
    else if (slash == path)
        dir = strdup("/");
    else
        dir = dupn(path, (size_t)(slash - path));
    if (dir == NULL || dir[0] == '/')
        return dir;
    char cwd[4096];
    if (getcwd(cwd, sizeof cwd) == NULL)
        return dir; /* keep it relative: the best we can do */
    size_t len = strlen(cwd) + 1 + strlen(dir) + 1;
    char *full = malloc(len);
    if (full) {
        if (strcmp(dir, ".") == 0)
            snprintf(full, len, "%s", cwd);
        else
            snprintf(full, len, "%s/%s", cwd, dir);
    }
    free(dir);
    return full;
}

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

/* ---- reading the tree ---------------------------------------------------------------------- */

static int is_scalar(const struct ms_yaml_node *n)
{
    return n->type != MS_YAML_SEQ && n->type != MS_YAML_MAP;
}

static const struct ms_yaml_node *map_get(const struct ms_yaml_node *map, const char *key)
{
    if (map == NULL || map->type != MS_YAML_MAP)
        return NULL;
    size_t n = strlen(key);
    for (size_t i = 0; i < map->count; i++) {
        const struct ms_yaml_node *k = map->pairs[i].key;
        if (k->len == n && memcmp(k->text, key, n) == 0)
            return map->pairs[i].value;
    }
    return NULL;
}

/* A field of the mapping at `at` (path names it in messages): *out is its text, or NULL when
 * absent, null or empty. Fails when the value is not a scalar. */
static int get_str(struct loader *ld, size_t fi, const struct ms_yaml_node *map, const char *path,
                   const char *key, const char **out, const struct ms_yaml_node **node)
{
    const struct ms_yaml_node *v = map_get(map, key);
    *out = NULL;
    if (node)
        *node = v;
    if (v == NULL || v->type == MS_YAML_NULL)
        return 0;
    if (!is_scalar(v))
        return fail_at(ld, fi, v, "%s.%s: expected a string", path, key);
    if (v->len > 0)
        *out = v->text;
    return 0;
}

static int get_bool(struct loader *ld, size_t fi, const struct ms_yaml_node *map, const char *path,
                    const char *key, int *out)
{
    const struct ms_yaml_node *v = map_get(map, key);
    *out = 0;
    if (v == NULL || v->type == MS_YAML_NULL)
        return 0;
    if (v->type != MS_YAML_BOOL)
        return fail_at(ld, fi, v, "%s.%s: expected true or false", path, key);
    *out = v->v.boolean;
    return 0;
}

/* Sets *dst to a copy of src (NULL stays NULL). */
static int copy_str(struct loader *ld, char **dst, const char *src)
{
    if (src == NULL)
        return 0;
    *dst = strdup(src);
    return *dst ? 0 : oom(ld);
}

/* Reads a file named by a field: path relative to the kubeconfig's directory. */
static int read_field_file(struct loader *ld, size_t fi, const struct ms_yaml_node *node,
                           const char *path, const char *key, const char *name, char **data,
                           size_t *len, char **abs)
{
    char *full = resolve_path(ld->files[fi].dir, name);
    if (full == NULL)
        return oom(ld);
    int e = read_file(full, data, len);
    if (e != 0) {
        fail_at(ld, fi, node, "%s.%s: %s: %s", path, key, full, strerror(e));
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
        return oom(ld);
    if (rc < 0)
        return fail_at(ld, fi, node, "%s.%s: invalid base64", path, key);
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
        return fail_at(ld, fi, dnode, "%s: %s and %s are both set; set one", path, data_key,
                       file_key);
    if (data)
        return decode_field(ld, fi, dnode, path, data_key, data, out, outlen);
    if (file)
        return read_field_file(ld, fi, fnode, path, file_key, file, out, outlen, NULL);
    return 0;
}

/* ---- loading files ------------------------------------------------------------------------- */

static int collect(struct loader *ld, size_t fi, const struct ms_yaml_node *root, int k)
{
    const struct ms_yaml_node *seq = map_get(root, list_key[k]);
    if (seq == NULL || seq->type == MS_YAML_NULL)
        return 0;
    if (seq->type != MS_YAML_SEQ)
        return fail_at(ld, fi, seq, "%s: expected a list", list_key[k]);
    struct list *l = &ld->lists[k];
    size_t first = l->n; /* this file's entries start here */
    for (size_t i = 0; i < seq->count; i++) {
        const struct ms_yaml_node *item = seq->items[i];
        if (item->type != MS_YAML_MAP)
            return fail_at(ld, fi, item, "%s[%zu]: expected a mapping", list_key[k], i);
        const struct ms_yaml_node *name = map_get(item, "name");
        if (name == NULL || !is_scalar(name) || name->type == MS_YAML_NULL || name->len == 0)
            return fail_at(ld, fi, name ? name : item, "%s[%zu].name: %s", list_key[k], i,
                           name ? "expected a non-empty string" : "missing");
        const struct ms_yaml_node *body = map_get(item, body_key[k]);
        if (body && body->type == MS_YAML_NULL)
            body = NULL;
        if (body && body->type != MS_YAML_MAP)
            return fail_at(ld, fi, body, "%s[%zu].%s: expected a mapping", list_key[k], i,
                           body_key[k]);
        int seen = 0;
        for (size_t j = 0; j < l->n && !seen; j++) {
            if (strcmp(l->v[j].name, name->text) != 0)
                continue;
            if (j >= first)
                return fail_at(ld, fi, name,
                               "%s[%zu].name: duplicate name \"%s\" (also at line %d)",
                               list_key[k], i, name->text, l->v[j].item->line);
            seen = 1; /* an earlier file defined it: the first definition wins */
        }
        if (seen)
            continue;
        if (l->n == l->cap) {
            size_t cap = l->cap ? l->cap * 2 : 8;
            struct entry *v = realloc(l->v, cap * sizeof *v);
            if (v == NULL)
                return oom(ld);
            l->v = v;
            l->cap = cap;
        }
        l->v[l->n++] = (struct entry){name->text, item, body, fi, i};
    }
    return 0;
}

/* Loads one file. A missing file is skipped unless must_exist. */
static int load_file(struct loader *ld, const char *path, int must_exist)
{
    char *text;
    size_t len;
    int e;
    if (ld->o->text && path == ld->o->kubeconfig) { /* the in-memory content of --kubeconfig */
        len = ld->o->text_len;
        text = malloc(len + 1);
        e = text ? 0 : ENOMEM;
        if (text) {
            memcpy(text, ld->o->text, len);
            text[len] = 0;
        }
    } else {
        e = read_file(path, &text, &len);
    }
    if (e == ENOENT && !must_exist)
        return 0;
    if (e == ENOMEM)
        return oom(ld);
    if (e != 0)
        return fail(ld, "%s: cannot read the kubeconfig: %s", path, strerror(e));
    if (ld->nfiles == ld->capfiles) {
        size_t cap = ld->capfiles ? ld->capfiles * 2 : 4;
        struct file *f = realloc(ld->files, cap * sizeof *f);
        if (f == NULL) {
            free(text);
            return oom(ld);
        }
        ld->files = f;
        ld->capfiles = cap;
    }
    size_t fi = ld->nfiles;
    struct file *f = &ld->files[fi];
    memset(f, 0, sizeof *f);
    f->path = strdup(path);
    f->dir = abs_dir(path);
    if (f->path == NULL || f->dir == NULL) {
        free(f->path);
        free(f->dir);
        free(text);
        return oom(ld);
    }
    ld->nfiles++;
    struct ms_yaml_opts yo = {.filename = path};
    int rc = ms_yaml_parse(text, len, &yo, &f->yaml);
    free(text);
    if (rc == MS_YAML_ENOMEM)
        return oom(ld);
    if (rc != 0)
        return fail(ld, "%s", f->yaml->error);
    const struct ms_yaml_node *root = f->yaml->ndocs ? f->yaml->docs[0] : NULL;
    if (root == NULL || root->type == MS_YAML_NULL)
        return 0; /* an empty file is an empty configuration */
    if (root->type != MS_YAML_MAP)
        return fail_at(ld, fi, root, "expected a mapping (a kubeconfig with clusters, users, "
                                     "contexts)");
    for (int k = 0; k < NLISTS; k++)
        if (collect(ld, fi, root, k))
            return ld->rc;
    const struct ms_yaml_node *cur = map_get(root, "current-context");
    if (cur && cur->type != MS_YAML_NULL && !is_scalar(cur))
        return fail_at(ld, fi, cur, "current-context: expected a string");
    if (ld->current == NULL && cur && cur->type != MS_YAML_NULL && cur->len > 0) {
        ld->current = cur;
        ld->current_file = fi;
    }
    return 0;
}

/* ---- resolving ----------------------------------------------------------------------------- */

static const struct entry *find(const struct loader *ld, int k, const char *name)
{
    for (size_t i = 0; i < ld->lists[k].n; i++)
        if (strcmp(ld->lists[k].v[i].name, name) == 0)
            return &ld->lists[k].v[i];
    return NULL;
}

/* "(contexts: a, b)" or "(no contexts are defined)" into buf. */
static const char *names_of(const struct loader *ld, int k, char *buf, size_t cap)
{
    const struct list *l = &ld->lists[k];
    if (l->n == 0) {
        snprintf(buf, cap, "(no %s are defined)", list_key[k]);
        return buf;
    }
    size_t len = (size_t)snprintf(buf, cap, "(%s: ", list_key[k]);
    for (size_t i = 0; i < l->n && len < cap; i++)
        len += (size_t)snprintf(buf + len, cap - len, "%s%s", i ? ", " : "", l->v[i].name);
    if (len < cap)
        snprintf(buf + len, cap - len, ")");
    return buf;
}

/* The files read, joined by ':' like KUBECONFIG. */
static const char *sources_of(const struct loader *ld, char *buf, size_t cap)
{
    size_t len = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < ld->nfiles && len < cap; i++)
        len += (size_t)snprintf(buf + len, cap - len, "%s%s", i ? ":" : "", ld->files[i].path);
    return buf;
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
        return fail_at(ld, fi, body ? body : e->item, "%s.server: missing (cluster \"%s\")", path,
                       e->name);
    if (copy_str(ld, &c->server, server) || copy_str(ld, &c->server_name, name) ||
        copy_str(ld, &c->proxy_url, proxy))
        return ld->rc;
    if (pem_field(ld, fi, body, path, "certificate-authority", "certificate-authority-data",
                  &c->ca, &c->ca_len))
        return ld->rc;
    if (c->ca && c->ca_len == 0) {
        free(c->ca);
        c->ca = NULL;
    }
    if (c->ca && c->insecure) {
        ca_node = map_get(body, "insecure-skip-tls-verify");
        return fail_at(ld, fi, ca_node, "%s.insecure-skip-tls-verify: cannot be combined with a "
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
        return oom(ld);
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
        return fail_at(ld, fi, node, "%s.command: missing", path);
    if (api == NULL)
        return fail_at(ld, fi, node, "%s.apiVersion: missing", path);
    int beta = strcmp(api, "client.authentication.k8s.io/v1beta1") == 0;
    if (!beta && strcmp(api, "client.authentication.k8s.io/v1") != 0)
        return fail_at(ld, fi, api_node,
                       "%s.apiVersion: \"%s\" is not supported (use "
                       "client.authentication.k8s.io/v1 or client.authentication.k8s.io/v1beta1)",
                       path, api);
    if (mode == NULL && beta)
        mode = "IfAvailable"; /* kubectl's default for v1beta1; v1 requires it */
    if (mode == NULL)
        return fail_at(ld, fi, node, "%s.interactiveMode: missing (Never, IfAvailable or Always)",
                       path);
    if (strcmp(mode, "Never") != 0 && strcmp(mode, "IfAvailable") != 0 &&
        strcmp(mode, "Always") != 0)
        return fail_at(ld, fi, mode_node,
                       "%s.interactiveMode: \"%s\" is not one of Never, IfAvailable, Always", path,
                       mode);
    if (copy_str(ld, &x->api_version, api) || copy_str(ld, &x->install_hint, hint) ||
        copy_str(ld, &x->interactive_mode, mode))
        return ld->rc;
    /* Like kubectl: a command with a '/' is a path relative to the kubeconfig. */
    x->command = strchr(cmd, '/') ? resolve_path(ld->files[fi].dir, cmd) : strdup(cmd);
    if (x->command == NULL)
        return oom(ld);

    const struct ms_yaml_node *args = map_get(node, "args");
    if (args && args->type != MS_YAML_NULL) {
        if (args->type != MS_YAML_SEQ)
            return fail_at(ld, fi, args, "%s.args: expected a list of strings", path);
        x->args = calloc(args->count + 1, sizeof *x->args);
        if (x->args == NULL)
            return oom(ld);
        for (size_t i = 0; i < args->count; i++) {
            const struct ms_yaml_node *a = args->items[i];
            if (!is_scalar(a))
                return fail_at(ld, fi, a, "%s.args[%zu]: expected a string", path, i);
            if ((x->args[i] = dupn(a->text ? a->text : "", a->text ? a->len : 0)) == NULL)
                return oom(ld);
            x->nargs++;
        }
    }
    const struct ms_yaml_node *env = map_get(node, "env");
    if (env && env->type != MS_YAML_NULL) {
        if (env->type != MS_YAML_SEQ)
            return fail_at(ld, fi, env, "%s.env: expected a list of {name, value}", path);
        x->env = calloc(env->count + 1, sizeof *x->env);
        if (x->env == NULL)
            return oom(ld);
        for (size_t i = 0; i < env->count; i++) {
            const struct ms_yaml_node *v = env->items[i];
            char epath[200];
            snprintf(epath, sizeof epath, "%s.env[%zu]", path, i);
            if (v->type != MS_YAML_MAP)
                return fail_at(ld, fi, v, "%s: expected a mapping with name and value", epath);
            const char *name, *value;
            if (get_str(ld, fi, v, epath, "name", &name, NULL) ||
                get_str(ld, fi, v, epath, "value", &value, NULL))
                return ld->rc;
            if (name == NULL)
                return fail_at(ld, fi, v, "%s.name: missing", epath);
            struct ms_kube_exec_env *ev = &x->env[x->nenv];
            ev->name = strdup(name);
            ev->value = ev->name ? strdup(value ? value : "") : NULL;
            if (ev->value == NULL) {
                free(ev->name);
                ev->name = NULL;
                return oom(ld);
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
        return fail_at(ld, fi, user_node ? user_node : body,
                       "%s: more than one authentication method (token and username/password; "
                       "user \"%s\")",
                       path, e->name);
    const struct ms_yaml_node *provider = map_get(body, "auth-provider");
    if (provider && provider->type != MS_YAML_NULL) {
        const char *pname = NULL;
        get_str(ld, fi, provider, path, "name", &pname, NULL);
        return fail_at(ld, fi, provider,
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
        return fail_at(ld, fi, body, "%s: client-certificate without client-key or client-key-data",
                       path);
    if (c->key && !c->cert)
        return fail_at(ld, fi, body,
                       "%s: client-key without client-certificate or client-certificate-data",
                       path);
    const struct ms_yaml_node *exec = map_get(body, "exec");
    if (exec && exec->type != MS_YAML_NULL) {
        if (exec->type != MS_YAML_MAP)
            return fail_at(ld, fi, exec, "%s.exec: expected a mapping", path);
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

static int resolve_context(struct loader *ld, const char *name, int explicit)
{
    char names[512], srcs[1024];
    const struct entry *ctx = find(ld, CONTEXTS, name);
    if (ctx == NULL) {
        if (!explicit)
            return fail_at(ld, ld->current_file, ld->current,
                           "current-context: context \"%s\" not found %s", name,
                           names_of(ld, CONTEXTS, names, sizeof names));
        return fail(ld, "%s: context \"%s\" not found %s", sources_of(ld, srcs, sizeof srcs), name,
                    names_of(ld, CONTEXTS, names, sizeof names));
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
        return fail_at(ld, fi, ctx->body ? ctx->body : ctx->item,
                       "%s.cluster: missing (context \"%s\")", path, name);
    const struct entry *cl = find(ld, CLUSTERS, cluster);
    if (cl == NULL)
        return fail_at(ld, fi, cl_node, "%s.cluster: cluster \"%s\" not found %s", path, cluster,
                       names_of(ld, CLUSTERS, names, sizeof names));
    const struct entry *us = NULL;
    if (user) {
        us = find(ld, USERS, user);
        if (us == NULL)
            return fail_at(ld, fi, us_node, "%s.user: user \"%s\" not found %s", path, user,
                           names_of(ld, USERS, names, sizeof names));
    }
    const char *override = ld->o->namespace && *ld->o->namespace ? ld->o->namespace : NULL;
    if (copy_str(ld, &c->context, name) || copy_str(ld, &c->cluster, cluster) ||
        copy_str(ld, &c->user, user) ||
        copy_str(ld, &c->namespace, override ? override : ns ? ns : "default"))
        return ld->rc;
    if (resolve_cluster(ld, cl))
        return ld->rc;
    return us ? resolve_user(ld, us) : 0;
}

/* The service account of a pod: KUBERNETES_SERVICE_HOST/PORT, token, ca.crt, namespace. */
static int resolve_in_cluster(struct loader *ld, const char *host, const char *port)
{
    struct ms_kubeconfig *c = ld->c;
    const char *dir = ld->o->sa_dir ? ld->o->sa_dir : MS_KUBECONFIG_SA_DIR;
    size_t plen = strlen(dir) + 16;
    char *p = malloc(plen);
    if (p == NULL)
        return oom(ld);
    size_t len;
    snprintf(p, plen, "%s/token", dir);
    int e = read_file(p, &c->token, &len);
    if (e != 0) {
        fail(ld, "in-cluster configuration: %s: %s", p, strerror(e));
        free(p);
        return ld->rc;
    }
    trim(c->token, &len);
    c->token_file = p;
    char *path = malloc(plen);
    if (path == NULL)
        return oom(ld);
    snprintf(path, plen, "%s/ca.crt", dir);
    e = read_file(path, &c->ca, &c->ca_len);
    if (e != 0 && e != ENOENT) {
        fail(ld, "in-cluster configuration: %s: %s", path, strerror(e));
        free(path);
        return ld->rc;
    }
    snprintf(path, plen, "%s/namespace", dir);
    e = read_file(path, &c->namespace, &len);
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
        return oom(ld);
    if (strchr(host, ':'))
        snprintf(c->server, slen, "https://[%s]:%s", host, port);
    else
        snprintf(c->server, slen, "https://%s:%s", host, port);
    c->auth = MS_KUBE_AUTH_TOKEN;
    c->in_cluster = 1;
    return 0;
}

/* As kubectl: KUBERNETES_SERVICE_HOST and _PORT are set and the token file exists. */
static int in_cluster_possible(const struct loader *ld, const char *host, const char *port)
{
    if (!host || !*host || !port || !*port)
        return 0;
    char path[4200];
    snprintf(path, sizeof path, "%.4096s/token",
             ld->o->sa_dir ? ld->o->sa_dir : MS_KUBECONFIG_SA_DIR);
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* Reads the files kubectl would: --kubeconfig, else KUBECONFIG's list, else ~/.kube/config.
 * Writes what was looked at into where (for the "no configuration" message). */
static int load_files(struct loader *ld, char *where, size_t cap)
{
    const struct ms_kubeconfig_opts *o = ld->o;
    if (o->kubeconfig && *o->kubeconfig) {
        snprintf(where, cap, "%s", o->kubeconfig);
        return load_file(ld, o->kubeconfig, 1);
    }
    const char *list = env_get(ld, "KUBECONFIG");
    if (list && *list) {
        snprintf(where, cap, "KUBECONFIG=%s", list);
        char *copy = strdup(list);
        if (copy == NULL)
            return oom(ld);
        char *save = NULL;
        /* Each file once, in order; empty entries are skipped as kubectl does. */
        for (char *tok = strtok_r(copy, ":", &save); tok; tok = strtok_r(NULL, ":", &save)) {
            int dup = 0;
            for (size_t i = 0; i < ld->nfiles && !dup; i++)
                dup = strcmp(ld->files[i].path, tok) == 0;
            if (!dup && load_file(ld, tok, 0))
                break;
        }
        free(copy);
        return ld->rc;
    }
    const char *home = env_get(ld, "HOME");
    if (home && *home) {
        size_t len = strlen(home) + 16;
        char *p = malloc(len);
        if (p == NULL)
            return oom(ld);
        snprintf(p, len, "%s/.kube/config", home);
        snprintf(where, cap, "%s", p);
        load_file(ld, p, 0);
        free(p);
        return ld->rc;
    }
    snprintf(where, cap, "no KUBECONFIG and no HOME");
    return 0;
}

static int load(struct loader *ld)
{
    const struct ms_kubeconfig_opts *o = ld->o;
    char where[1024], names[512];
    if (load_files(ld, where, sizeof where))
        return ld->rc;
    int explicit = o->context && *o->context;
    const char *name = explicit ? o->context : ld->current ? ld->current->text : NULL;
    if (name == NULL) {
        const char *host = env_get(ld, "KUBERNETES_SERVICE_HOST");
        const char *port = env_get(ld, "KUBERNETES_SERVICE_PORT");
        if (!(o->kubeconfig && *o->kubeconfig) && in_cluster_possible(ld, host, port))
            return resolve_in_cluster(ld, host, port);
        if (ld->nfiles == 0)
            return fail(ld, "no Kubernetes configuration: no kubeconfig file (%s) and not in a "
                            "cluster (no KUBERNETES_SERVICE_HOST/PORT or service-account token)",
                        where);
        return fail(ld, "%s: current-context is not set; choose a context %s",
                    sources_of(ld, where, sizeof where),
                    names_of(ld, CONTEXTS, names, sizeof names));
    }
    if (resolve_context(ld, name, explicit))
        return ld->rc;
    return 0;
}

int ms_kubeconfig_load(const struct ms_kubeconfig_opts *opts, struct ms_kubeconfig **out,
                       char **err)
{
    static const struct ms_kubeconfig_opts none;
    struct loader ld;
    memset(&ld, 0, sizeof ld);
    ld.o = opts ? opts : &none;
    *out = NULL;
    *err = NULL;
    ld.c = calloc(1, sizeof *ld.c);
    if (ld.c == NULL) {
        *err = strdup("out of memory");
        return MS_KUBECONFIG_ENOMEM;
    }
    if (load(&ld) == 0) {
        struct ms_kubeconfig *c = ld.c;
        if (ld.nfiles && (c->sources = calloc(ld.nfiles, sizeof *c->sources)) == NULL)
            oom(&ld);
        for (size_t i = 0; i < ld.nfiles && ld.rc == 0; i++) {
            c->sources[i] = ld.files[i].path;
            ld.files[i].path = NULL;
            c->nsources++;
        }
    }
    for (size_t i = 0; i < ld.nfiles; i++) {
        free(ld.files[i].path);
        free(ld.files[i].dir);
        ms_yaml_stream_free(ld.files[i].yaml);
    }
    free(ld.files);
    for (int k = 0; k < NLISTS; k++)
        free(ld.lists[k].v);
    if (ld.rc != 0) {
        ms_kubeconfig_free(ld.c);
        *err = ld.err;
        return ld.rc;
    }
    *out = ld.c;
    return 0;
}

static void clear(char *s, size_t len)
{
    if (s) {
        volatile char *v = s;
        while (len--)
            *v++ = 0;
    }
}

void ms_kubeconfig_free(struct ms_kubeconfig *c)
{
    if (c == NULL)
        return;
    free(c->context);
    free(c->cluster);
    free(c->user);
    free(c->server);
    free(c->ca);
    free(c->server_name);
    free(c->proxy_url);
    free(c->namespace);
    /* Secrets are wiped before their memory goes back. */
    clear(c->token, c->token ? strlen(c->token) : 0);
    clear(c->password, c->password ? strlen(c->password) : 0);
    clear(c->key, c->key_len);
    free(c->token);
    free(c->token_file);
    free(c->username);
    free(c->password);
    free(c->cert);
    free(c->key);
    if (c->exec) {
        struct ms_kube_exec *x = c->exec;
        free(x->api_version);
        free(x->command);
        for (size_t i = 0; i < x->nargs; i++)
            free(x->args[i]);
        free(x->args);
        for (size_t i = 0; i < x->nenv; i++) {
            free(x->env[i].name);
            free(x->env[i].value);
        }
        free(x->env);
        free(x->install_hint);
        free(x->interactive_mode);
        free(x);
    }
    for (size_t i = 0; i < c->nsources; i++)
        free(c->sources[i]);
    free(c->sources);
    free(c);
}
