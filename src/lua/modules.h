/* What every binding shares: the luaopen_* functions of the C submodules gathered by core.c,
 * and the one way a binding reports a failure. */
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

/* Misuse (a wrong argument type, an unknown option, use after close) raises; a failure of the
 * environment or of the input returns nil, message, code, pushed by ms_fail. The message
 * starts with what failed ("spawn foo: ENOENT: no such file or directory"); the code is one of
 * these short words (README.md, "Errors: nil, message, code", has the same table):
 *   io          a file or system call failed; the message carries the OS error (fs.*,
 *               term.size, term.write, Process read/write/kill)
 *   parse       text that does not parse, or that a limit refuses; the message says where
 *               (yaml.load "file:line:col: ...", json.decode "json: line:col/offset: ...",
 *               watch decoder:feed)
 *   nomem       out of memory (http.request, watch decoder:feed)
 *   unknown     term.size: the terminal does not report its size
 *   spawn       process.run/spawn: the command could not be started
 *   exited      Process:kill: the process has exited already
 *   kubeconfig  kubeconfig.load: no usable configuration
 *   timeout     a time limit passed (process.run, http.request, sched.park)
 *   closed      the other end or our side closed (Process:write after close_stdin, a connection
 *               dropped mid-response, a resize watcher closed while waited on)
 *   connect, tls, resolve, cancelled, http, stopped   http.request: ms_http_result_token's
 *               words (core/http.h says what each means)
 * Lua modules built on these keep their codes and add their own (moonship.kube: "not_found",
 * "conflict", "unauthorized", ...). */

/* Pushes nil, the message (lua_pushfstring's format), code and returns 3, so that a binding
 * ends with `return ms_fail(L, "io", "%s: %s", path, strerror(errno));`. Raises only
 * when memory runs out. */
int ms_fail(lua_State *L, const char *code, const char *fmt, ...);

#endif
