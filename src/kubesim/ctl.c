/* stub */
#include "kubesim.h"
int ks_ctl_start(struct ks_server *s) { (void)s; return 0; }
void ks_ctl_stop(struct ks_server *s) { (void)s; }
void ks_ctl_changed(struct ks_server *s, struct ks_obj *o, enum ks_evtype t) { (void)s; (void)o; (void)t; }
struct ks_obj *ks_ctl_delete(struct ks_server *s, struct ks_obj *o, const char *p) { (void)p; ks_obj_remove(s, o); return NULL; }
int ks_ctl_pod_log(struct ks_server *s, struct ks_obj *pod, const char *c, int prev, size_t *cur, struct ks_buf *out, int *done, char **err)
{ (void)s; (void)pod; (void)c; (void)prev; (void)cur; (void)out; *done = 1; *err = NULL; return 0; }
