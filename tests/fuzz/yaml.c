/* libFuzzer target: the YAML loader (core/yaml.h). Parses the input, walks every node of every
 * document (aliases expanded as the tree holds them) re-resolving each plain scalar, and frees.
 * Limits are lowered so that alias bombs stop at the node budget quickly. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/yaml.h"

static size_t walk(const struct ms_yaml_node *n, int depth)
{
    if (n == NULL || depth > MS_YAML_MAX_DEPTH + 1)
        return 0;
    size_t seen = 1;
    switch (n->type) {
    case MS_YAML_SEQ:
        for (size_t i = 0; i < n->count; i++)
            seen += walk(n->items[i], depth + 1);
        break;
    case MS_YAML_MAP:
        for (size_t i = 0; i < n->count; i++) {
            seen += walk(n->pairs[i].key, depth + 1);
            seen += walk(n->pairs[i].value, depth + 1);
        }
        break;
    default:
        if (n->text) {
            long long iv;
            double dv;
            (void)ms_yaml_resolve(n->text, n->len, &iv, &dv);
            /* the text is NUL-terminated at len */
            if (n->text[n->len] != '\0')
                __builtin_trap();
        }
    }
    /* the tree's node count saturates; a walk past the budget would be a bug in the limit */
    return seen;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ms_yaml_opts opts = {.filename = "fuzz.yaml", .max_nodes = 20000, .max_depth = 64};
    struct ms_yaml_stream *s = NULL;
    int rc = ms_yaml_parse((const char *)data, size, &opts, &s);
    if (rc == 0) {
        size_t total = 0;
        for (size_t i = 0; i < s->ndocs && total <= 200000; i++)
            total += walk(s->docs[i], 0);
    } else if (rc == MS_YAML_EPARSE) {
        if (s == NULL || s->error == NULL || strlen(s->error) == 0)
            __builtin_trap(); /* a parse error always says where and why */
    }
    ms_yaml_stream_free(s);
    return 0;
}
