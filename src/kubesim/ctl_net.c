/* The endpoints controller: each Service with a selector gets an Endpoints object listing the
 * ready (addresses) and not-ready (notReadyAddresses) pods behind it, as `kubectl get
 * endpoints` and clients that check for a serving backend expect. */
#include "ctl.h"

#include <stdlib.h>
#include <string.h>

/* A named targetPort resolves against the pod's container ports. */
static double target_port(const cJSON *svc_port, const struct ks_obj *pod)
{
    const cJSON *tp = ks_j(svc_port, "targetPort");
    if (cJSON_IsNumber(tp)) return tp->valuedouble;
    if (cJSON_IsString(tp) && pod) {
        const cJSON *c, *p;
        cJSON_ArrayForEach(c, ks_jpath(pod->json, "spec.containers"))
            cJSON_ArrayForEach(p, ks_j(c, "ports")) if (ks_streq(ks_jstr(p, "name"), tp->valuestring)) return ks_jnum(
                p, "containerPort", 0);
    }
    return ks_jnum(svc_port, "port", 0);
}

static cJSON *address(const struct ks_obj *pod)
{
    cJSON *a = cJSON_CreateObject();
    if (!a) return NULL;
    cJSON_AddStringToObject(a, "ip", pod->pod ? pod->pod->ip : "");
    cJSON_AddStringToObject(a, "nodeName", "kubesim-node-1");
    cJSON *ref = cJSON_AddObjectToObject(a, "targetRef");
    cJSON_AddStringToObject(ref, "kind", "Pod");
    cJSON_AddStringToObject(ref, "namespace", pod->ns);
    cJSON_AddStringToObject(ref, "name", pod->name);
    cJSON_AddStringToObject(ref, "uid", pod->uid);
    return a;
}

void ks_endpoints_reconcile(struct ks_server *s, struct ks_obj *svc)
{
    const cJSON *sel = ks_jpath(svc->json, "spec.selector");
    if (!cJSON_IsObject(sel) || !sel->child || ks_jpath(svc->json, "metadata.deletionTimestamp")) return;
    struct ks_rtype *prt = ks_rtype_find(s, "", "v1", "pods"), *ert = ks_rtype_find(s, "", "v1", "endpoints");
    size_t n;
    struct ks_obj **pods = ks_obj_select(s, prt, svc->ns, sel, &n); /* by the label index */
    if (!pods) return;
    cJSON *ready = cJSON_CreateArray(), *unready = cJSON_CreateArray();
    struct ks_obj *first = NULL;
    for (size_t i = 0; i < n; i++) {
        struct ks_obj *p = pods[i];
        if (!p->pod || !p->pod->ip[0] || p->pod->stage == PS_DONE) continue;
        if (!first) first = p;
        cJSON_AddItemToArray(ks_pod_ready(p) ? ready : unready, address(p));
    }
    cJSON *subsets = cJSON_CreateArray();
    if (first && subsets) {
        cJSON *sub = cJSON_CreateObject();
        if (cJSON_GetArraySize(ready)) cJSON_AddItemToObject(sub, "addresses", ready), ready = NULL;
        if (cJSON_GetArraySize(unready)) cJSON_AddItemToObject(sub, "notReadyAddresses", unready), unready = NULL;
        cJSON *ports = cJSON_AddArrayToObject(sub, "ports");
        const cJSON *sp;
        cJSON_ArrayForEach(sp, ks_jpath(svc->json, "spec.ports"))
        {
            cJSON *p = cJSON_CreateObject();
            if (!p) continue;
            if (ks_jstr(sp, "name")) cJSON_AddStringToObject(p, "name", ks_jstr(sp, "name"));
            cJSON_AddNumberToObject(p, "port", target_port(sp, first));
            cJSON_AddStringToObject(p, "protocol", ks_jstr(sp, "protocol") ? ks_jstr(sp, "protocol") : "TCP");
            cJSON_AddItemToArray(ports, p);
        }
        cJSON_AddItemToArray(subsets, sub);
    }
    cJSON_Delete(ready);
    cJSON_Delete(unready);
    free(pods);
    struct ks_obj *ep = ks_obj_get(s, ert, svc->ns, svc->name);
    cJSON *nw = ep ? ks_ctl_copy(ep) : cJSON_CreateObject();
    if (!nw) {
        cJSON_Delete(subsets);
        return;
    }
    if (!ep) {
        cJSON *md = cJSON_AddObjectToObject(nw, "metadata");
        cJSON_AddStringToObject(md, "name", svc->name);
        cJSON_AddStringToObject(md, "namespace", svc->ns);
        const cJSON *labels = ks_jpath(svc->json, "metadata.labels");
        if (labels) cJSON_AddItemToObject(md, "labels", cJSON_Duplicate(labels, 1));
        /* not a controller reference: deleting the Service collects its Endpoints */
        cJSON *refs = ks_ctl_owner_ref(svc);
        cJSON *r = cJSON_GetArrayItem(refs, 0);
        ks_jset_bool(r, "controller", 0);
        ks_jset_bool(r, "blockOwnerDeletion", 0);
        cJSON_AddItemToObject(md, "ownerReferences", refs);
    }
    if (cJSON_GetArraySize(subsets))
        ks_jset(nw, "subsets", subsets);
    else {
        cJSON_Delete(subsets);
        cJSON_DeleteItemFromObjectCaseSensitive(nw, "subsets");
    }
    if (ep) {
        ks_ctl_write(s, ep, nw, "endpoint-controller", 0);
    } else {
        ks_fields_record_update(s, NULL, nw, "endpoint-controller", NULL);
        ks_obj_insert(s, ert, nw);
    }
}
