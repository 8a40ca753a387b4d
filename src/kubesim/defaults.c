/* What the apiserver adds and checks before storing an object: the defaults kubectl and the
 * controllers rely on (strategies, a Job's generated selector, Service cluster IPs, pod spec
 * defaults) and the validation errors (422 Invalid) for the mistakes people make most. */
#include "kubesim.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void dflt(cJSON *o, const char *key, cJSON *v)
{
    if (!o || ks_j(o, key)) {
        cJSON_Delete(v);
        return;
    }
    cJSON_AddItemToObject(o, key, v);
}

static void dflt_str(cJSON *o, const char *k, const char *v) { dflt(o, k, cJSON_CreateString(v)); }
static void dflt_num(cJSON *o, const char *k, double v) { dflt(o, k, cJSON_CreateNumber(v)); }

static void container_defaults(cJSON *c)
{
    dflt_str(c, "terminationMessagePath", "/dev/termination-log");
    dflt_str(c, "terminationMessagePolicy", "File");
    const char *image = ks_jstr(c, "image");
    if (image) {
        const char *slash = strrchr(image, '/');
        const char *colon = strchr(slash ? slash : image, ':');
        int latest = !colon || !strcmp(colon, ":latest");
        if (strchr(image, '@')) latest = 0;
        dflt_str(c, "imagePullPolicy", latest ? "Always" : "IfNotPresent");
    }
    dflt(c, "resources", cJSON_CreateObject());
    cJSON *p;
    cJSON_ArrayForEach(p, ks_j(c, "ports")) dflt_str(p, "protocol", "TCP");
}

static void pod_spec_defaults(cJSON *spec, int job)
{
    if (!cJSON_IsObject(spec)) return;
    if (!job) dflt_str(spec, "restartPolicy", "Always");
    dflt_num(spec, "terminationGracePeriodSeconds", 30);
    dflt_str(spec, "dnsPolicy", "ClusterFirst");
    dflt_str(spec, "schedulerName", "default-scheduler");
    dflt(spec, "securityContext", cJSON_CreateObject());
    cJSON *c;
    cJSON_ArrayForEach(c, ks_j(spec, "containers")) container_defaults(c);
    cJSON_ArrayForEach(c, ks_j(spec, "initContainers")) container_defaults(c);
}

static void template_defaults(cJSON *spec, int job)
{
    cJSON *tpl = ks_j(spec, "template");
    if (!cJSON_IsObject(tpl)) return;
    dflt(tpl, "metadata", cJSON_CreateObject());
    pod_spec_defaults(ks_j(tpl, "spec"), job);
}

static void job_defaults(struct ks_server *s, cJSON *obj, const cJSON *old)
{
    cJSON *spec = ks_j(obj, "spec"), *md = ks_jobj(obj, "metadata");
    if (!cJSON_IsObject(spec)) return;
    dflt_num(spec, "completions", 1);
    dflt_num(spec, "parallelism", 1);
    dflt_num(spec, "backoffLimit", 6);
    dflt_str(spec, "completionMode", "NonIndexed");
    dflt(spec, "suspend", cJSON_CreateFalse());
    dflt(spec, "podReplacementPolicy", cJSON_CreateString("TerminatingOrFailed"));
    dflt(spec, "manualSelector", cJSON_CreateFalse());
    if (ks_jbool(spec, "manualSelector", 0)) {
        template_defaults(spec, 1);
        return;
    }
    /* the generated selector is keyed by the Job's uid, which is decided here on create */
    const char *uid = old ? ks_jstr(ks_j(old, "metadata"), "uid") : ks_jstr(md, "uid");
    char ubuf[37];
    if (!uid) {
        ks_rng_uid(&s->rng, ubuf);
        ks_jset_str(md, "uid", ubuf);
        uid = ubuf;
    }
    const char *name = ks_jstr(md, "name");
    if (!ks_j(spec, "selector") || old) {
        cJSON *sel = cJSON_CreateObject(), *ml = cJSON_CreateObject();
        if (sel && ml) {
            cJSON_AddStringToObject(ml, "batch.kubernetes.io/controller-uid", uid);
            cJSON_AddItemToObject(sel, "matchLabels", ml);
            ml = NULL;
            if (!ks_j(spec, "selector")) cJSON_AddItemToObject(spec, "selector", sel), sel = NULL;
        }
        cJSON_Delete(sel);
        cJSON_Delete(ml);
    }
    cJSON *tpl = ks_jobj(spec, "template");
    cJSON *labels = ks_jobj(ks_jobj(tpl, "metadata"), "labels");
    ks_jset_str(labels, "batch.kubernetes.io/controller-uid", uid);
    ks_jset_str(labels, "batch.kubernetes.io/job-name", name ? name : "");
    ks_jset_str(labels, "controller-uid", uid);
    ks_jset_str(labels, "job-name", name ? name : "");
    /* a Job without labels of its own is labelled as its pods are */
    if (!cJSON_GetArraySize(ks_j(md, "labels"))) ks_jset(md, "labels", cJSON_Duplicate(labels, 1));
    template_defaults(spec, 1);
}

static void service_defaults(struct ks_server *s, cJSON *obj, const cJSON *old)
{
    cJSON *spec = ks_jobj(obj, "spec");
    const cJSON *ospec = ks_j(old, "spec");
    dflt_str(spec, "type", "ClusterIP");
    dflt_str(spec, "sessionAffinity", "None");
    const char *type = ks_jstr(spec, "type");
    if (ks_streq(type, "ExternalName")) return;
    /* cluster IPs are immutable: keep the allocated one across updates */
    if (!ks_j(spec, "clusterIP") && ks_jstr(ospec, "clusterIP"))
        ks_jset_str(spec, "clusterIP", ks_jstr(ospec, "clusterIP"));
    if (!ks_j(spec, "clusterIP")) {
        char ip[32];
        uint64_t r = ks_rng_next(&s->rng);
        snprintf(ip, sizeof ip, "10.96.%u.%u", (unsigned)((r >> 8) % 255), (unsigned)(r % 253) + 1);
        ks_jset_str(spec, "clusterIP", ip);
    }
    if (!ks_j(spec, "clusterIPs")) {
        cJSON *a = cJSON_CreateArray();
        if (a) cJSON_AddItemToArray(a, cJSON_CreateString(ks_jstr(spec, "clusterIP")));
        ks_jset(spec, "clusterIPs", a);
    }
    if (!ks_j(spec, "ipFamilies")) {
        cJSON *a = cJSON_CreateArray();
        if (a) cJSON_AddItemToArray(a, cJSON_CreateString("IPv4"));
        ks_jset(spec, "ipFamilies", a);
    }
    dflt_str(spec, "ipFamilyPolicy", "SingleStack");
    dflt_str(spec, "internalTrafficPolicy", "Cluster");
    int np = ks_streq(type, "NodePort") || ks_streq(type, "LoadBalancer");
    if (np) dflt_str(spec, "externalTrafficPolicy", "Cluster");
    cJSON *p;
    int i = 0;
    cJSON_ArrayForEach(p, ks_j(spec, "ports"))
    {
        dflt_str(p, "protocol", "TCP");
        cJSON *port = ks_j(p, "port");
        if (port && !ks_j(p, "targetPort")) cJSON_AddItemToObject(p, "targetPort", cJSON_Duplicate(port, 1));
        if (np && !ks_j(p, "nodePort")) dflt_num(p, "nodePort", 30000 + (double)(ks_rng_next(&s->rng) % 2700));
        i++;
    }
    cJSON *lb = ks_jobj(ks_jobj(obj, "status"), "loadBalancer");
    /* a simulated cloud: LoadBalancer Services get an address at once (health rules wait for it) */
    if (ks_streq(type, "LoadBalancer") && !ks_j(lb, "ingress")) {
        char ip[32];
        snprintf(ip, sizeof ip, "192.0.2.%u", (unsigned)(ks_rng_next(&s->rng) % 250) + 2);
        cJSON *ing = cJSON_CreateArray(), *e = cJSON_CreateObject();
        if (ing && e) {
            cJSON_AddStringToObject(e, "ip", ip);
            cJSON_AddStringToObject(e, "ipMode", "VIP");
            cJSON_AddItemToArray(ing, e);
            e = NULL;
            ks_jset(lb, "ingress", ing);
            ing = NULL;
        }
        cJSON_Delete(ing), cJSON_Delete(e);
    }
}

/* A pod's containers without requests for what they limit request their limits (a Pod's
 * defaulting only, not a template's). */
static void requests_from_limits(cJSON *spec)
{
    static const char *lists[] = {"containers", "initContainers"};
    for (size_t i = 0; i < 2; i++) {
        cJSON *c;
        cJSON_ArrayForEach(c, ks_j(spec, lists[i]))
        {
            cJSON *res = ks_j(c, "resources");
            const cJSON *l;
            cJSON_ArrayForEach(l, ks_j(res, "limits"))
            {
                cJSON *req = ks_jobj(res, "requests");
                if (!ks_j(req, l->string)) cJSON_AddItemToObject(req, l->string, cJSON_Duplicate(l, 1));
            }
        }
    }
}

const char *ks_qos_class(const cJSON *spec)
{
    static const char *lists[] = {"containers", "initContainers"}, *kinds[] = {"cpu", "memory"};
    int any = 0, guaranteed = 1;
    for (size_t i = 0; i < 2; i++) {
        const cJSON *c;
        cJSON_ArrayForEach(c, ks_j(spec, lists[i]))
        {
            const cJSON *req = ks_jpath(c, "resources.requests"), *lim = ks_jpath(c, "resources.limits");
            for (size_t k = 0; k < 2; k++) {
                const char *r = ks_jstr(req, kinds[k]), *l = ks_jstr(lim, kinds[k]);
                const cJSON *rn = ks_j(req, kinds[k]), *ln = ks_j(lim, kinds[k]);
                if (rn || ln) any = 1;
                /* quantities compared as written ("500m" and "0.5" differ here) */
                if (!ln || (rn && !(r && l ? !strcmp(r, l) : ks_jequal(rn, ln)))) guaranteed = 0;
            }
        }
    }
    return !any ? "BestEffort" : guaranteed ? "Guaranteed" : "Burstable";
}

static cJSON *node_tolerations(void)
{
    static const char *keys[] = {"node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"};
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; a && i < 2; i++) {
        cJSON *t = cJSON_CreateObject();
        if (!t) continue;
        cJSON_AddStringToObject(t, "key", keys[i]);
        cJSON_AddStringToObject(t, "operator", "Exists");
        cJSON_AddStringToObject(t, "effect", "NoExecute");
        cJSON_AddNumberToObject(t, "tolerationSeconds", 300);
        cJSON_AddItemToArray(a, t);
    }
    return a;
}

void ks_defaults_apply(struct ks_server *s, struct ks_rtype *rt, cJSON *obj, const cJSON *old)
{
    if (!rt->builtin) return;
    /* a kind with a status subresource is served with its status, empty until written */
    if (rt->status_sub && !old) dflt(obj, "status", cJSON_CreateObject());
    const char *k = rt->kind;
    cJSON *spec = ks_j(obj, "spec");
    if (!strcmp(k, "Deployment") && cJSON_IsObject(spec)) {
        dflt_num(spec, "replicas", 1);
        dflt_num(spec, "revisionHistoryLimit", 10);
        dflt_num(spec, "progressDeadlineSeconds", 600);
        cJSON *st = ks_jobj(spec, "strategy");
        dflt_str(st, "type", "RollingUpdate");
        if (ks_streq(ks_jstr(st, "type"), "RollingUpdate")) {
            cJSON *ru = ks_jobj(st, "rollingUpdate");
            dflt_str(ru, "maxSurge", "25%");
            dflt_str(ru, "maxUnavailable", "25%");
        }
        template_defaults(spec, 0);
    } else if (!strcmp(k, "ReplicaSet") && cJSON_IsObject(spec)) {
        dflt_num(spec, "replicas", 1);
        template_defaults(spec, 0);
    } else if (!strcmp(k, "StatefulSet") && cJSON_IsObject(spec)) {
        dflt_num(spec, "replicas", 1);
        dflt_num(spec, "revisionHistoryLimit", 10);
        dflt_str(spec, "podManagementPolicy", "OrderedReady");
        cJSON *us = ks_jobj(spec, "updateStrategy");
        dflt_str(us, "type", "RollingUpdate");
        if (ks_streq(ks_jstr(us, "type"), "RollingUpdate")) dflt_num(ks_jobj(us, "rollingUpdate"), "partition", 0);
        cJSON *pr = ks_jobj(spec, "persistentVolumeClaimRetentionPolicy");
        dflt_str(pr, "whenDeleted", "Retain");
        dflt_str(pr, "whenScaled", "Retain");
        template_defaults(spec, 0);
    } else if (!strcmp(k, "DaemonSet") && cJSON_IsObject(spec)) {
        dflt_num(spec, "revisionHistoryLimit", 10);
        cJSON *us = ks_jobj(spec, "updateStrategy");
        dflt_str(us, "type", "RollingUpdate");
        if (ks_streq(ks_jstr(us, "type"), "RollingUpdate")) {
            cJSON *ru = ks_jobj(us, "rollingUpdate");
            dflt_num(ru, "maxUnavailable", 1);
            dflt_num(ru, "maxSurge", 0);
        }
        template_defaults(spec, 0);
    } else if (!strcmp(k, "Job")) {
        job_defaults(s, obj, old);
    } else if (!strcmp(k, "CronJob") && cJSON_IsObject(spec)) {
        dflt(spec, "suspend", cJSON_CreateFalse());
        dflt_str(spec, "concurrencyPolicy", "Allow");
        dflt_num(spec, "successfulJobsHistoryLimit", 3);
        dflt_num(spec, "failedJobsHistoryLimit", 1);
    } else if (!strcmp(k, "Pod")) {
        pod_spec_defaults(spec, 0);
        if (cJSON_IsObject(spec)) {
            /* and what the default admission plugins add: ServiceAccount, Priority,
             * DefaultTolerationSeconds (five minutes on a node that is not ready or gone) */
            dflt_str(spec, "serviceAccountName", "default");
            dflt_str(spec, "serviceAccount", ks_jstr(spec, "serviceAccountName"));
            dflt(spec, "enableServiceLinks", cJSON_CreateTrue());
            dflt_num(spec, "priority", 0);
            dflt_str(spec, "preemptionPolicy", "PreemptLowerPriority");
            if (!old) dflt(spec, "tolerations", node_tolerations());
            requests_from_limits(spec);
        }
        if (!old) {
            cJSON *st = ks_jobj(obj, "status");
            dflt_str(st, "phase", "Pending");
            dflt_str(st, "qosClass", ks_qos_class(spec));
        }
    } else if (!strcmp(k, "Service")) {
        service_defaults(s, obj, old);
    } else if (!strcmp(k, "Namespace")) {
        cJSON *sp = ks_jobj(obj, "spec");
        if (!ks_j(sp, "finalizers")) {
            cJSON *f = cJSON_CreateArray();
            if (f) cJSON_AddItemToArray(f, cJSON_CreateString("kubernetes"));
            ks_jset(sp, "finalizers", f);
        }
        dflt_str(ks_jobj(obj, "status"), "phase", "Active");
        const char *name = ks_jstr(ks_j(obj, "metadata"), "name");
        if (name) ks_jset_str(ks_jobj(ks_jobj(obj, "metadata"), "labels"), "kubernetes.io/metadata.name", name);
    } else if (!strcmp(k, "Secret")) {
        dflt_str(obj, "type", "Opaque");
    } else if (!strcmp(k, "Ingress")) {
        cJSON *lb = ks_jobj(ks_jobj(obj, "status"), "loadBalancer");
        if (!ks_j(lb, "ingress")) { /* a simulated ingress controller publishes its address */
            cJSON *ing = cJSON_CreateArray(), *e = cJSON_CreateObject();
            if (ing && e) {
                cJSON_AddStringToObject(e, "ip", "192.0.2.1");
                cJSON_AddItemToArray(ing, e);
                e = NULL;
                ks_jset(lb, "ingress", ing);
                ing = NULL;
            }
            cJSON_Delete(ing), cJSON_Delete(e);
        }
    } else if (!strcmp(k, "PersistentVolumeClaim")) {
        /* a simulated provisioner binds every claim at once */
        cJSON *st = ks_jobj(obj, "status");
        dflt_str(st, "phase", "Bound");
        if (!ks_j(st, "capacity")) {
            const cJSON *req = ks_jpath(obj, "spec.resources.requests");
            ks_jset(st, "capacity", req ? cJSON_Duplicate(req, 1) : cJSON_CreateObject());
        }
        cJSON *am = ks_jpath(obj, "spec.accessModes");
        if (!ks_j(st, "accessModes") && am) ks_jset(st, "accessModes", cJSON_Duplicate(am, 1));
    }
}

/* ---- validation ---- */

struct verr {
    struct ks_buf msg;
    cJSON *causes;
    int n;
};

static void add_err(struct verr *v, const char *reason, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void add_err(struct verr *v, const char *reason, const char *field, const char *fmt, ...)
{
    char detail[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    ks_buf_printf(&v->msg, "%s%s: %s", v->n ? ", " : "", field, detail);
    cJSON *c = cJSON_CreateObject();
    if (c) {
        cJSON_AddStringToObject(c, "reason", reason);
        cJSON_AddStringToObject(c, "message", detail);
        cJSON_AddStringToObject(c, "field", field);
        cJSON_AddItemToArray(v->causes, c);
    }
    v->n++;
}

static int dns_subdomain(const char *n)
{
    size_t len = strlen(n);
    if (!len || len > 253) return 0;
    if (!isalnum((unsigned char)n[0]) || !isalnum((unsigned char)n[len - 1])) return 0;
    for (const char *p = n; *p; p++)
        if (!(islower((unsigned char)*p) || isdigit((unsigned char)*p) || *p == '-' || *p == '.')) return 0;
    return 1;
}

static void check_pod_spec(struct verr *v, const cJSON *spec, const char *prefix, int job)
{
    char f[256];
    const cJSON *cs = ks_j(spec, "containers");
    if (!cJSON_IsArray(cs) || cJSON_GetArraySize(cs) == 0) {
        snprintf(f, sizeof f, "%s.containers", prefix);
        add_err(v, "FieldValueRequired", f, "Required value");
        return;
    }
    int i = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, cs)
    {
        if (!ks_jstr(c, "name") || !*ks_jstr(c, "name")) {
            snprintf(f, sizeof f, "%s.containers[%d].name", prefix, i);
            add_err(v, "FieldValueRequired", f, "Required value");
        }
        if (!ks_jstr(c, "image") || !*ks_jstr(c, "image")) {
            snprintf(f, sizeof f, "%s.containers[%d].image", prefix, i);
            add_err(v, "FieldValueRequired", f, "Required value");
        }
        i++;
    }
    if (job) {
        const char *rp = ks_jstr(spec, "restartPolicy");
        if (!ks_streq(rp, "Never") && !ks_streq(rp, "OnFailure")) {
            snprintf(f, sizeof f, "%s.restartPolicy", prefix);
            if (rp)
                add_err(v, "FieldValueNotSupported", f,
                        "Unsupported value: \"%s\": supported values: \"OnFailure\", \"Never\"", rp);
            else
                add_err(v, "FieldValueRequired", f, "Required value: valid values: \"OnFailure\", \"Never\"");
        }
    }
}

int ks_validate(struct ks_server *s, struct ks_rtype *rt, const cJSON *obj, const cJSON *old, cJSON **status)
{
    (void)s;
    *status = NULL;
    struct verr v;
    ks_buf_init(&v.msg);
    v.causes = cJSON_CreateArray();
    v.n = 0;
    const cJSON *md = ks_j(obj, "metadata");
    const char *name = ks_jstr(md, "name");
    if (!name || !*name) {
        add_err(&v, "FieldValueRequired", "metadata.name", "Required value: name or generateName is required");
    } else if (!dns_subdomain(name) && rt->builtin) {
        add_err(&v, "FieldValueInvalid", "metadata.name",
                "Invalid value: \"%s\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
                "characters, '-' or '.', and must start and end with an alphanumeric character (e.g. "
                "'example.com', regex used for validation is "
                "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
                name);
    }
    const cJSON *labels = ks_j(md, "labels");
    const cJSON *l;
    cJSON_ArrayForEach(l, labels) if (!cJSON_IsString(l))
    {
        char f[300];
        snprintf(f, sizeof f, "metadata.labels.%s", l->string);
        add_err(&v, "FieldValueInvalid", f, "Invalid value: label values must be strings");
    }
    const cJSON *spec = ks_j(obj, "spec");
    const char *k = rt->kind;
    if (rt->builtin && (!strcmp(k, "Deployment") || !strcmp(k, "ReplicaSet") || !strcmp(k, "StatefulSet") ||
                        !strcmp(k, "DaemonSet"))) {
        const cJSON *sel = ks_j(spec, "selector");
        const cJSON *tl = ks_jpath(spec, "template.metadata.labels");
        if (!cJSON_IsObject(sel) || !sel->child) {
            add_err(&v, "FieldValueRequired", "spec.selector", "Required value");
        } else if (!ks_labelsel_match(sel, tl)) {
            add_err(&v, "FieldValueInvalid", "spec.template.metadata.labels",
                    "Invalid value: `selector` does not match template `labels`");
        }
        if (old && !ks_jequal(sel, ks_jpath(old, "spec.selector")))
            add_err(&v, "FieldValueInvalid", "spec.selector", "Invalid value: field is immutable");
        check_pod_spec(&v, ks_jpath(spec, "template.spec"), "spec.template.spec", 0);
        const cJSON *r = ks_j(spec, "replicas");
        if (r && (!cJSON_IsNumber(r) || r->valuedouble < 0))
            add_err(&v, "FieldValueInvalid", "spec.replicas", "Invalid value: must be greater than or equal to 0");
    } else if (rt->builtin && !strcmp(k, "Job")) {
        check_pod_spec(&v, ks_jpath(spec, "template.spec"), "spec.template.spec", 1);
        if (old && !ks_jequal(ks_jpath(spec, "template"), ks_jpath(old, "spec.template")))
            add_err(&v, "FieldValueInvalid", "spec.template", "Invalid value: field is immutable");
    } else if (rt->builtin && !strcmp(k, "Pod")) {
        check_pod_spec(&v, spec, "spec", 0);
    } else if (rt->builtin && !strcmp(k, "Service")) {
        const char *type = ks_jstr(spec, "type");
        const cJSON *ports = ks_j(spec, "ports");
        if (!ks_streq(type, "ExternalName") && !ks_streq(ks_jstr(spec, "clusterIP"), "None") &&
            (!cJSON_IsArray(ports) || !cJSON_GetArraySize(ports)))
            add_err(&v, "FieldValueRequired", "spec.ports", "Required value");
        if (old && ks_jstr(ks_j(old, "spec"), "clusterIP") && ks_jstr(spec, "clusterIP") &&
            strcmp(ks_jstr(ks_j(old, "spec"), "clusterIP"), ks_jstr(spec, "clusterIP")))
            add_err(&v, "FieldValueInvalid", "spec.clusterIPs[0]", "Invalid value: field is immutable");
    } else if (rt->builtin && !strcmp(k, "CustomResourceDefinition")) {
        if (!ks_jstr(spec, "group") || !ks_jstr(ks_j(spec, "names"), "plural") || !ks_jstr(ks_j(spec, "names"), "kind"))
            add_err(&v, "FieldValueRequired", "spec.names", "Required value");
    }
    if (!v.n) {
        ks_buf_free(&v.msg);
        cJSON_Delete(v.causes);
        return 0;
    }
    char *text;
    const char *group = rt->group;
    if (v.n == 1)
        text = ks_sprintf("%s%s%s \"%s\" is invalid: %s", k, group[0] ? "." : "", group, name ? name : "", v.msg.data);
    else
        text =
            ks_sprintf("%s%s%s \"%s\" is invalid: [%s]", k, group[0] ? "." : "", group, name ? name : "", v.msg.data);
    *status = ks_status_new(422, "Invalid", text ? text : "invalid");
    free(text);
    cJSON *d = cJSON_CreateObject();
    if (d && *status) {
        cJSON_AddStringToObject(d, "name", name ? name : "");
        if (group[0]) cJSON_AddStringToObject(d, "group", group);
        cJSON_AddStringToObject(d, "kind", k);
        cJSON_AddItemToObject(d, "causes", v.causes);
        v.causes = NULL;
        cJSON_AddItemToObject(*status, "details", d);
    } else {
        cJSON_Delete(d);
    }
    cJSON_Delete(v.causes);
    ks_buf_free(&v.msg);
    return -1;
}
