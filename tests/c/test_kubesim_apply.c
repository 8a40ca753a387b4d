/* kubesim internals without a server: selectors (field labels per kind), YAML typing, FieldsV1
 * sets, server-side apply (create, removal of dropped fields, conflicts, force, the order of
 * managedFields), the three patch types, the order-free template hash, which kinds keep a
 * generation, and a pod's QoS class. The simulator's sources are compiled in. */
#include "test.h"

#include "../../src/kubesim/util.c"
#include "../../src/kubesim/yaml.c"
#include "../../src/kubesim/select.c"
#include "../../src/kubesim/status.c"
#include "../../src/kubesim/fieldset.c"
#include "../../src/kubesim/apply.c"
#include "../../src/kubesim/patch.c"
#include "../../src/kubesim/store.c"
#include "../../src/kubesim/scenario.c"
#include "../../src/kubesim/defaults.c"

#include <unistd.h>

/* store.c reports changes to the controllers; none run here */
void ks_ctl_changed(struct ks_server *s, struct ks_obj *o, enum ks_evtype t, const cJSON *old)
{
    (void)s, (void)o, (void)t, (void)old;
}

static cJSON *J(const char *text)
{
    cJSON *o = cJSON_Parse(text);
    if (!o) fprintf(stderr, "bad test JSON: %s\n", text);
    return o;
}

static char *P(const cJSON *o) { return o ? cJSON_PrintUnformatted(o) : ks_strdup("(null)"); }

static void check_json(const cJSON *got, const char *want_text, int line)
{
    cJSON *want = J(want_text);
    ms_test_checks++;
    if (!ks_jequal(got, want)) {
        char *g = P(got);
        ms_test_failures++;
        fprintf(stderr, "%s:%d: got %s\n   want %s\n", __FILE__, line, g, want_text);
        free(g);
    }
    cJSON_Delete(want);
}
#define CHECK_JSON(got, want) check_json((got), (want), __LINE__)

static void test_label_selectors(void)
{
    static const struct {
        const char *sel, *labels;
        int match;
    } cases[] = {
        {"app=web", "{\"app\":\"web\"}", 1},
        {"app==web", "{\"app\":\"web\"}", 1},
        {"app!=web", "{\"app\":\"web\"}", 0},
        {"app!=web", "{}", 1},
        {"app in (a, web)", "{\"app\":\"web\"}", 1},
        {"app notin (a,web)", "{\"app\":\"web\"}", 0},
        {"app", "{\"app\":\"x\"}", 1},
        {"!app", "{\"app\":\"x\"}", 0},
        {"app=web,tier in (fe)", "{\"app\":\"web\",\"tier\":\"be\"}", 0},
        {"batch.kubernetes.io/controller-uid=u1", "{\"batch.kubernetes.io/controller-uid\":\"u1\"}", 1},
        {"", "{}", 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *err = NULL;
        struct ks_selector *s = ks_sel_parse_labels(cases[i].sel, &err);
        CHECK(s != NULL);
        cJSON *obj = cJSON_CreateObject();
        cJSON_AddItemToObject(cJSON_AddObjectToObject(obj, "metadata"), "labels", J(cases[i].labels));
        CHECK_INT(ks_sel_match(s, obj), cases[i].match);
        ks_sel_free(s);
        cJSON_Delete(obj);
        free(err);
    }
    char *err = NULL;
    CHECK(ks_sel_parse_labels("a in (b", &err) == NULL);
    CHECK_STR(err, "unable to parse requirement: \"a in (b\"");
    free(err);
    err = NULL;
    CHECK(ks_sel_parse_fields("metadata.name", NULL, &err) == NULL);
    CHECK_STR(err, "invalid selector: 'metadata.name'; can't understand 'metadata.name'");
    free(err);
    err = NULL;
    struct ks_selector *f = ks_sel_parse_fields("metadata.name=web,status.phase!=Failed", NULL, &err);
    cJSON *pod = J("{\"metadata\":{\"name\":\"web\"},\"status\":{\"phase\":\"Running\"}}");
    CHECK_INT(ks_sel_match(f, pod), 1);
    ks_sel_free(f);
    cJSON_Delete(pod);
    cJSON *sel = J("{\"matchLabels\":{\"app\":\"web\"},\"matchExpressions\":[{\"key\":\"tier\",\"operator\":\"In\","
                   "\"values\":[\"fe\"]}]}");
    cJSON *l1 = J("{\"app\":\"web\",\"tier\":\"fe\"}"), *l2 = J("{\"app\":\"web\"}");
    CHECK_INT(ks_labelsel_match(sel, l1), 1);
    CHECK_INT(ks_labelsel_match(sel, l2), 0);
    cJSON_Delete(sel), cJSON_Delete(l1), cJSON_Delete(l2);
}

/* What kube-apiserver answers a field selector, by kind: NULL when it selects by the field. */
static void test_field_labels(void)
{
    static const struct {
        const char *group, *kind;
        int builtin;
        const char *sel, *err;
    } cases[] = {
        {"", "ConfigMap", 1, "metadata.name=a", NULL},
        {"", "ConfigMap", 1, "metadata.namespace!=a", NULL},
        {"", "ConfigMap", 1, "data.k=v",
         "\"data.k\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\""},
        {"apps", "ReplicaSet", 1, "status.replicas=1",
         "\"status.replicas\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\""},
        {"", "Pod", 1, "spec.nodeName=n,status.phase=Running", NULL},
        {"", "Pod", 1, "spec.x=1", "field label not supported: spec.x"},
        {"", "Namespace", 1, "status.phase=Active", NULL},
        {"", "Namespace", 1, "metadata.namespace=a", "field label not supported: metadata.namespace"},
        {"", "Node", 1, "spec.unschedulable=true", NULL},
        {"", "Event", 1, "involvedObject.name=web,reason=Failed,type=Warning", NULL},
        {"", "Secret", 1, "type=Opaque", NULL},
        {"", "Service", 1, "spec.type=ClusterIP", NULL},
        {"batch", "Job", 1, "status.successful=1", NULL},
        {"batch", "Job", 1, "spec.x=1", "field label \"spec.x\" not supported for Job"},
        {"example.com", "Widget", 0, "metadata.name=w", NULL},
        {"example.com", "Widget", 0, "spec.size=1", "field label not supported: spec.size"},
        {"", "ConfigMap", 1, "metadata.name=a,bad", "invalid selector: 'metadata.name=a,bad'; can't understand 'bad'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct ks_rtype rt = {
            .group = (char *)cases[i].group, .kind = (char *)cases[i].kind, .builtin = cases[i].builtin};
        char *err = NULL;
        struct ks_selector *sel = ks_sel_parse_fields(cases[i].sel, &rt, &err);
        if (cases[i].err) {
            CHECK(sel == NULL);
            CHECK_STR(err, cases[i].err);
        } else {
            CHECK(sel != NULL);
            if (!sel) fprintf(stderr, "  %s: %s\n", cases[i].sel, err ? err : "");
        }
        ks_sel_free(sel);
        free(err);
    }
    /* fields read under another name than their label */
    static const struct {
        const char *group, *kind, *sel, *obj;
        int match;
    } alias[] = {
        {"", "Event", "source=kubelet", "{\"source\":{\"component\":\"kubelet\"}}", 1},
        {"", "Event", "source=kubelet", "{\"source\":{\"component\":\"other\"}}", 0},
        {"batch", "Job", "status.successful=1", "{\"status\":{\"succeeded\":1}}", 1},
        {"", "Pod", "spec.host=n1", "{\"spec\":{\"nodeName\":\"n1\"}}", 1},
    };
    for (size_t i = 0; i < sizeof alias / sizeof alias[0]; i++) {
        struct ks_rtype rt = {.group = (char *)alias[i].group, .kind = (char *)alias[i].kind, .builtin = 1};
        char *err = NULL;
        struct ks_selector *sel = ks_sel_parse_fields(alias[i].sel, &rt, &err);
        cJSON *obj = J(alias[i].obj);
        CHECK(sel != NULL);
        CHECK_INT(ks_sel_match(sel, obj), alias[i].match);
        ks_sel_free(sel);
        cJSON_Delete(obj);
        free(err);
    }
}

static void test_yaml(void)
{
    char *err = NULL;
    const char *y = "a: 1\nb: \"1\"\nc: true\nd: ~\ne: [x, 2.5]\nf: {g: h}\n";
    cJSON *o = ks_yaml_parse(y, strlen(y), &err);
    CHECK_JSON(o, "{\"a\":1,\"b\":\"1\",\"c\":true,\"d\":null,\"e\":[\"x\",2.5],\"f\":{\"g\":\"h\"}}");
    cJSON_Delete(o);
    o = ks_yaml_parse("a: [b\n", 6, &err);
    CHECK(o == NULL);
    CHECK(err && strstr(err, "yaml: line") == err);
    free(err);
    err = NULL;
    o = ks_yaml_parse("a: &x 1\nb: *x\n", 14, &err);
    CHECK(o == NULL);
    CHECK_STR(err, "yaml: aliases are not supported");
    free(err);
}

static const char *DEPLOY =
    "{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{\"name\":\"web\",\"labels\":{\"app\":\"web\"}},"
    "\"spec\":{\"replicas\":2,\"template\":{\"spec\":{\"containers\":[{\"name\":\"web\",\"image\":\"nginx:1\","
    "\"ports\":[{\"containerPort\":80}]}]}}}}";

static void test_fieldset(void)
{
    cJSON *d = J(DEPLOY);
    cJSON *fs = ks_fields_of(d, 1);
    CHECK_JSON(fs,
               "{\"f:metadata\":{\"f:labels\":{\"f:app\":{}}},\"f:spec\":{\"f:replicas\":{},\"f:template\":"
               "{\"f:spec\":{\"f:containers\":{\"k:{\\\"name\\\":\\\"web\\\"}\":{\".\":{},\"f:name\":{},"
               "\"f:image\":{},\"f:ports\":{\"k:{\\\"containerPort\\\":80,\\\"protocol\\\":\\\"TCP\\\"}\":{\".\":{},"
               "\"f:containerPort\":{}}}}}}}}}");
    cJSON_Delete(fs);
    cJSON_Delete(d);
}

static void test_apply(struct ks_server *s)
{
    int code;
    cJSON *st = NULL;
    cJSON *applied = J(DEPLOY);
    cJSON *live = ks_apply(s, NULL, applied, "alice", 0, &code, &st);
    CHECK(live != NULL);
    CHECK_STR(ks_jstr(cJSON_GetArrayItem(ks_jpath(live, "metadata.managedFields"), 0), "manager"), "alice");
    CHECK_STR(ks_jstr(cJSON_GetArrayItem(ks_jpath(live, "metadata.managedFields"), 0), "operation"), "Apply");

    /* another manager changes replicas with an update: it now owns .spec.replicas */
    cJSON *upd = cJSON_Duplicate(live, 1);
    ks_jset_num(ks_j(upd, "spec"), "replicas", 5);
    ks_fields_record_update(s, live, upd, "bob", NULL);
    cJSON_Delete(live);
    live = upd;

    /* alice re-applies replicas 2: a conflict naming bob and the field */
    cJSON *res = ks_apply(s, live, applied, "alice", 0, &code, &st);
    CHECK(res == NULL);
    CHECK_INT(code, 409);
    CHECK_STR(ks_jstr(st, "reason"), "Conflict");
    CHECK_STR(ks_jstr(st, "message"),
              "Apply failed with 1 conflict: conflict with \"bob\" using apps/v1: .spec.replicas");
    CHECK_STR(ks_jstr(cJSON_GetArrayItem(ks_jpath(st, "details.causes"), 0), "field"), ".spec.replicas");
    CHECK_STR(ks_jstr(cJSON_GetArrayItem(ks_jpath(st, "details.causes"), 0), "reason"), "FieldManagerConflict");
    cJSON_Delete(st);

    /* the same value is shared ownership, not a conflict */
    cJSON *same = cJSON_Duplicate(applied, 1);
    ks_jset_num(ks_j(same, "spec"), "replicas", 5);
    res = ks_apply(s, live, same, "alice", 0, &code, &st);
    CHECK(res != NULL);
    cJSON_Delete(res);
    cJSON_Delete(same);

    /* force takes the field */
    res = ks_apply(s, live, applied, "alice", 1, &code, &st);
    CHECK(res != NULL);
    CHECK_INT(ks_jnum(ks_j(res, "spec"), "replicas", 0), 2);
    cJSON_Delete(live);
    live = res;

    /* alice drops the label from her config: it goes, since nobody else owns it */
    cJSON *less = cJSON_Duplicate(applied, 1);
    cJSON_DeleteItemFromObjectCaseSensitive(ks_j(less, "metadata"), "labels");
    res = ks_apply(s, live, less, "alice", 0, &code, &st);
    CHECK(res != NULL);
    CHECK(ks_jpath(res, "metadata.labels.app") == NULL);
    CHECK_STR(ks_jstr(cJSON_GetArrayItem(ks_jpath(res, "spec.template.spec.containers"), 0), "image"), "nginx:1");
    cJSON_Delete(res);
    cJSON_Delete(less);
    cJSON_Delete(live);
    cJSON_Delete(applied);
}

/* managedFields in the order the apiserver encodes them. */
static void test_managed_order(void)
{
    cJSON *mf =
        J("[{\"manager\":\"z\",\"operation\":\"Update\",\"apiVersion\":\"v1\",\"time\":\"2026-01-01T00:00:01Z\"},"
          "{\"manager\":\"b\",\"operation\":\"Apply\",\"apiVersion\":\"v1\",\"time\":\"2026-01-01T00:00:02Z\"},"
          "{\"manager\":\"a\",\"operation\":\"Apply\",\"apiVersion\":\"v1\",\"time\":\"2026-01-01T00:00:02Z\"},"
          "{\"manager\":\"c\",\"operation\":\"Apply\",\"apiVersion\":\"v1\",\"time\":\"2026-01-01T00:00:00Z\"},"
          "{\"manager\":\"z\",\"operation\":\"Update\",\"apiVersion\":\"v1\",\"time\":\"2026-01-01T00:00:01Z\","
          "\"subresource\":\"status\"}]");
    mf_sort(mf);
    static const char *want[] = {"c", "a", "b", "z", "z/status"};
    int i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, mf)
    {
        char got[64];
        snprintf(got, sizeof got, "%s%s%s", ks_jstr(e, "manager"), ks_j(e, "subresource") ? "/" : "",
                 ks_j(e, "subresource") ? ks_jstr(e, "subresource") : "");
        CHECK_STR(got, want[i++]);
    }
    CHECK_INT(i, 5);
    cJSON_Delete(mf);
}

/* The kinds whose registry keeps metadata.generation have one, bumped on a spec change; the
 * others have none; the server's own writes set it as they say. */
static void test_generation(void)
{
    struct ks_server s;
    memset(&s, 0, sizeof s);
    ks_rng_seed(&s.rng, 2);
    CHECK_INT(ks_store_init(&s), 0);
    struct ks_rtype *cm = ks_rtype_find(&s, "", "v1", "configmaps"),
                    *dep = ks_rtype_find(&s, "apps", "v1", "deployments");
    struct ks_obj *c =
        ks_obj_insert(&s, cm, J("{\"metadata\":{\"name\":\"c\",\"namespace\":\"d\",\"generation\":7},\"data\":{}}"));
    struct ks_obj *d =
        ks_obj_insert(&s, dep, J("{\"metadata\":{\"name\":\"d\",\"namespace\":\"d\"},\"spec\":{\"replicas\":1}}"));
    CHECK(c && d);
    CHECK(ks_jpath(c->json, "metadata.generation") == NULL);
    CHECK_INT(ks_jnum(ks_j(d->json, "metadata"), "generation", 0), 1);
    CHECK_STR(ks_jstr(c->json, "apiVersion"), "v1");
    CHECK_STR(ks_jstr(d->json, "kind"), "Deployment");
    ks_obj_update(&s, c, J("{\"metadata\":{\"name\":\"c\",\"namespace\":\"d\"},\"data\":{\"k\":\"v\"}}"));
    CHECK(ks_jpath(c->json, "metadata.generation") == NULL);
    cJSON *nw = cJSON_Duplicate(d->json, 1);
    ks_jset_num(ks_j(nw, "spec"), "replicas", 2);
    ks_jset_num(ks_j(nw, "metadata"), "generation", 9); /* a client's generation is ignored */
    ks_obj_update(&s, d, nw);
    CHECK_INT(ks_jnum(ks_j(d->json, "metadata"), "generation", 0), 2);
    /* a deletion's mark: the server's write keeps the generation it set */
    nw = cJSON_Duplicate(d->json, 1);
    ks_jset_num(ks_j(nw, "metadata"), "generation", 3);
    ks_jset_str(ks_j(nw, "metadata"), "deletionTimestamp", "2026-01-01T00:00:00Z");
    CHECK_INT(ks_obj_update_as_server(&s, d, nw), 0);
    CHECK_INT(ks_jnum(ks_j(d->json, "metadata"), "generation", 0), 3);
    CHECK_STR(ks_jstr(ks_j(d->json, "metadata"), "deletionTimestamp"), "2026-01-01T00:00:00Z");
    /* what a dry run answers: stamped, never stored */
    cJSON *dry = J("{\"metadata\":{\"name\":\"x\",\"namespace\":\"d\"}}");
    ks_obj_stamp(&s, dep, dry);
    CHECK(ks_jstr(ks_j(dry, "metadata"), "uid") != NULL);
    CHECK(ks_jstr(ks_j(dry, "metadata"), "creationTimestamp") != NULL);
    CHECK(ks_jpath(dry, "metadata.resourceVersion") == NULL);
    CHECK(ks_obj_get(&s, dep, "d", "x") == NULL);
    cJSON_Delete(dry);
    ks_store_free(&s);
}

static void test_qos(void)
{
    static const struct {
        const char *spec, *qos;
    } cases[] = {
        {"{\"containers\":[{\"name\":\"a\"}]}", "BestEffort"},
        {"{\"containers\":[{\"name\":\"a\",\"resources\":{}}]}", "BestEffort"},
        {"{\"containers\":[{\"resources\":{\"requests\":{\"cpu\":\"100m\"}}}]}", "Burstable"},
        {"{\"containers\":[{\"resources\":{\"limits\":{\"cpu\":\"1\",\"memory\":\"1Gi\"},"
         "\"requests\":{\"cpu\":\"1\",\"memory\":\"1Gi\"}}}]}",
         "Guaranteed"},
        {"{\"containers\":[{\"resources\":{\"limits\":{\"cpu\":\"1\",\"memory\":\"1Gi\"},"
         "\"requests\":{\"cpu\":\"500m\",\"memory\":\"1Gi\"}}}]}",
         "Burstable"},
        {"{\"containers\":[{\"resources\":{\"limits\":{\"cpu\":\"1\"}}}]}", "Burstable"},
        {"{\"containers\":[{\"resources\":{\"limits\":{\"cpu\":1,\"memory\":\"1Gi\"}}},"
         "{\"name\":\"b\"}]}",
         "Burstable"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cJSON *spec = J(cases[i].spec);
        CHECK_STR(ks_qos_class(spec), cases[i].qos);
        cJSON_Delete(spec);
    }
    /* a pod requests its limits where it names no requests, which makes it Guaranteed */
    struct ks_server s;
    memset(&s, 0, sizeof s);
    CHECK_INT(ks_store_init(&s), 0);
    cJSON *pod = J("{\"metadata\":{\"name\":\"p\"},\"spec\":{\"containers\":[{\"name\":\"a\",\"image\":\"a:1\","
                   "\"resources\":{\"limits\":{\"cpu\":\"1\",\"memory\":\"1Gi\"}}}]}}");
    ks_defaults_apply(&s, ks_rtype_find(&s, "", "v1", "pods"), pod, NULL);
    CHECK_STR(ks_jstr(ks_j(pod, "status"), "qosClass"), "Guaranteed");
    CHECK_STR(ks_jstr(ks_j(pod, "status"), "phase"), "Pending");
    CHECK_STR(
        ks_jstr(ks_jpath(cJSON_GetArrayItem(ks_jpath(pod, "spec.containers"), 0), "resources.requests"), "memory"),
        "1Gi");
    cJSON_Delete(pod);
    ks_store_free(&s);
}

static void test_patches(void)
{
    cJSON *t = J("{\"a\":{\"b\":1,\"c\":[1,2]},\"d\":\"x\"}");
    cJSON *p = J("{\"a\":{\"b\":null,\"c\":[3]},\"e\":true}");
    cJSON *r = ks_merge_patch(t, p);
    CHECK_JSON(r, "{\"a\":{\"c\":[3]},\"d\":\"x\",\"e\":true}");
    cJSON_Delete(r), cJSON_Delete(p), cJSON_Delete(t);

    t = J("{\"spec\":{\"containers\":[{\"name\":\"a\",\"image\":\"a:1\",\"ports\":[{\"containerPort\":80}]},"
          "{\"name\":\"b\",\"image\":\"b:1\"}]}}");
    p = J("{\"spec\":{\"$setElementOrder/containers\":[{\"name\":\"a\"},{\"name\":\"b\"}],"
          "\"containers\":[{\"name\":\"a\",\"image\":\"a:2\"},{\"name\":\"b\",\"$patch\":\"delete\"}]}}");
    r = ks_strategic_patch(t, p);
    CHECK_JSON(r,
               "{\"spec\":{\"containers\":[{\"name\":\"a\",\"image\":\"a:2\",\"ports\":[{\"containerPort\":80}]}]}}");
    cJSON_Delete(r), cJSON_Delete(p), cJSON_Delete(t);

    t = J("{\"a\":[1,2],\"b\":{\"c\":1}}");
    p = J("[{\"op\":\"add\",\"path\":\"/a/-\",\"value\":3},{\"op\":\"replace\",\"path\":\"/b/c\",\"value\":2},"
          "{\"op\":\"remove\",\"path\":\"/a/0\"},{\"op\":\"copy\",\"from\":\"/b\",\"path\":\"/d\"},"
          "{\"op\":\"test\",\"path\":\"/d/c\",\"value\":2}]");
    char *err = NULL;
    r = ks_json_patch(t, p, &err);
    CHECK_JSON(r, "{\"a\":[2,3],\"b\":{\"c\":2},\"d\":{\"c\":2}}");
    cJSON_Delete(r), cJSON_Delete(p);
    p = J("[{\"op\":\"test\",\"path\":\"/a/0\",\"value\":9}]");
    r = ks_json_patch(t, p, &err);
    CHECK(r == NULL);
    CHECK_STR(err, "testing value /a/0 failed");
    free(err);
    cJSON_Delete(p), cJSON_Delete(t);
}

static void test_hash(void)
{
    cJSON *a = J("{\"a\":1,\"b\":{\"c\":[1,{\"d\":2,\"e\":3}]},\"n\":null}");
    cJSON *b = J("{\"b\":{\"c\":[1,{\"e\":3,\"d\":2}]},\"a\":1}");
    cJSON *c = J("{\"b\":{\"c\":[{\"e\":3,\"d\":2},1]},\"a\":1}");
    CHECK(ks_jhash(a) == ks_jhash(b));
    CHECK(ks_jhash(a) != ks_jhash(c));
    cJSON_Delete(a), cJSON_Delete(b), cJSON_Delete(c);
}

static char *write_tmp(const char *text)
{
    char *path = ks_strdup("/tmp/kubesim-scenario-XXXXXX");
    int fd = mkstemp(path);
    if (fd < 0) return path;
    ssize_t n = write(fd, text, strlen(text));
    (void)n;
    close(fd);
    return path;
}

static void test_scenario(void)
{
    static const struct {
        const char *text, *err; /* err: the message after "<path>: " */
    } bad[] = {
        {"defaults: {start_dely: 1}\n", "scenario: unknown key defaults.start_dely"},
        {"faults: {error_rate: 2}\n", "scenario: faults.error_rate is a fraction between 0 and 1"},
        {"faults: {error_codes: [200]}\n", "scenario: faults.error_codes must be HTTP codes 400-599"},
        {"workloads: {web: {ready_delay: -1}}\n", "scenario: workloads.web.ready_delay must not be negative"},
        {"workloads: {web: {never_ready: 1}}\n", "scenario: workloads.web.never_ready must be true or false"},
        {"time_scale: 0\n", "scenario: time_scale must be positive"},
        {"nonsense: 1\n", "scenario: unknown key nonsense"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct ks_faults f;
        memset(&f, 0, sizeof f);
        char *path = write_tmp(bad[i].text), *err = NULL;
        struct ks_scenario *sc = ks_scenario_load(path, &f, &err);
        CHECK(sc == NULL);
        char *want = ks_sprintf("%s: %s", path, bad[i].err);
        CHECK_STR(err, want);
        free(want), free(err), free(f.verbs);
        unlink(path);
        free(path);
    }
    struct ks_faults f;
    memset(&f, 0, sizeof f);
    char *path = write_tmp("defaults: {ready_delay: 4}\nworkloads:\n  web: {requires: [db], logs: [a, b]}\n"
                           "broken_images: [\"nope:*\"]\nfaults: {error_rate: 0.5, error_codes: [503], "
                           "retry_after: 2, verbs: [get, list]}\n");
    char *err = NULL;
    struct ks_scenario *sc = ks_scenario_load(path, &f, &err);
    CHECK(sc != NULL);
    if (sc) {
        struct ks_rule r;
        ks_scenario_rule(sc, "web", &r);
        CHECK(r.ready_delay == 4 && r.start_delay == 1);
        CHECK_INT(r.nrequires, 1);
        CHECK_STR(r.requires[0], "db");
        CHECK_INT(r.nlogs, 2);
        CHECK_STR(r.logs[1], "b");
        ks_scenario_rule(sc, "other", &r);
        CHECK_INT(r.nrequires, 0);
        CHECK_INT(ks_scenario_image_broken(sc, "nope:1"), 1);
        CHECK_INT(ks_scenario_image_broken(sc, "nginx:1"), 0);
    }
    CHECK(f.error_rate == 0.5);
    CHECK_INT(f.error_codes[0], 503);
    CHECK_INT(f.retry_after, 2);
    CHECK_STR(f.verbs, "get,list");
    ks_scenario_free(sc);
    free(f.verbs);
    free(err);
    unlink(path);
    free(path);
}

int main(void)
{
    struct ks_server s;
    memset(&s, 0, sizeof s);
    ks_rng_seed(&s.rng, 1);
    RUN(test_label_selectors);
    RUN(test_field_labels);
    RUN(test_yaml);
    RUN(test_fieldset);
    test_apply(&s);
    printf("%s test_apply\n", ms_test_failures ? "FAIL" : "ok  ");
    RUN(test_managed_order);
    RUN(test_patches);
    RUN(test_hash);
    RUN(test_generation);
    RUN(test_qos);
    RUN(test_scenario);
    return TEST_SUMMARY();
}
