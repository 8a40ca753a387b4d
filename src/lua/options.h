/* Strict options tables for every binding: an unknown key is an error, never a silent default. */
#ifndef MS_OPTIONS_H
#define MS_OPTIONS_H

#include <lua.h>

/* Raises "<what>: unknown option '<key>'" unless every key of the table at idx is one of the
 * NULL-terminated names; raises if idx is not a table. */
void ms_check_options(lua_State *L, int idx, const char *what, const char *const names[]);

#endif
