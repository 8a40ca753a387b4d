/* --tls certificates and the kubeconfig kubesim writes for its clients. */
#ifndef KS_TLS_H
#define KS_TLS_H

#include "util.h"

struct ks_tls {
    char *ca_pem, *cert_pem, *key_pem; /* owns */
};

int ks_tls_make(struct ks_tls *t, char **err);
void ks_tls_free(struct ks_tls *t);
char *ks_base64(const char *data, size_t n);
/* Writes atomically; t may be NULL (plain HTTP). */
int ks_kubeconfig_write(const char *path, const char *url, const struct ks_tls *t, const char *token, char **err);

#endif
