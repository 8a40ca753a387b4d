/* kubeconfig loading by kubectl's rules: the files of KUBECONFIG merged (the first file to
 * define a cluster, user or context name wins; current-context comes from the first file that
 * sets it; missing files are skipped), an explicit --kubeconfig that must exist, ~/.kube/config
 * otherwise, and in-cluster service-account configuration when there is no kubeconfig at all.
 * Then the chosen context is resolved (kubeconfig_resolve.c). Messages name the file, position
 * and field, and never contain a token, password or key. */
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
#include "core/kubeconfig_loader.h"
#include "core/yaml.h"

#define MAX_FILE_SIZE (16u << 20)

static const char *const list_key[NLISTS] = {"clusters", "users", "contexts"};
static const char *const body_key[NLISTS] = {"cluster", "user", "context"};

/* ---- errors -------------------------------------------------------------------------------- */

int ms_kc_oom(struct loader *ld)
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

int ms_kc_fail(struct loader *ld, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = vfail(ld, "", fmt, ap);
    va_end(ap);
    return rc;
}

/* "file:line:col: " + message; the node may be NULL ("file: "). */
int ms_kc_fail_at(struct loader *ld, size_t fi, const struct ms_yaml_node *n, const char *fmt, ...)
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

char *ms_kc_dupn(const char *s, size_t n)
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
int ms_kc_read_file(const char *path, char **data, size_t *len)
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
        dir = ms_kc_dupn(path, (size_t)(slash - path));
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

/* ---- reading the tree ---------------------------------------------------------------------- */

int ms_kc_is_scalar(const struct ms_yaml_node *n)
{
    return n->type != MS_YAML_SEQ && n->type != MS_YAML_MAP;
}

const struct ms_yaml_node *ms_kc_map_get(const struct ms_yaml_node *map, const char *key)
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

/* ---- loading files ------------------------------------------------------------------------- */

static int collect(struct loader *ld, size_t fi, const struct ms_yaml_node *root, int k)
{
    const struct ms_yaml_node *seq = ms_kc_map_get(root, list_key[k]);
    if (seq == NULL || seq->type == MS_YAML_NULL)
        return 0;
    if (seq->type != MS_YAML_SEQ)
        return ms_kc_fail_at(ld, fi, seq, "%s: expected a list", list_key[k]);
    struct list *l = &ld->lists[k];
    size_t first = l->n; /* this file's entries start here */
    for (size_t i = 0; i < seq->count; i++) {
        const struct ms_yaml_node *item = seq->items[i];
        if (item->type != MS_YAML_MAP)
            return ms_kc_fail_at(ld, fi, item, "%s[%zu]: expected a mapping", list_key[k], i);
        const struct ms_yaml_node *name = ms_kc_map_get(item, "name");
        if (name == NULL || !ms_kc_is_scalar(name) || name->type == MS_YAML_NULL || name->len == 0)
            return ms_kc_fail_at(ld, fi, name ? name : item, "%s[%zu].name: %s", list_key[k], i,
                                 name ? "expected a non-empty string" : "missing");
        const struct ms_yaml_node *body = ms_kc_map_get(item, body_key[k]);
        if (body && body->type == MS_YAML_NULL)
            body = NULL;
        if (body && body->type != MS_YAML_MAP)
            return ms_kc_fail_at(ld, fi, body, "%s[%zu].%s: expected a mapping", list_key[k], i,
                                 body_key[k]);
        int seen = 0;
        for (size_t j = 0; j < l->n && !seen; j++) {
            if (strcmp(l->v[j].name, name->text) != 0)
                continue;
            if (j >= first)
                return ms_kc_fail_at(ld, fi, name,
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
                return ms_kc_oom(ld);
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
        e = ms_kc_read_file(path, &text, &len);
    }
    if (e == ENOENT && !must_exist)
        return 0;
    if (e == ENOMEM)
        return ms_kc_oom(ld);
    if (e != 0)
        return ms_kc_fail(ld, "%s: cannot read the kubeconfig: %s", path, strerror(e));
    if (ld->nfiles == ld->capfiles) {
        size_t cap = ld->capfiles ? ld->capfiles * 2 : 4;
        struct file *f = realloc(ld->files, cap * sizeof *f);
        if (f == NULL) {
            free(text);
            return ms_kc_oom(ld);
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
        return ms_kc_oom(ld);
    }
    ld->nfiles++;
    struct ms_yaml_opts yo = {.filename = path};
    int rc = ms_yaml_parse(text, len, &yo, &f->yaml);
    free(text);
    if (rc == MS_YAML_ENOMEM)
        return ms_kc_oom(ld);
    if (rc != 0)
        return ms_kc_fail(ld, "%s", f->yaml->error);
    const struct ms_yaml_node *root = f->yaml->ndocs ? f->yaml->docs[0] : NULL;
    if (root == NULL || root->type == MS_YAML_NULL)
        return 0; /* an empty file is an empty configuration */
    if (root->type != MS_YAML_MAP)
        return ms_kc_fail_at(ld, fi, root,
                             "expected a mapping (a kubeconfig with clusters, users, "
                             "contexts)");
    for (int k = 0; k < NLISTS; k++)
        if (collect(ld, fi, root, k))
            return ld->rc;
    const struct ms_yaml_node *cur = ms_kc_map_get(root, "current-context");
    if (cur && cur->type != MS_YAML_NULL && !ms_kc_is_scalar(cur))
        return ms_kc_fail_at(ld, fi, cur, "current-context: expected a string");
    if (ld->current == NULL && cur && cur->type != MS_YAML_NULL && cur->len > 0) {
        ld->current = cur;
        ld->current_file = fi;
    }
    return 0;
}

/* ---- what was loaded, for messages ---------------------------------------------------------- */

/* "(contexts: a, b)" or "(no contexts are defined)" into buf. */
const char *ms_kc_names_of(const struct loader *ld, int k, char *buf, size_t cap)
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
const char *ms_kc_sources_of(const struct loader *ld, char *buf, size_t cap)
{
    size_t len = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < ld->nfiles && len < cap; i++)
        len += (size_t)snprintf(buf + len, cap - len, "%s%s", i ? ":" : "", ld->files[i].path);
    return buf;
}

/* ---- loading -------------------------------------------------------------------------------- */

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
            return ms_kc_oom(ld);
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
            return ms_kc_oom(ld);
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
        if (!(o->kubeconfig && *o->kubeconfig) && ms_kc_in_cluster_possible(ld, host, port))
            return ms_kc_resolve_in_cluster(ld, host, port);
        if (ld->nfiles == 0)
            return ms_kc_fail(ld,
                              "no Kubernetes configuration: no kubeconfig file (%s) and not in a "
                              "cluster (no KUBERNETES_SERVICE_HOST/PORT or service-account token)",
                              where);
        return ms_kc_fail(ld, "%s: current-context is not set; choose a context %s",
                          ms_kc_sources_of(ld, where, sizeof where),
                          ms_kc_names_of(ld, CONTEXTS, names, sizeof names));
    }
    if (ms_kc_resolve_context(ld, name, explicit))
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
            ms_kc_oom(&ld);
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
