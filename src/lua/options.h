/* Options tables for every binding: an unknown key is an error, never a silent default, and
 * each known key is read by one typed getter with one wording of its errors. */
#ifndef MS_OPTIONS_H
#define MS_OPTIONS_H

#include <lua.h>
#include <stddef.h>

/* Raises "<what>: unknown option '<key>'" unless every key of the table at idx is one of the
 * NULL-terminated names; raises if idx is not a table. */
void ms_check_options(lua_State *L, int idx, const char *what, const char *const names[]);

/* Pushes field key of the table at idx and returns whether it is set; raises "<what>: option
 * '<key>' must be a <type>" when it is set to another type. The caller pops it. */
int ms_opt_field(lua_State *L, int idx, const char *key, int type, const char *what);

/* The string of field key (its length in *len when len is given), or NULL when absent. The
 * string stays alive in the options table. */
const char *ms_opt_string(lua_State *L, int idx, const char *key, size_t *len, const char *what);

/* The seconds of field key, a finite number >= 0 ("must be a non-negative number of seconds"),
 * or dflt when absent. */
double ms_opt_seconds(lua_State *L, int idx, const char *key, double dflt, const char *what);

/* The integer of field key in min..max ("must be an integer in min..max"), or dflt when absent. */
lua_Integer ms_opt_integer(lua_State *L, int idx, const char *key, lua_Integer min, lua_Integer max,
                           lua_Integer dflt, const char *what);

#endif
