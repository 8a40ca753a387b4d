/* Status objects: the body of every error answer, shaped as apimachinery's errors package
 * builds them, so that kubectl prints "Error from server (<reason>): <message>". */
#include "kubesim.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

cJSON *ks_status_new(int code, const char *reason, const char *message)
{
    cJSON *st = cJSON_CreateObject();
    if (!st) return NULL;
    cJSON_AddStringToObject(st, "kind", "Status");
    cJSON_AddStringToObject(st, "apiVersion", "v1");
    cJSON_AddItemToObject(st, "metadata", cJSON_CreateObject());
    cJSON_AddStringToObject(st, "status", code < 400 ? "Success" : "Failure");
    cJSON_AddStringToObject(st, "message", message ? message : "");
    if (reason && *reason) cJSON_AddStringToObject(st, "reason", reason);
    cJSON_AddNumberToObject(st, "code", code);
    return st;
}

/* A Status about one object: details carry the name, the group and the plural resource. */
cJSON *ks_status_obj(int code, const char *reason, const struct ks_rtype *rt, const char *name, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cJSON *st = ks_status_new(code, reason, msg);
    if (!st) return NULL;
    cJSON *d = cJSON_CreateObject();
    if (d) {
        if (name) cJSON_AddStringToObject(d, "name", name);
        if (rt) {
            if (rt->group[0]) cJSON_AddStringToObject(d, "group", rt->group);
            cJSON_AddStringToObject(d, "kind", rt->plural);
        }
        cJSON_AddItemToObject(st, "details", d);
    }
    return st;
}
