/* require "moonship.core": one table holding the C submodules (sched, http, yaml, json, ...),
 * each also registered as package.loaded["moonship.core.<name>"], plus version strings. */
#include <lauxlib.h>
#include <lua.h>

#include "modules.h"
#include "core/version.h"

static const luaL_Reg submodules[] = {
    {"sched", luaopen_moonship_core_sched},
    {NULL, NULL},
};

int luaopen_moonship_core(lua_State *L)
{
    lua_newtable(L);
    for (const luaL_Reg *m = submodules; m->name; m++) {
        lua_pushfstring(L, "moonship.core.%s", m->name);
        luaL_requiref(L, lua_tostring(L, -1), m->func, 0);
        lua_setfield(L, -3, m->name);
        lua_pop(L, 1);
    }
    char libs[512];
    ms_version_libraries(libs, sizeof libs);
    lua_pushstring(L, libs);
    lua_setfield(L, -2, "libraries");
    lua_pushstring(L, ms_version());
    lua_setfield(L, -2, "version");
    return 1;
}
