/* require "moonship.core".kubeconfig: kubeconfig.load on core/kubeconfig.c, giving the resolved
 * configuration as a plain Lua table. lua/moonship/kube/kubeconfig.lua adds exec credential
 * plugins. Never yields: the files are small and read once per client. */
#include <lauxlib.h>
#include <lua.h>
#include <stdlib.h>
#include <string.h>

#include "core/codec.h"
#include "core/kubeconfig.h"
#include "lua/modules.h"
#include "lua/options.h"

/* Stack slots of kubeconfig.load. */
enum { SLOT_OPTS = 1, SLOT_ENV = 2, SLOT_RESULT = 3 };

static void set_string(lua_State *L, const char *key, const char *s)
{
    if (s) {
        lua_pushstring(L, s);
        lua_setfield(L, -2, key);
    }
}

static void set_bytes(lua_State *L, const char *key, const char *s, size_t len)
{
    if (s) {
        lua_pushlstring(L, s, len);
        lua_setfield(L, -2, key);
    }
}

/* Pushes the ExecCredential spec.cluster object kubectl sends with provideClusterInfo. */
static void push_cluster_info(lua_State *L, const struct ms_kubeconfig *c)
{
    lua_createtable(L, 0, 5);
    set_string(L, "server", c->server);
    set_string(L, "tls-server-name", c->server_name);
    set_string(L, "proxy-url", c->proxy_url);
    if (c->insecure) {
        lua_pushboolean(L, 1);
        lua_setfield(L, -2, "insecure-skip-tls-verify");
    }
    if (c->ca) {
        char *b64 = ms_base64_encode(c->ca, c->ca_len);
        if (b64 == NULL)
            luaL_error(L, "kubeconfig.load: out of memory");
        lua_pushstring(L, b64);
        free(b64);
        lua_setfield(L, -2, "certificate-authority-data");
    }
}

static void push_exec(lua_State *L, const struct ms_kubeconfig *c)
{
    const struct ms_kube_exec *x = c->exec;
    lua_createtable(L, 0, 8);
    set_string(L, "api_version", x->api_version);
    set_string(L, "command", x->command);
    set_string(L, "install_hint", x->install_hint);
    set_string(L, "interactive_mode", x->interactive_mode);
    lua_pushboolean(L, x->provide_cluster_info);
    lua_setfield(L, -2, "provide_cluster_info");
    lua_createtable(L, (int)x->nargs, 0);
    for (size_t i = 0; i < x->nargs; i++) {
        lua_pushstring(L, x->args[i]);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    lua_setfield(L, -2, "args");
    lua_createtable(L, (int)x->nenv, 0);
    for (size_t i = 0; i < x->nenv; i++) {
        lua_createtable(L, 0, 2);
        set_string(L, "name", x->env[i].name);
        set_string(L, "value", x->env[i].value);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    lua_setfield(L, -2, "env");
    if (x->provide_cluster_info) {
        push_cluster_info(L, c);
        lua_setfield(L, -2, "cluster");
    }
}

static void push_config(lua_State *L, const struct ms_kubeconfig *c)
{
    static const char *const kinds[] = {"none", "token", "basic", "cert", "exec"};
    lua_createtable(L, 0, 14);
    set_string(L, "server", c->server);
    set_bytes(L, "ca", c->ca, c->ca_len);
    lua_pushboolean(L, c->insecure);
    lua_setfield(L, -2, "insecure");
    set_string(L, "server_name", c->server_name);
    set_string(L, "proxy", c->proxy_url);
    set_string(L, "namespace", c->namespace);
    set_string(L, "context", c->context);
    set_string(L, "cluster", c->cluster);
    set_string(L, "user", c->user);
    lua_pushboolean(L, c->in_cluster);
    lua_setfield(L, -2, "in_cluster");

    lua_createtable(L, 0, 8);
    lua_pushstring(L, kinds[c->auth]);
    lua_setfield(L, -2, "kind");
    set_string(L, "token", c->token);
    set_string(L, "token_file", c->token_file);
    set_string(L, "username", c->username);
    set_string(L, "password", c->password);
    set_bytes(L, "cert", c->cert, c->cert_len);
    set_bytes(L, "key", c->key, c->key_len);
    if (c->exec) {
        push_exec(L, c);
        lua_setfield(L, -2, "exec");
    }
    lua_setfield(L, -2, "auth");

    lua_createtable(L, (int)c->nsources, 0);
    for (size_t i = 0; i < c->nsources; i++) {
        lua_pushstring(L, c->sources[i]);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    lua_setfield(L, -2, "source");
}

/* The configuration of a pcall'd push: freed whether or not pushing raised. */
struct holder {
    struct ms_kubeconfig *c; /* owns */
};

static int holder_gc(lua_State *L)
{
    struct holder *h = lua_touserdata(L, 1);
    ms_kubeconfig_free(h->c);
    h->c = NULL;
    return 0;
}

/* kubeconfig.load{kubeconfig=path, context=name, namespace=override, env={NAME=value},
 *                 service_account_dir=path}
 *   -> {server=, ca=, insecure=, server_name=, proxy=, namespace=, context=, cluster=, user=,
 *       in_cluster=, auth={kind=, token=, token_file=, username=, password=, cert=, key=,
 *       exec={api_version=, command=, args=, env={{name=, value=}...}, install_hint=,
 *       provide_cluster_info=, interactive_mode=, cluster=}}, source={files...}}
 *   | nil, message, "kubeconfig"
 * env (for tests) replaces the process environment for KUBECONFIG, HOME and
 * KUBERNETES_SERVICE_HOST/PORT. Raises on misuse; never yields. */
static int l_kubeconfig_load(lua_State *L)
{
    static const char *const names[] = {"kubeconfig",          "context", "namespace", "env",
                                        "service_account_dir", NULL};
    if (lua_isnoneornil(L, 1)) {
        lua_settop(L, 0);
        lua_newtable(L);
    }
    ms_check_options(L, SLOT_OPTS, "kubeconfig.load", names);
    lua_settop(L, SLOT_OPTS);
    struct ms_kubeconfig_opts o;
    memset(&o, 0, sizeof o);
    o.kubeconfig = ms_opt_string(L, SLOT_OPTS, "kubeconfig", NULL, "kubeconfig.load");
    o.context = ms_opt_string(L, SLOT_OPTS, "context", NULL, "kubeconfig.load");
    o.namespace = ms_opt_string(L, SLOT_OPTS, "namespace", NULL, "kubeconfig.load");
    o.sa_dir = ms_opt_string(L, SLOT_OPTS, "service_account_dir", NULL, "kubeconfig.load");

    /* env: a NULL-terminated array of "NAME=value", anchored in a table at SLOT_ENV. */
    lua_newtable(L);
    int t = lua_getfield(L, SLOT_OPTS, "env");
    if (t != LUA_TNIL) {
        if (t != LUA_TTABLE)
            return luaL_error(L, "kubeconfig.load: option 'env' must be a table");
        size_t n = 0;
        lua_pushnil(L);
        while (lua_next(L, -2)) {
            if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING)
                return luaL_error(L, "kubeconfig.load: option 'env' must map names to strings");
            lua_pushfstring(L, "%s=%s", lua_tostring(L, -2), lua_tostring(L, -1));
            lua_rawseti(L, SLOT_ENV, (lua_Integer)++n);
            lua_pop(L, 1);
        }
        const char **env = lua_newuserdatauv(L, (n + 1) * sizeof *env, 0);
        for (size_t i = 0; i < n; i++) {
            lua_rawgeti(L, SLOT_ENV, (lua_Integer)i + 1);
            env[i] = lua_tostring(L, -1); /* anchored by the table */
            lua_pop(L, 1);
        }
        env[n] = NULL;
        o.env = env;
        lua_rawsetp(L, SLOT_ENV, env); /* keeps the array alive */
    }
    lua_settop(L, SLOT_ENV);

    struct holder *h = lua_newuserdatauv(L, sizeof *h, 0);
    h->c = NULL;
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, holder_gc);
    lua_setfield(L, -2, "__gc");
    lua_setmetatable(L, -2);
    char *err = NULL;
    int rc = ms_kubeconfig_load(&o, &h->c, &err);
    if (rc != 0) {
        int n = ms_fail(L, "kubeconfig", "%s", err ? err : "out of memory");
        free(err);
        return n;
    }
    push_config(L, h->c);
    ms_kubeconfig_free(h->c);
    h->c = NULL;
    return 1;
}

static const luaL_Reg funcs[] = {
    {"load", l_kubeconfig_load},
    {NULL, NULL},
};

int luaopen_moonship_core_kubeconfig(lua_State *L)
{
    luaL_newlib(L, funcs);
    return 1;
}
