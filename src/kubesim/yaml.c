/* YAML to cJSON with libyaml's event parser: request bodies sent as application/yaml or
 * apply-patch+yaml, and scenario files. Anchors and aliases are rejected (not needed here). */
#include "util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#define MAX_DEPTH 128

struct yp {
    yaml_parser_t p;
    char *err; /* owns */
};

static void set_err(struct yp *y, const char *what)
{
    if (y->err) return;
    if (y->p.problem)
        y->err = ks_sprintf("yaml: line %zu: %s", (size_t)y->p.problem_mark.line + 1, y->p.problem);
    else
        y->err = ks_strdup(what);
}

static cJSON *plain_scalar(const char *v, size_t n)
{
    if (n == 0 || !strcmp(v, "~") || !strcmp(v, "null") || !strcmp(v, "Null") || !strcmp(v, "NULL"))
        return cJSON_CreateNull();
    if (!strcmp(v, "true") || !strcmp(v, "True") || !strcmp(v, "TRUE")) return cJSON_CreateTrue();
    if (!strcmp(v, "false") || !strcmp(v, "False") || !strcmp(v, "FALSE")) return cJSON_CreateFalse();
    /* numbers: a leading sign, digits, optional fraction/exponent; nothing else */
    const char *s = v;
    if (*s == '-' || *s == '+') s++;
    if (*s >= '0' && *s <= '9') {
        char *end;
        errno = 0;
        int is_int = 1;
        for (const char *q = s; *q; q++)
            if (!(*q >= '0' && *q <= '9')) is_int = 0;
        if (is_int) {
            long long ll = strtoll(v, &end, 10);
            if (!*end && !errno) return cJSON_CreateNumber((double)ll);
        }
        double d = strtod(v, &end);
        if (!*end && !errno) return cJSON_CreateNumber(d);
    }
    return cJSON_CreateString(v);
}

static cJSON *parse_node(struct yp *y, yaml_event_t *ev, int depth);

static cJSON *parse_next(struct yp *y, int depth, int *end_type)
{
    yaml_event_t ev;
    if (!yaml_parser_parse(&y->p, &ev)) {
        set_err(y, "yaml: parse error");
        return NULL;
    }
    if (ev.type == YAML_MAPPING_END_EVENT || ev.type == YAML_SEQUENCE_END_EVENT || ev.type == YAML_DOCUMENT_END_EVENT ||
        ev.type == YAML_STREAM_END_EVENT) {
        *end_type = ev.type;
        yaml_event_delete(&ev);
        return NULL;
    }
    *end_type = 0;
    cJSON *n = parse_node(y, &ev, depth);
    yaml_event_delete(&ev);
    return n;
}

static cJSON *parse_node(struct yp *y, yaml_event_t *ev, int depth)
{
    if (depth > MAX_DEPTH) {
        set_err(y, "yaml: nesting too deep");
        return NULL;
    }
    int end;
    switch (ev->type) {
    case YAML_SCALAR_EVENT: {
        const char *v = (const char *)ev->data.scalar.value;
        size_t n = ev->data.scalar.length;
        if (strlen(v) != n) { /* embedded NUL: keep it a string of the visible part */
            return cJSON_CreateString(v);
        }
        if (ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && !ev->data.scalar.tag) return plain_scalar(v, n);
        if (ev->data.scalar.tag && !strcmp((const char *)ev->data.scalar.tag, "tag:yaml.org,2002:int"))
            return plain_scalar(v, n);
        return cJSON_CreateString(v);
    }
    case YAML_SEQUENCE_START_EVENT: {
        cJSON *a = cJSON_CreateArray();
        if (!a) return NULL;
        for (;;) {
            cJSON *c = parse_next(y, depth + 1, &end);
            if (!c) {
                if (end == YAML_SEQUENCE_END_EVENT) return a;
                if (!y->err) set_err(y, "yaml: bad sequence");
                cJSON_Delete(a);
                return NULL;
            }
            cJSON_AddItemToArray(a, c);
        }
    }
    case YAML_MAPPING_START_EVENT: {
        cJSON *o = cJSON_CreateObject();
        if (!o) return NULL;
        for (;;) {
            cJSON *k = parse_next(y, depth + 1, &end);
            if (!k) {
                if (end == YAML_MAPPING_END_EVENT) return o;
                if (!y->err) set_err(y, "yaml: bad mapping");
                cJSON_Delete(o);
                return NULL;
            }
            char *key;
            if (cJSON_IsString(k))
                key = ks_strdup(k->valuestring);
            else if (cJSON_IsNumber(k) || cJSON_IsBool(k) || cJSON_IsNull(k)) {
                key = cJSON_IsNull(k) ? ks_strdup("null") : cJSON_PrintUnformatted(k);
            } else {
                cJSON_Delete(k);
                set_err(y, "yaml: mapping keys must be scalars");
                cJSON_Delete(o);
                return NULL;
            }
            cJSON_Delete(k);
            cJSON *v = key ? parse_next(y, depth + 1, &end) : NULL;
            if (!v) {
                if (!y->err) set_err(y, key ? "yaml: mapping value missing" : "out of memory");
                free(key);
                cJSON_Delete(o);
                return NULL;
            }
            if (ks_j(o, key))
                cJSON_ReplaceItemInObjectCaseSensitive(o, key, v);
            else
                cJSON_AddItemToObject(o, key, v);
            free(key);
        }
    }
    case YAML_ALIAS_EVENT: set_err(y, "yaml: aliases are not supported"); return NULL;
    default: set_err(y, "yaml: unexpected event"); return NULL;
    }
}

static cJSON *parse(const char *text, size_t len, char **err, int all)
{
    struct yp y;
    memset(&y, 0, sizeof y);
    *err = NULL;
    if (!yaml_parser_initialize(&y.p)) {
        *err = ks_strdup("yaml: cannot initialize parser");
        return NULL;
    }
    yaml_parser_set_input_string(&y.p, (const unsigned char *)text, len);
    cJSON *docs = cJSON_CreateArray();
    int done = 0;
    while (docs && !done && !y.err) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&y.p, &ev)) {
            set_err(&y, "yaml: parse error");
            break;
        }
        switch (ev.type) {
        case YAML_STREAM_END_EVENT: done = 1; break;
        case YAML_DOCUMENT_START_EVENT: {
            int end;
            cJSON *d = parse_next(&y, 0, &end);
            if (d) {
                cJSON_AddItemToArray(docs, d);
                yaml_event_t e2; /* DOCUMENT_END */
                if (yaml_parser_parse(&y.p, &e2))
                    yaml_event_delete(&e2);
                else
                    set_err(&y, "yaml: parse error");
            } else if (end != YAML_DOCUMENT_END_EVENT && !y.err) {
                set_err(&y, "yaml: bad document");
            }
            if (!all && cJSON_GetArraySize(docs) > 0) done = 1;
            break;
        }
        default: break;
        }
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&y.p);
    if (y.err || !docs) {
        *err = y.err ? y.err : ks_strdup("out of memory");
        cJSON_Delete(docs);
        return NULL;
    }
    if (all) return docs;
    cJSON *first = cJSON_DetachItemFromArray(docs, 0);
    cJSON_Delete(docs);
    if (!first) first = cJSON_CreateNull();
    return first;
}

cJSON *ks_yaml_parse(const char *text, size_t len, char **err) { return parse(text, len, err, 0); }
cJSON *ks_yaml_parse_all(const char *text, size_t len, char **err) { return parse(text, len, err, 1); }
