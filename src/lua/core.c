/* require "moonship.core": one table holding the C submodules (sched, http, yaml, json, ...),
 * each also registered as package.loaded["moonship.core.<name>"], plus version strings; and the
 * bindings' failure helper, ms_fail (modules.h). */
#include <dlfcn.h>
#include <lauxlib.h>
#include <limits.h>
#include <lua.h>
#include <stdarg.h>
#include <unistd.h>

#include "lua/modules.h"
#include "core/version.h"

static const luaL_Reg submodules[] = {
    {"sched", luaopen_moonship_core_sched},
    {"http", luaopen_moonship_core_http},
    {"watch", luaopen_moonship_core_watch},
    {"yaml", luaopen_moonship_core_yaml},
    {"json", luaopen_moonship_core_json},
    {"process", luaopen_moonship_core_process},
    {"kubeconfig", luaopen_moonship_core_kubeconfig},
    {"term", luaopen_moonship_core_term},
    {"fs", luaopen_moonship_core_fs},
    {"codec", luaopen_moonship_core_codec},
    {NULL, NULL},
};

int ms_fail(lua_State *L, const char *code, const char *fmt, ...)
{
    va_list ap;
    lua_pushnil(L);
    va_start(ap, fmt);
    lua_pushvfstring(L, fmt, ap);
    va_end(ap);
    lua_pushstring(L, code);
    return 3;
}

/* Loaded as core.so by a stock lua5.4, the module must never be unloaded when the state
 * closes: libuv's thread pool, libcurl and OpenSSL keep state and threads that outlive it. */
static void pin_module(void)
{
    Dl_info info;
    if (dladdr((void *)pin_module, &info) && info.dli_fname)
        dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE);
}

/* core.libraries() -> "libuv 1.44.2, libcurl/7.88.1 ..., libyaml 0.2.5": a function, since
 * curl_version() costs more than the rest of starting up (it asks every TLS and compression
 * library it was built with). */
static int l_libraries(lua_State *L)
{
    char libs[512];
    ms_version_libraries(libs, sizeof libs);
    lua_pushstring(L, libs);
    return 1;
}

int luaopen_moonship_core(lua_State *L)
{
    pin_module();
    lua_newtable(L);
    for (const luaL_Reg *m = submodules; m->name; m++) {
        lua_pushfstring(L, "moonship.core.%s", m->name);
        luaL_requiref(L, lua_tostring(L, -1), m->func, 0);
        lua_setfield(L, -3, m->name);
        lua_pop(L, 1);
    }
    lua_pushcfunction(L, l_libraries);
    lua_setfield(L, -2, "libraries");
    lua_pushstring(L, ms_version());
    lua_setfield(L, -2, "version");
    /* The running executable, so that tools installed beside it (moonship-kubesim) are found. */
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        lua_pushlstring(L, exe, (size_t)n);
        lua_setfield(L, -2, "executable");
    }
    /* The file this code was loaded from: core.so under a stock lua5.4 (the executable when
     * linked into moonship), so that a kubesim installed with it is found too. */
    Dl_info info;
    if (dladdr((void *)pin_module, &info) && info.dli_fname) {
        lua_pushstring(L, info.dli_fname);
        lua_setfield(L, -2, "module_path");
    }
    return 1;
}
