/* src/core/kubeconfig.c: table-driven cases, each a set of kubeconfig files and options, and
 * either the resolved configuration (rendered compactly) or the exact error message. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test.h"
#include "core/kubeconfig.h"

static char tmpdir[64];
static char fixtures[512];

/* Replaces $T (the temporary directory) and $F (tests/fixtures/kubeconfig) in s. */
static const char *expand(const char *s, char *buf, size_t cap)
{
    size_t n = 0;
    for (; *s && n + 1 < cap; s++) {
        if (s[0] == '$' && (s[1] == 'T' || s[1] == 'F')) {
            n += (size_t)snprintf(buf + n, cap - n, "%s", s[1] == 'T' ? tmpdir : fixtures);
            s++;
        } else {
            buf[n++] = *s;
        }
    }
    buf[n < cap ? n : cap - 1] = '\0';
    return buf;
}

static void write_file(const char *name, const char *text)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "w");
    if (!f) {
        perror(path);
        exit(2);
    }
    fputs(text, f);
    fclose(f);
}

static const char *auth_name(enum ms_kube_auth_kind k)
{
    static const char *const names[] = {"none", "token", "basic", "cert", "exec"};
    return names[k];
}

/* "ctx/cluster/user server ns=.. auth=.. [fields]" */
static const char *render(const struct ms_kubeconfig *c)
{
    static char buf[2048];
    size_t n =
        (size_t)snprintf(buf, sizeof buf, "%s/%s/%s %s ns=%s auth=%s",
                         c->context ? c->context : "-", c->cluster ? c->cluster : "-",
                         c->user ? c->user : "-", c->server, c->namespace, auth_name(c->auth));
#define ADD(...) (n += (size_t)snprintf(buf + n, n < sizeof buf ? sizeof buf - n : 0, __VA_ARGS__))
    if (c->ca)
        ADD(" ca=%zu", c->ca_len);
    if (c->insecure)
        ADD(" insecure");
    if (c->server_name)
        ADD(" sni=%s", c->server_name);
    if (c->proxy_url)
        ADD(" proxy=%s", c->proxy_url);
    if (c->token)
        ADD(" token=%s", c->token);
    if (c->username)
        ADD(" user=%s", c->username);
    if (c->password)
        ADD(" pass=%s", c->password);
    if (c->cert)
        ADD(" cert=%zu key=%zu", c->cert_len, c->key_len);
    if (c->in_cluster)
        ADD(" in-cluster");
    if (c->exec) {
        ADD(" exec=%s %s [", c->exec->api_version, c->exec->command);
        for (size_t i = 0; i < c->exec->nargs; i++)
            ADD("%s%s", i ? " " : "", c->exec->args[i]);
        ADD("] env=");
        for (size_t i = 0; i < c->exec->nenv; i++)
            ADD("%s%s=%s", i ? "," : "", c->exec->env[i].name, c->exec->env[i].value);
        ADD(" mode=%s info=%d", c->exec->interactive_mode, c->exec->provide_cluster_info);
    }
#undef ADD
    return buf;
}

struct kc_case {
    const char *name;
    const char *config;     /* written to $T/config when set */
    const char *config2;    /* written to $T/config2 when set */
    const char *kubeconfig; /* --kubeconfig ($T, $F expanded), or NULL */
    const char *env;        /* KUBECONFIG ($T, $F expanded), or NULL */
    const char *context, *ns;
    const char *want;     /* the rendering ($T, $F expanded), or NULL */
    const char *want_err; /* the exact message ($T, $F expanded), or NULL */
};

#define HEAD "apiVersion: v1\nkind: Config\n"
#define ONE_CLUSTER "clusters:\n- name: c\n  cluster:\n    server: https://c.test\n"

static const struct kc_case cases[] = {
    /* ---- merging, as kubectl ---- */
    {"first file's current-context and entries win", NULL, NULL, NULL,
     "$F/first.yaml:$F/second.yaml", NULL, NULL,
     "dev/dev-cluster/dev-user https://dev.example.test:6443 ns=dev-ns auth=token ca=79 "
     "token=dev-token-1234",
     NULL},
    {"reversed order selects the other current-context", NULL, NULL, NULL,
     "$F/second.yaml:$F/first.yaml", NULL, NULL,
     "staging/staging-cluster/staging-user https://staging.example.test ns=default auth=basic "
     "insecure sni=api.staging.test proxy=http://proxy.example.test:3128 user=admin "
     "pass=s3cret-pass",
     NULL},
    {"a context of the second file; a duplicate cluster name keeps the first", NULL, NULL, NULL,
     "$F/first.yaml:$F/second.yaml", "shared", NULL,
     "shared/shared/staging-user https://shared-from-first.example.test ns=default auth=basic "
     "user=admin pass=s3cret-pass",
     NULL},
    {"--context and --namespace", NULL, NULL, NULL, "$F/second.yaml:$F/first.yaml", "dev", "ops",
     "dev/staging-cluster/staging-user https://staging.example.test ns=ops auth=basic insecure "
     "sni=api.staging.test proxy=http://proxy.example.test:3128 user=admin pass=s3cret-pass",
     NULL},
    {"missing files in KUBECONFIG are skipped, empty entries too", NULL, NULL, NULL,
     "$T/nope.yaml::$F/second.yaml:$F/second.yaml", "staging", NULL,
     "staging/staging-cluster/staging-user https://staging.example.test ns=default auth=basic "
     "insecure sni=api.staging.test proxy=http://proxy.example.test:3128 user=admin "
     "pass=s3cret-pass",
     NULL},
    {"--kubeconfig wins over KUBECONFIG", NULL, NULL, "$F/second.yaml", "$F/first.yaml", NULL, NULL,
     "staging/staging-cluster/staging-user https://staging.example.test ns=default auth=basic "
     "insecure sni=api.staging.test proxy=http://proxy.example.test:3128 user=admin "
     "pass=s3cret-pass",
     NULL},
    {"an explicit --kubeconfig must exist", NULL, NULL, "$T/missing", NULL, NULL, NULL, NULL,
     "$T/missing: cannot read the kubeconfig: No such file or directory"},
    {"no file at all and not in a cluster", NULL, NULL, NULL, "$T/a:$T/b", NULL, NULL, NULL,
     "no Kubernetes configuration: no kubeconfig file (KUBECONFIG=$T/a:$T/b) and not in a "
     "cluster (no KUBERNETES_SERVICE_HOST/PORT or service-account token)"},

    /* ---- relative paths and files ---- */
    {"tokenFile and certificate-authority relative to the file", NULL, NULL, "$F/sub/config", NULL,
     NULL, NULL,
     "files/c/token-file https://files.example.test ns=default auth=token ca=79 "
     "token=tok-from-file",
     NULL},
    {"client certificate files", NULL, NULL, "$F/sub/config", NULL, "certs", NULL,
     "certs/c/cert-files https://files.example.test ns=default auth=cert ca=79 cert=71 key=71",
     NULL},
    {"exec plugin, v1", NULL, NULL, "$F/exec.yaml", NULL, NULL, NULL,
     "exec/sim/plugin https://127.0.0.1:6443 ns=apps auth=exec ca=63 "
     "exec=client.authentication.k8s.io/v1 $F/../exec-credential-plugin [--cluster sim] "
     "env=PLUGIN_MODE=token mode=Never info=1",
     NULL},
    {"exec plugin, v1beta1 defaults interactiveMode", NULL, NULL, "$F/exec.yaml", NULL, "exec-beta",
     NULL,
     "exec-beta/sim/plugin-beta https://127.0.0.1:6443 ns=default auth=exec ca=63 "
     "exec=client.authentication.k8s.io/v1beta1 $F/../exec-credential-plugin [] env= "
     "mode=IfAvailable info=0",
     NULL},
    {"exec command without a slash stays for PATH lookup",
     HEAD ONE_CLUSTER "users:\n- name: u\n  user:\n    exec:\n      apiVersion: "
                      "client.authentication.k8s.io/v1\n      command: aws\n      "
                      "interactiveMode: IfAvailable\n      args: [eks, get-token]\n"
                      "contexts:\n- name: x\n  context: {cluster: c, user: u}\n"
                      "current-context: x\n",
     NULL, "$T/config", NULL, NULL, NULL,
     "x/c/u https://c.test ns=default auth=exec exec=client.authentication.k8s.io/v1 aws "
     "[eks get-token] env= mode=IfAvailable info=0",
     NULL},
    {"data fields decode base64 (with line breaks)",
     HEAD ONE_CLUSTER "users:\n- name: u\n  user:\n    client-certificate-data: |\n"
                      "      Q0VS\n      VA==\n    client-key-data: S0VZ\n"
                      "contexts:\n- name: x\n  context: {cluster: c, user: u}\n"
                      "current-context: x\n",
     NULL, "$T/config", NULL, NULL, NULL, "x/c/u https://c.test ns=default auth=cert cert=4 key=3",
     NULL},
    {"a context without a user has no auth; JSON is YAML",
     "{\"clusters\": [{\"name\": \"c\", \"cluster\": {\"server\": \"http://127.0.0.1:8080\"}}],"
     " \"contexts\": [{\"name\": \"x\", \"context\": {\"cluster\": \"c\"}}],"
     " \"current-context\": \"x\"}",
     NULL, "$T/config", NULL, NULL, NULL, "x/c/- http://127.0.0.1:8080 ns=default auth=none", NULL},

    /* ---- errors name the file, the position and the field ---- */
    {"unknown context", NULL, NULL, NULL, "$F/first.yaml:$F/second.yaml", "prod", NULL, NULL,
     "$F/first.yaml:$F/second.yaml: context \"prod\" not found (contexts: dev, shared, staging)"},
    {"current-context names a missing context",
     HEAD ONE_CLUSTER "contexts:\n- name: a\n  context: {cluster: c}\ncurrent-context: b\n", NULL,
     "$T/config", NULL, NULL, NULL, NULL,
     "$T/config:10:18: current-context: context \"b\" not found (contexts: a)"},
    {"no current-context", HEAD ONE_CLUSTER "contexts:\n- name: a\n  context: {cluster: c}\n", NULL,
     "$T/config", NULL, NULL, NULL, NULL,
     "$T/config: current-context is not set; choose a context (contexts: a)"},
    {"invalid base64, secrets not shown",
     HEAD ONE_CLUSTER "users:\n- name: u\n  user:\n    client-certificate-data: Q0VSVA==\n"
                      "    client-key-data: not*base64-SECRET\n"
                      "contexts:\n- name: x\n  context: {cluster: c, user: u}\n"
                      "current-context: x\n",
     NULL, "$T/config", NULL, NULL, NULL, NULL,
     "$T/config:11:22: users[0].user.client-key-data: invalid base64"},
    {"bad padding is invalid base64",
     HEAD "clusters:\n- name: c\n  cluster:\n    server: https://c.test\n"
          "    certificate-authority-data: QUJD=\n"
          "contexts:\n- name: x\n  context: {cluster: c}\ncurrent-context: x\n",
     NULL, "$T/config", NULL, NULL, NULL, NULL,
     "$T/config:7:33: clusters[0].cluster.certificate-authority-data: invalid base64"},
    {"missing certificate-authority file, relative to the kubeconfig",
     HEAD "clusters:\n- name: c\n  cluster:\n    server: https://c.test\n"
          "    certificate-authority: no/ca.pem\n"
          "contexts:\n- name: x\n  context: {cluster: c}\ncurrent-context: x\n",
     NULL, "$T/config", NULL, NULL, NULL, NULL,
     "$T/config:7:28: clusters[0].cluster.certificate-authority: $T/no/ca.pem: No such file or "
     "directory"},
    {"the context's cluster is missing",
     HEAD ONE_CLUSTER "contexts:\n- name: x\n  context: {cluster: d}\ncurrent-context: x\n", NULL,
     "$T/config", NULL, NULL, NULL, NULL,
     "$T/config:9:22: contexts[0].context.cluster: cluster \"d\" not found (clusters: c)"},
    {"the context's user is missing",
     HEAD ONE_CLUSTER "contexts:\n- name: x\n  context: {cluster: c, user: me}\n"
                      "current-context: x\n",
     NULL, "$T/config", NULL, NULL, NULL, NULL,
     "$T/config:9:31: contexts[0].context.user: user \"me\" not found (no users are defined)"},
    {"a cluster without a server",
     HEAD "clusters:\n- name: c\n  cluster:\n    insecure-skip-tls-verify: true\n"
          "contexts:\n- name: x\n  context: {cluster: c}\ncurrent-context: x\n",
     NULL, "$T/config", NULL, NULL, NULL, NULL,
     "$T/config:6:5: clusters[0].cluster.server: missing (cluster \"c\")"},
    {"duplicate names in one file",
     HEAD ONE_CLUSTER "- name: c\n  cluster: {server: https://d.test}\n", NULL, "$T/config", NULL,
     NULL, NULL, NULL, "$T/config:7:9: clusters[1].name: duplicate name \"c\" (also at line 4)"},
    {"token and basic auth together",
     HEAD ONE_CLUSTER "users:\n- name: u\n  user:\n    token: SECRET-TOKEN\n    username: bob\n"
                      "    password: SECRET-PASS\n"
                      "contexts:\n- name: x\n  context: {cluster: c, user: u}\n"
                      "current-context: x\n",
     NULL, "$T/config", NULL, NULL, NULL, NULL,
     "$T/config:11:15: users[0].user: more than one authentication method (token and "
     "username/password; user \"u\")"},
    {"a client certificate without a key",
     HEAD ONE_CLUSTER "users:\n- name: u\n  user:\n    client-certificate-data: Q0VSVA==\n"
                      "contexts:\n- name: x\n  context: {cluster: c, user: u}\n"
                      "current-context: x\n",
     NULL, "$T/config", NULL, NULL, NULL, NULL,
     "$T/config:10:5: users[0].user: client-certificate without client-key or client-key-data"},
    {"both a CA file and CA data",
     HEAD "clusters:\n- name: c\n  cluster:\n    server: https://c.test\n"
          "    certificate-authority: ca.pem\n    certificate-authority-data: QUJD\n"
          "contexts:\n- name: x\n  context: {cluster: c}\ncurrent-context: x\n",
     NULL, "$T/config", NULL, NULL, NULL, NULL,
     "$T/config:8:33: clusters[0].cluster: certificate-authority-data and certificate-authority "
     "are both set; set one"},
    {"insecure with a CA",
     HEAD "clusters:\n- name: c\n  cluster:\n    server: https://c.test\n"
          "    certificate-authority-data: QUJD\n    insecure-skip-tls-verify: true\n"
          "contexts:\n- name: x\n  context: {cluster: c}\ncurrent-context: x\n",
     NULL, "$T/config", NULL, NULL, NULL, NULL,
     "$T/config:8:31: clusters[0].cluster.insecure-skip-tls-verify: cannot be combined with a "
     "certificate authority (cluster \"c\")"},
    {"insecure must be a boolean",
     HEAD "clusters:\n- name: c\n  cluster:\n    server: https://c.test\n"
          "    insecure-skip-tls-verify: \"yes\"\n"
          "contexts:\n- name: x\n  context: {cluster: c}\ncurrent-context: x\n",
     NULL, "$T/config", NULL, NULL, NULL, NULL,
     "$T/config:7:31: clusters[0].cluster.insecure-skip-tls-verify: expected true or false"},
    {"exec: unsupported apiVersion",
     HEAD ONE_CLUSTER "users:\n- name: u\n  user:\n    exec:\n      apiVersion: "
                      "client.authentication.k8s.io/v1alpha1\n      command: x\n"
                      "contexts:\n- name: x\n  context: {cluster: c, user: u}\n"
                      "current-context: x\n",
     NULL, "$T/config", NULL, NULL, NULL, NULL,
     "$T/config:11:19: users[0].user.exec.apiVersion: \"client.authentication.k8s.io/v1alpha1\" "
     "is not supported (use client.authentication.k8s.io/v1 or "
     "client.authentication.k8s.io/v1beta1)"},
    {"exec v1 requires interactiveMode",
     HEAD ONE_CLUSTER "users:\n- name: u\n  user:\n    exec:\n      apiVersion: "
                      "client.authentication.k8s.io/v1\n      command: x\n"
                      "contexts:\n- name: x\n  context: {cluster: c, user: u}\n"
                      "current-context: x\n",
     NULL, "$T/config", NULL, NULL, NULL, NULL,
     "$T/config:11:7: users[0].user.exec.interactiveMode: missing (Never, IfAvailable or "
     "Always)"},
    {"exec env entries need a name",
     HEAD ONE_CLUSTER "users:\n- name: u\n  user:\n    exec:\n      apiVersion: "
                      "client.authentication.k8s.io/v1beta1\n      command: x\n"
                      "      env:\n      - value: v\n"
                      "contexts:\n- name: x\n  context: {cluster: c, user: u}\n"
                      "current-context: x\n",
     NULL, "$T/config", NULL, NULL, NULL, NULL,
     "$T/config:14:9: users[0].user.exec.env[0].name: missing"},
    {"auth providers are refused",
     HEAD ONE_CLUSTER "users:\n- name: u\n  user:\n    auth-provider:\n      name: oidc\n"
                      "contexts:\n- name: x\n  context: {cluster: c, user: u}\n"
                      "current-context: x\n",
     NULL, "$T/config", NULL, NULL, NULL, NULL,
     "$T/config:11:7: users[0].user.auth-provider: auth providers (oidc) are not supported; use "
     "an exec credential plugin"},
    {"a list that is not a list", HEAD "clusters: {a: b}\n", NULL, "$T/config", NULL, NULL, NULL,
     NULL, "$T/config:3:11: clusters: expected a list"},
    {"an entry without a name", HEAD "users:\n- user: {token: x}\n", NULL, "$T/config", NULL, NULL,
     NULL, NULL, "$T/config:4:3: users[0].name: missing"},
    {"not a mapping", "- a\n- b\n", NULL, "$T/config", NULL, NULL, NULL, NULL,
     "$T/config:1:1: expected a mapping (a kubeconfig with clusters, users, contexts)"},
    {"YAML syntax errors keep their position", "clusters: [\n", NULL, "$T/config", NULL, NULL, NULL,
     NULL, NULL /* checked by prefix below */},
};

static void test_cases(void)
{
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct kc_case *k = &cases[i];
        char kc[1024], env[1024], want[2048], kcenv[1100];
        if (k->config)
            write_file("config", k->config);
        if (k->config2)
            write_file("config2", k->config2);
        const char *envv[4] = {NULL};
        int ne = 0;
        if (k->env) {
            snprintf(kcenv, sizeof kcenv, "KUBECONFIG=%s", expand(k->env, env, sizeof env));
            envv[ne++] = kcenv;
        }
        struct ms_kubeconfig_opts o = {
            .kubeconfig = k->kubeconfig ? expand(k->kubeconfig, kc, sizeof kc) : NULL,
            .context = k->context,
            .namespace = k->ns,
            .env = envv,
            .sa_dir = tmpdir, /* has no token: never in-cluster */
        };
        struct ms_kubeconfig *c = NULL;
        char *err = NULL;
        int rc = ms_kubeconfig_load(&o, &c, &err);
        if (k->want) {
            if (rc != 0)
                fprintf(stderr, "case \"%s\": %s\n", k->name, err);
            CHECK_INT(rc, 0);
            if (c)
                CHECK_STR(render(c), expand(k->want, want, sizeof want));
        } else {
            CHECK_INT(rc, MS_KUBECONFIG_EINVAL);
            CHECK(c == NULL);
            if (k->want_err)
                CHECK_STR(err, expand(k->want_err, want, sizeof want));
            else if (expand("$T/config:2:1: ", want, sizeof want))
                CHECK(err && strncmp(err, want, strlen(want)) == 0);
            if (err && (strstr(err, "SECRET") || strstr(err, "s3cret"))) {
                fprintf(stderr, "case \"%s\": a secret in the message: %s\n", k->name, err);
                CHECK(0);
            }
        }
        ms_kubeconfig_free(c);
        free(err);
    }
}

static void test_sources_and_home(void)
{
    char home[512], f1[1100], f2[2048];
    snprintf(home, sizeof home, "HOME=%s/home", tmpdir);
    char dir[600];
    snprintf(dir, sizeof dir, "%s/home/.kube", tmpdir);
    snprintf(f1, sizeof f1, "%s/home", tmpdir);
    mkdir(f1, 0700);
    mkdir(dir, 0700);
    snprintf(f1, sizeof f1, "%s/config", dir);
    FILE *f = fopen(f1, "w");
    fputs(HEAD ONE_CLUSTER "contexts:\n- name: h\n  context: {cluster: c}\ncurrent-context: h\n",
          f);
    fclose(f);
    const char *envv[] = {home, NULL};
    struct ms_kubeconfig_opts o = {.env = envv, .sa_dir = tmpdir};
    struct ms_kubeconfig *c = NULL;
    char *err = NULL;
    CHECK_INT(ms_kubeconfig_load(&o, &c, &err), 0);
    if (c) {
        CHECK_STR(render(c), "h/c/- https://c.test ns=default auth=none");
        CHECK_INT(c->nsources, 1);
        CHECK_STR(c->sources[0], f1);
    }
    ms_kubeconfig_free(c);
    free(err);

    /* The sources of a merge, in KUBECONFIG order, missing ones left out. */
    snprintf(f2, sizeof f2, "KUBECONFIG=%s/second.yaml:%s/none:%s/first.yaml", fixtures, tmpdir,
             fixtures);
    const char *envm[] = {f2, home, NULL};
    o.env = envm;
    CHECK_INT(ms_kubeconfig_load(&o, &c, &err), 0);
    if (c) {
        CHECK_INT(c->nsources, 2);
        snprintf(f1, sizeof f1, "%s/first.yaml", fixtures);
        CHECK_STR(c->sources[1], f1);
    }
    ms_kubeconfig_free(c);
}

static void test_in_cluster(void)
{
    char sa[1100];
    snprintf(sa, sizeof sa, "%s/serviceaccount", fixtures);
    const char *envv[] = {"KUBERNETES_SERVICE_HOST=10.0.0.1", "KUBERNETES_SERVICE_PORT=443",
                          "HOME=/nonexistent", NULL};
    struct ms_kubeconfig_opts o = {.env = envv, .sa_dir = sa};
    struct ms_kubeconfig *c = NULL;
    char *err = NULL;
    CHECK_INT(ms_kubeconfig_load(&o, &c, &err), 0);
    if (c) {
        CHECK_STR(render(c), "-/-/- https://10.0.0.1:443 ns=team-a auth=token ca=79 "
                             "token=sa-token-5678 in-cluster");
        char want[1200];
        snprintf(want, sizeof want, "%s/token", sa);
        CHECK_STR(c->token_file, want);
    }
    ms_kubeconfig_free(c);

    /* IPv6 service address, --namespace override. */
    const char *env6[] = {"KUBERNETES_SERVICE_HOST=fd00::1", "KUBERNETES_SERVICE_PORT=6443", NULL};
    o.env = env6;
    o.namespace = "other";
    CHECK_INT(ms_kubeconfig_load(&o, &c, &err), 0);
    if (c)
        CHECK_STR(render(c), "-/-/- https://[fd00::1]:6443 ns=other auth=token ca=79 "
                             "token=sa-token-5678 in-cluster");
    ms_kubeconfig_free(c);

    /* A kubeconfig with a current-context wins over the service account. */
    char kcenv[1100];
    snprintf(kcenv, sizeof kcenv, "KUBECONFIG=%s/first.yaml", fixtures);
    const char *envk[] = {kcenv, "KUBERNETES_SERVICE_HOST=10.0.0.1", "KUBERNETES_SERVICE_PORT=443",
                          NULL};
    o.env = envk;
    o.namespace = NULL;
    CHECK_INT(ms_kubeconfig_load(&o, &c, &err), 0);
    if (c)
        CHECK(!c->in_cluster && strcmp(c->context, "dev") == 0);
    ms_kubeconfig_free(c);
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/ms-kubeconfig-XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 2;
    }
    const char *src = getenv("MOONSHIP_SOURCE_DIR");
    snprintf(fixtures, sizeof fixtures, "%s/tests/fixtures/kubeconfig", src ? src : ".");
    RUN(test_cases);
    RUN(test_sources_and_home);
    RUN(test_in_cluster);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
    return TEST_SUMMARY();
}
