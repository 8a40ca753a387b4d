/* The FieldsV1 operations that server-side apply and the recording of updates (apply.c) build
 * on: sets of owned fields, the paths of their leaves ("f:spec", "k:{\"name\":\"web\"}", "i:0",
 * "."), and those paths followed into an object. Internal to kubesim; fieldset.c. */
#ifndef KS_FIELDSET_H
#define KS_FIELDSET_H

#include <stddef.h>
#include <cjson/cJSON.h>

#define KS_FIELD_PATH_MAX 64 /* the deepest path walked; leaves below it are not visited */

/* Called with the path of each leaf of a set (n elements; "." marks a list item or a member
 * that also has children). */
typedef void (*ks_leaf_fn)(const char **path, int n, void *ctx);

/* An associative list: non-empty, and every element has a key (ks_list_key). */
int ks_list_is_assoc(const char *field, const cJSON *arr);
/* The element of arr whose key is key ("k:{...}"), or NULL. */
const cJSON *ks_list_find(const cJSON *arr, const char *field, const char *key);

/* Adds the fields of v, member name of an object, to set. */
void ks_fields_add_member(cJSON *set, const char *name, const cJSON *v);
/* ks_fields_of obj, leaving out the members (top level and metadata's) equal to other's when
 * other is not NULL. */
cJSON *ks_fields_except_same(const cJSON *obj, const cJSON *other, int skip_status);

void ks_fs_walk(const cJSON *set, ks_leaf_fn fn, void *ctx);
int ks_fs_has_leaf(const cJSON *set, const char **path, int n);
int ks_fs_has_prefix(const cJSON *set, const char **path, int n);
void ks_fs_add(cJSON *set, const char **path, int n);
/* Removes the leaf, and the parents it leaves empty. */
void ks_fs_remove(cJSON *set, const char **path, int n);

/* The value at a set's path inside an object; NULL when absent. */
const cJSON *ks_value_at(const cJSON *obj, const char **path, int n);
/* Removes the value at a leaf path from an object (a list item for "k:" paths). */
void ks_value_remove(cJSON *obj, const char **path, int n);
/* The path as kubectl prints a conflicting field: ".spec.containers[name=\"web\"].image". */
void ks_path_pretty(const char **path, int n, char *out, size_t sz);

#endif
