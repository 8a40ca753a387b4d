/* Scenario files (YAML) into struct ks_scenario and struct ks_faults. Unknown keys are an
 * error, so a typo in a scenario fails loudly instead of silently doing nothing. */
#include "scenario.h"

#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void rule_unset(struct ks_rule *r)
{
    memset(r, 0, sizeof *r);
    r->start_delay = r->ready_delay = r->jitter = r->duration = r->crash_after = -1;
    r->never_ready = r->exit_code = r->fail_attempts = -1;
    r->nrequires = r->nlogs = -1;
}

static void rule_free(struct ks_rule *r)
{
    for (int i = 0; i < r->nlogs; i++) free(r->logs[i]);
    r->nlogs = -1;
}

void ks_scenario_free(struct ks_scenario *sc)
{
    if (!sc) return;
    rule_free(&sc->dflt);
    for (int i = 0; i < sc->nrules; i++) rule_free(&sc->rules[i]);
    free(sc->rules);
    for (int i = 0; i < sc->nbroken; i++) free(sc->broken[i]);
    for (int i = 0; i < sc->ncrashing; i++) free(sc->crashing[i]);
    for (int i = 0; i < sc->nnamespaces; i++) free(sc->namespaces[i]);
    for (int i = 0; i < sc->nunbound; i++) free(sc->unbound_users[i]), free(sc->unbound_tokens[i]);
    free(sc);
}

static int num(const cJSON *v, const char *what, double *out, char **err)
{
    if (!cJSON_IsNumber(v)) {
        *err = ks_sprintf("scenario: %s must be a number", what);
        return -1;
    }
    *out = v->valuedouble;
    return 0;
}

static int strlist(const cJSON *v, const char *what, char **out, int *n, char **err)
{
    *n = 0;
    if (cJSON_IsString(v)) {
        out[(*n)++] = ks_strdup(v->valuestring);
        return 0;
    }
    if (!cJSON_IsArray(v)) {
        *err = ks_sprintf("scenario: %s must be a list of strings", what);
        return -1;
    }
    const cJSON *e;
    cJSON_ArrayForEach(e, v)
    {
        if (*n >= KS_MAX_LIST) break;
        if (cJSON_IsString(e))
            out[(*n)++] = ks_strdup(e->valuestring);
        else if (cJSON_IsNumber(e))
            out[(*n)++] = ks_sprintf("%g", e->valuedouble);
        else {
            *err = ks_sprintf("scenario: %s must be a list of strings", what);
            return -1;
        }
    }
    return 0;
}

static int parse_rule(const cJSON *o, struct ks_rule *r, const char *where, char **err)
{
    if (!cJSON_IsObject(o)) {
        *err = ks_sprintf("scenario: %s must be a mapping", where);
        return -1;
    }
    const cJSON *c;
    cJSON_ArrayForEach(c, o)
    {
        const char *k = c->string;
        char what[400];
        snprintf(what, sizeof what, "%s.%s", where, k);
        double d;
        if (!strcmp(k, "start_delay") || !strcmp(k, "ready_delay") || !strcmp(k, "jitter") || !strcmp(k, "duration") ||
            !strcmp(k, "job_duration") || !strcmp(k, "crash_after") || !strcmp(k, "delay")) {
            if (num(c, what, &d, err) < 0) return -1;
            if (d < 0) {
                *err = ks_sprintf("scenario: %s must not be negative", what);
                return -1;
            }
            /* clang-format off */ /* one key a line */
            if (!strcmp(k, "start_delay")) r->start_delay = d;
            else if (!strcmp(k, "ready_delay")) r->ready_delay = d;
            else if (!strcmp(k, "jitter")) r->jitter = d;
            else if (!strcmp(k, "crash_after")) r->crash_after = d;
            else if (!strcmp(k, "delay")) { /* shorthand: total time to ready */
                r->start_delay = d / 3;
                r->ready_delay = d - d / 3;
            } else r->duration = d;
            /* clang-format on */
        } else if (!strcmp(k, "exit_code") || !strcmp(k, "fail_attempts")) {
            if (num(c, what, &d, err) < 0) return -1;
            if (!strcmp(k, "exit_code"))
                r->exit_code = (int)d;
            else
                r->fail_attempts = (int)d;
        } else if (!strcmp(k, "never_ready")) {
            if (!cJSON_IsBool(c)) {
                *err = ks_sprintf("scenario: %s must be true or false", what);
                return -1;
            }
            r->never_ready = cJSON_IsTrue(c);
        } else if (!strcmp(k, "requires")) {
            char *tmp[KS_MAX_LIST];
            int n;
            if (strlist(c, what, tmp, &n, err) < 0) {
                for (int i = 0; i < n; i++) free(tmp[i]);
                return -1;
            }
            r->nrequires = n;
            for (int i = 0; i < n; i++) {
                snprintf(r->requires[i], sizeof r->requires[i], "%s", tmp[i] ? tmp[i] : "");
                free(tmp[i]);
            }
        } else if (!strcmp(k, "logs")) {
            rule_free(r);
            int n;
            if (strlist(c, what, r->logs, &n, err) < 0) {
                r->nlogs = n;
                return -1;
            }
            r->nlogs = n;
        } else {
            *err = ks_sprintf("scenario: unknown key %s", what);
            return -1;
        }
    }
    return 0;
}

static int parse_faults(const cJSON *o, struct ks_faults *f, char **err)
{
    if (!cJSON_IsObject(o)) {
        *err = ks_strdup("scenario: faults must be a mapping");
        return -1;
    }
    const cJSON *c;
    cJSON_ArrayForEach(c, o)
    {
        const char *k = c->string;
        char what[300];
        snprintf(what, sizeof what, "faults.%s", k);
        double d = 0;
        if (!strcmp(k, "error_codes")) {
            if (!cJSON_IsArray(c)) {
                *err = ks_strdup("scenario: faults.error_codes must be a list of HTTP codes");
                return -1;
            }
            f->n_error_codes = 0;
            const cJSON *e;
            cJSON_ArrayForEach(e, c)
            {
                if (!cJSON_IsNumber(e) || e->valuedouble < 400 || e->valuedouble > 599) {
                    *err = ks_strdup("scenario: faults.error_codes must be HTTP codes 400-599");
                    return -1;
                }
                if (f->n_error_codes < 8) f->error_codes[f->n_error_codes++] = (int)e->valuedouble;
            }
            continue;
        }
        if (!strcmp(k, "verbs")) {
            char *tmp[KS_MAX_LIST];
            int n;
            if (strlist(c, what, tmp, &n, err) < 0) {
                for (int i = 0; i < n; i++) free(tmp[i]);
                return -1;
            }
            struct ks_buf b;
            ks_buf_init(&b);
            for (int i = 0; i < n; i++) {
                ks_buf_printf(&b, "%s%s", i ? "," : "", tmp[i] ? tmp[i] : "");
                free(tmp[i]);
            }
            free(f->verbs);
            f->verbs = ks_buf_steal(&b);
            continue;
        }
        if (num(c, what, &d, err) < 0) return -1;
        if (d < 0) {
            *err = ks_sprintf("scenario: %s must not be negative", what);
            return -1;
        }
        /* clang-format off */ /* one key a line */
        if (!strcmp(k, "error_rate")) f->error_rate = d;
        else if (!strcmp(k, "retry_after")) f->retry_after = (int)d;
        else if (!strcmp(k, "drop_rate")) f->drop_rate = d;
        else if (!strcmp(k, "latency")) f->latency = d;
        else if (!strcmp(k, "latency_jitter")) f->latency_jitter = d;
        else if (!strcmp(k, "watch_close_every")) f->watch_close_every = d;
        else if (!strcmp(k, "expire_every")) f->expire_every = d;
        else if (!strcmp(k, "history")) f->history = (int)d;
        /* clang-format on */
        else {
            *err = ks_sprintf("scenario: unknown key %s", what);
            return -1;
        }
        if ((!strcmp(k, "error_rate") || !strcmp(k, "drop_rate")) && d > 1) {
            *err = ks_sprintf("scenario: %s is a fraction between 0 and 1", what);
            return -1;
        }
    }
    return 0;
}

/* unbound_users: {name: token, ...} */
static int parse_unbound(struct ks_scenario *sc, const cJSON *o, char **err)
{
    if (!cJSON_IsObject(o)) {
        *err = ks_strdup("scenario: unbound_users must map user names to bearer tokens");
        return -1;
    }
    const cJSON *c;
    cJSON_ArrayForEach(c, o)
    {
        if (!cJSON_IsString(c) || !*c->valuestring || !*c->string) {
            *err = ks_sprintf("scenario: unbound_users.%s must be a bearer token (a string)", c->string);
            return -1;
        }
        if (sc->nunbound >= KS_MAX_LIST) {
            *err = ks_sprintf("scenario: at most %d unbound_users", KS_MAX_LIST);
            return -1;
        }
        sc->unbound_users[sc->nunbound] = ks_strdup(c->string);
        sc->unbound_tokens[sc->nunbound] = ks_strdup(c->valuestring);
        sc->nunbound++;
    }
    return 0;
}

static int parse_workloads(struct ks_scenario *sc, const cJSON *o, const char *where, char **err)
{
    if (!cJSON_IsObject(o)) {
        *err = ks_sprintf("scenario: %s must be a mapping of names", where);
        return -1;
    }
    const cJSON *c;
    cJSON_ArrayForEach(c, o)
    {
        struct ks_rule *rules = realloc(sc->rules, (size_t)(sc->nrules + 1) * sizeof *rules);
        if (!rules) {
            *err = ks_strdup("out of memory");
            return -1;
        }
        sc->rules = rules;
        struct ks_rule *r = &rules[sc->nrules++];
        rule_unset(r);
        snprintf(r->name, sizeof r->name, "%s", c->string);
        char what[400];
        snprintf(what, sizeof what, "%s.%s", where, c->string);
        if (parse_rule(c, r, what, err) < 0) return -1;
    }
    return 0;
}

struct ks_scenario *ks_scenario_load(const char *path, struct ks_faults *faults, char **err)
{
    *err = NULL;
    struct ks_scenario *sc = calloc(1, sizeof *sc);
    if (!sc) {
        *err = ks_strdup("out of memory");
        return NULL;
    }
    rule_unset(&sc->dflt);
    sc->dflt.start_delay = 1;
    sc->dflt.ready_delay = 2;
    sc->dflt.jitter = 0;
    sc->dflt.never_ready = 0;
    sc->dflt.duration = 5;
    sc->dflt.exit_code = 0;
    sc->dflt.fail_attempts = 0;
    sc->dflt.crash_after = 2;
    sc->dflt.nrequires = 0;
    sc->dflt.nlogs = 0;
    sc->seed = sc->time_scale = -1;
    if (!path) return sc;

    FILE *f = fopen(path, "rb");
    if (!f) {
        *err = ks_sprintf("scenario: cannot open %s", path);
        ks_scenario_free(sc);
        return NULL;
    }
    struct ks_buf b;
    ks_buf_init(&b);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) ks_buf_add(&b, chunk, n);
    fclose(f);
    char *perr = NULL;
    cJSON *doc = ks_yaml_parse(b.data ? b.data : "", b.len, &perr);
    ks_buf_free(&b);
    if (!doc) {
        *err = ks_sprintf("scenario %s: %s", path, perr ? perr : "invalid YAML");
        free(perr);
        ks_scenario_free(sc);
        return NULL;
    }
    if (cJSON_IsNull(doc)) {
        cJSON_Delete(doc);
        return sc;
    }
    if (!cJSON_IsObject(doc)) {
        *err = ks_sprintf("scenario %s: the document must be a mapping", path);
        goto fail;
    }
    const cJSON *c;
    cJSON_ArrayForEach(c, doc)
    {
        const char *k = c->string;
        int rc = 0;
        if (!strcmp(k, "defaults")) {
            rc = parse_rule(c, &sc->dflt, "defaults", err);
        } else if (!strcmp(k, "workloads") || !strcmp(k, "services") || !strcmp(k, "jobs")) {
            rc = parse_workloads(sc, c, k, err);
        } else if (!strcmp(k, "broken_images")) {
            rc = strlist(c, k, sc->broken, &sc->nbroken, err);
        } else if (!strcmp(k, "crashing_images")) {
            rc = strlist(c, k, sc->crashing, &sc->ncrashing, err);
        } else if (!strcmp(k, "namespaces")) {
            rc = strlist(c, k, sc->namespaces, &sc->nnamespaces, err);
        } else if (!strcmp(k, "faults")) {
            rc = parse_faults(c, faults, err);
        } else if (!strcmp(k, "unbound_users")) {
            rc = parse_unbound(sc, c, err);
        } else if (!strcmp(k, "seed")) {
            rc = num(c, k, &sc->seed, err);
        } else if (!strcmp(k, "time_scale")) {
            rc = num(c, k, &sc->time_scale, err);
            if (!rc && sc->time_scale <= 0) {
                *err = ks_strdup("scenario: time_scale must be positive");
                rc = -1;
            }
        } else {
            *err = ks_sprintf("scenario: unknown key %s", k);
            rc = -1;
        }
        if (rc < 0) goto fail;
    }
    cJSON_Delete(doc);
    return sc;
fail:
    if (*err && strncmp(*err, "scenario ", 9)) {
        char *e = ks_sprintf("%s: %s", path, *err);
        if (e) {
            free(*err);
            *err = e;
        }
    }
    cJSON_Delete(doc);
    ks_scenario_free(sc);
    return NULL;
}

void ks_scenario_rule(const struct ks_scenario *sc, const char *name, struct ks_rule *out)
{
    *out = sc->dflt;
    const struct ks_rule *r = NULL;
    /* An exact name wins; else a shell pattern ("migrate-*" for a Job with a per-run name). */
    for (int i = 0; name && !r && i < sc->nrules; i++)
        if (!strcmp(sc->rules[i].name, name)) r = &sc->rules[i];
    for (int i = 0; name && !r && i < sc->nrules; i++)
        if (fnmatch(sc->rules[i].name, name, 0) == 0) r = &sc->rules[i];
    snprintf(out->name, sizeof out->name, "%s", name ? name : "");
    if (!r) return;
    if (r->start_delay >= 0) out->start_delay = r->start_delay;
    if (r->ready_delay >= 0) out->ready_delay = r->ready_delay;
    if (r->jitter >= 0) out->jitter = r->jitter;
    if (r->never_ready >= 0) out->never_ready = r->never_ready;
    if (r->duration >= 0) out->duration = r->duration;
    if (r->exit_code >= 0) out->exit_code = r->exit_code;
    if (r->fail_attempts >= 0) out->fail_attempts = r->fail_attempts;
    if (r->crash_after >= 0) out->crash_after = r->crash_after;
    if (r->nrequires >= 0) {
        out->nrequires = r->nrequires;
        memcpy(out->requires, r->requires, sizeof out->requires);
    }
    if (r->nlogs >= 0) {
        out->nlogs = r->nlogs;
        memcpy(out->logs, r->logs, sizeof out->logs); /* borrows the scenario's strings */
    }
}

/* Whether image matches one of the n glob patterns. */
static int image_matches(char *const *patterns, int n, const char *image)
{
    for (int i = 0; image && i < n; i++)
        if (patterns[i] && fnmatch(patterns[i], image, 0) == 0) return 1;
    return 0;
}

int ks_scenario_image_broken(const struct ks_scenario *sc, const char *image)
{
    return image_matches(sc->broken, sc->nbroken, image);
}

int ks_scenario_image_crashes(const struct ks_scenario *sc, const char *image)
{
    return image_matches(sc->crashing, sc->ncrashing, image);
}

const char *ks_scenario_unbound_user(const struct ks_scenario *sc, const char *token)
{
    for (int i = 0; sc && token && i < sc->nunbound; i++)
        if (sc->unbound_tokens[i] && !strcmp(sc->unbound_tokens[i], token)) return sc->unbound_users[i];
    return NULL;
}
