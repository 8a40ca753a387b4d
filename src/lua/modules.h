/* The luaopen_* functions of the C submodules gathered by core.c. */
#ifndef MS_MODULES_H
#define MS_MODULES_H

#include <lua.h>

int luaopen_moonship_core(lua_State *L);
int luaopen_moonship_core_sched(lua_State *L);
int luaopen_moonship_core_http(lua_State *L);
int luaopen_moonship_core_watch(lua_State *L);
int luaopen_moonship_core_yaml(lua_State *L);
int luaopen_moonship_core_json(lua_State *L);
int luaopen_moonship_core_process(lua_State *L);
int luaopen_moonship_core_kubeconfig(lua_State *L);
int luaopen_moonship_core_term(lua_State *L);
int luaopen_moonship_core_fs(lua_State *L);
int luaopen_moonship_core_codec(lua_State *L);

#endif
