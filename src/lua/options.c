/* The one rule for options tables: every key must be a known name. */
#include <lauxlib.h>
#include <string.h>

#include "lua/options.h"

void ms_check_options(lua_State *L, int idx, const char *what, const char *const names[])
{
    idx = lua_absindex(L, idx);
    luaL_checktype(L, idx, LUA_TTABLE);
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        int known = 0;
        if (lua_type(L, -1) == LUA_TSTRING)
            for (const char *const *n = names; *n && !known; n++)
                known = strcmp(lua_tostring(L, -1), *n) == 0;
        if (!known)
            luaL_error(L, "%s: unknown option '%s'", what, luaL_tolstring(L, -1, NULL));
    }
}
