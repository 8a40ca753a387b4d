/* libFuzzer target: the kubeconfig loader (core/kubeconfig.h), from memory (opts.text). No
 * environment is read (opts.env is empty) and the file's directory does not exist, so paths it
 * names (certificates, token files) fail to read as they would on a machine without them. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/kubeconfig.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const env[] = {NULL};
    /* the first byte picks an explicit context, so both paths (current-context and --context) run */
    const char *context = size > 0 && (data[0] & 1) ? "ctx" : NULL;
    struct ms_kubeconfig_opts o = {
        .kubeconfig = "/nonexistent-moonship-fuzz/config",
        .context = context,
        .namespace = size > 0 && (data[0] & 2) ? "ns" : NULL,
        .env = env,
        .sa_dir = "/nonexistent-moonship-fuzz/sa",
        .text = (const char *)data,
        .text_len = size,
    };
    struct ms_kubeconfig *c = NULL;
    char *err = NULL;
    int rc = ms_kubeconfig_load(&o, &c, &err);
    if (rc == 0) {
        if (c == NULL || c->server == NULL || err != NULL)
            __builtin_trap(); /* success means a server to talk to */
    } else if (c != NULL || err == NULL || strlen(err) == 0) {
        __builtin_trap(); /* a failure always says why */
    }
    ms_kubeconfig_free(c);
    free(err);
    return 0;
}
