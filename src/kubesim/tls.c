/* --tls: a throwaway CA and a server certificate for 127.0.0.1/localhost, made with the
 * openssl command line (scripts/deps installs it) in a private temporary directory, and the
 * kubeconfig that carries the CA and the bearer token. */
#include "tls.h"

#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static int run(char *const argv[])
{
    pid_t pid;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    /* openssl chatters on stderr; keep the simulator's own output clean */
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", 0, 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", 0, 0);
    int rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc) return -1;
    int st;
    if (waitpid(pid, &st, 0) < 0) return -1;
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    struct ks_buf b;
    ks_buf_init(&b);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) ks_buf_add(&b, chunk, n);
    fclose(f);
    if (b.oom) {
        ks_buf_free(&b);
        return NULL;
    }
    return ks_buf_steal(&b);
}

char *ks_base64(const char *data, size_t n)
{
    static const char T[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *out = malloc((n + 2) / 3 * 4 + 1);
    if (!out) return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned char)data[i] << 16;
        if (i + 1 < n) v |= (unsigned char)data[i + 1] << 8;
        if (i + 2 < n) v |= (unsigned char)data[i + 2];
        out[o++] = T[(v >> 18) & 63];
        out[o++] = T[(v >> 12) & 63];
        out[o++] = i + 1 < n ? T[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? T[v & 63] : '=';
    }
    out[o] = 0;
    return out;
}

int ks_tls_make(struct ks_tls *t, char **err)
{
    memset(t, 0, sizeof *t);
    char dir[] = "/tmp/kubesim-tls-XXXXXX";
    if (!mkdtemp(dir)) {
        *err = ks_strdup("tls: cannot create a temporary directory");
        return -1;
    }
    char ca_key[64], ca_crt[64], key[64], csr[64], crt[64], ext[64], srl[64];
    snprintf(ca_key, sizeof ca_key, "%s/ca.key", dir);
    snprintf(ca_crt, sizeof ca_crt, "%s/ca.crt", dir);
    snprintf(key, sizeof key, "%s/tls.key", dir);
    snprintf(csr, sizeof csr, "%s/tls.csr", dir);
    snprintf(crt, sizeof crt, "%s/tls.crt", dir);
    snprintf(ext, sizeof ext, "%s/ext.cnf", dir);
    snprintf(srl, sizeof srl, "%s/ca.srl", dir);
    FILE *f = fopen(ext, "w");
    if (f) {
        fputs("subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n"
              "keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
              f);
        fclose(f);
    }
    char *ca[] = {"openssl",
                  "req",
                  "-x509",
                  "-newkey",
                  "ec",
                  "-pkeyopt",
                  "ec_paramgen_curve:prime256v1",
                  "-nodes",
                  "-keyout",
                  ca_key,
                  "-out",
                  ca_crt,
                  "-days",
                  "30",
                  "-subj",
                  "/CN=kubesim-ca",
                  NULL};
    char *req[] = {"openssl",     "req",     "-newkey", "ec",   "-pkeyopt", "ec_paramgen_curve:prime256v1",
                   "-nodes",      "-keyout", key,       "-out", csr,        "-subj",
                   "/CN=kubesim", NULL};
    char *sign[] = {"openssl",   "x509", "-req", "-in", csr,     "-CA", ca_crt,     "-CAkey", ca_key, "-CAcreateserial",
                    "-CAserial", srl,    "-out", crt,   "-days", "30",  "-extfile", ext,      NULL};
    int rc = (!f || run(ca) || run(req) || run(sign)) ? -1 : 0;
    if (!rc) {
        t->ca_pem = slurp(ca_crt);
        t->cert_pem = slurp(crt);
        t->key_pem = slurp(key);
        if (!t->ca_pem || !t->cert_pem || !t->key_pem) rc = -1;
    }
    const char *files[] = {ca_key, ca_crt, key, csr, crt, ext, srl};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) unlink(files[i]);
    rmdir(dir);
    if (rc) {
        ks_tls_free(t);
        *err = ks_strdup("tls: generating the certificates with openssl failed (is openssl installed?)");
    }
    return rc;
}

void ks_tls_free(struct ks_tls *t)
{
    free(t->ca_pem);
    free(t->cert_pem);
    free(t->key_pem);
    memset(t, 0, sizeof *t);
}

int ks_kubeconfig_write(const char *path, const char *url, const struct ks_tls *t, const char *token, char **err)
{
    char *tmp = ks_sprintf("%s.tmp%d", path, (int)getpid());
    if (!tmp) return -1;
    FILE *f = fopen(tmp, "w");
    if (!f) {
        *err = ks_sprintf("cannot write %s", path);
        free(tmp);
        return -1;
    }
    fprintf(f, "apiVersion: v1\nkind: Config\nclusters:\n- name: kubesim\n  cluster:\n    server: %s\n", url);
    if (t && t->ca_pem) {
        char *b64 = ks_base64(t->ca_pem, strlen(t->ca_pem));
        fprintf(f, "    certificate-authority-data: %s\n", b64 ? b64 : "");
        free(b64);
    }
    fprintf(f,
            "contexts:\n- name: kubesim\n  context:\n    cluster: kubesim\n    user: kubesim\n"
            "    namespace: default\ncurrent-context: kubesim\npreferences: {}\nusers:\n- name: kubesim\n"
            "  user:\n    token: %s\n",
            token ? token : "kubesim");
    int bad = ferror(f);
    bad |= fclose(f);
    /* the file appears whole: whoever waits for it never reads half a kubeconfig */
    if (bad || rename(tmp, path)) {
        unlink(tmp);
        *err = ks_sprintf("cannot write %s", path);
        free(tmp);
        return -1;
    }
    chmod(path, 0600);
    free(tmp);
    return 0;
}
