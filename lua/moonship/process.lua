-- Child processes on the scheduler (C core: src/lua/process.c). Every call that waits must run
-- inside a task; misuse (unknown option, wrong type, use after close) raises; failures return
-- nil, message, code.
--
--   process.run{argv=, env=, env_extra=, cwd=, stdin=text, timeout=, kill_grace=}
--     -> {code=, signal=, stdout=, stderr=, pid=} | nil, message, code
--     code is nil when a signal ended the child (signal is its number). Codes: "spawn"
--     ("spawn foo: ENOENT: no such file or directory"), "timeout" (SIGTERM, then SIGKILL after
--     kill_grace seconds, default 2), "io" (reading its output failed). Cancelling the task
--     kills the child the same way.
--   process.spawn{argv=, env=, env_extra=, cwd=, stdin="pipe"|"inherit"|"null"|text,
--                 stdout="pipe"(default)|"inherit"|"null", stderr="inherit"(default)|"pipe"|"null",
--                 kill_on_close=true|signal} -> Process | nil, message, "spawn"
--     p:read_line([stream]) -> line | nil at EOF       stream: "stdout" (default) | "stderr"
--     p:read([stream]) -> what has arrived | nil at EOF
--     p:read_all([stream]) -> everything until EOF
--     p:write(data) -> true | nil, message, "io"|"closed"   p:close_stdin()
--       ("io": "write to sh: EPIPE: broken pipe" when the child closed its stdin)
--     p:wait() -> code, signal        p:kill([sig]) ("TERM" default, "INT", "KILL", number)
--     p:pid()   p:exited() -> false | true, code, signal
--     p:close() (also <close> and garbage collection): closes the pipes; a running child is
--     left running (and reaped when it exits) unless kill_on_close was given.
--     Cancelling a task waiting in a Process method only stops its wait.
--   process.wait_detached(): waits until every child left running by a closed Process or a
--     cancelled run has exited. process.detached() -> how many there are.
--   env replaces the environment; env_extra adds to it (or to the inherited one); a false
--   value in either removes a variable.
--   process.quote(s) -> s as one word of a sh command line. moonship runs argv lists, never a
--     shell; this is for the scripts and tests that do build a command line.
local core = require("moonship.core").process

local M = {
  run = core.run,
  spawn = core.spawn,
  wait_detached = core.wait_detached,
  detached = core.detached,
}

function M.quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

-- Runs argv and returns its stdout when it exits with code 0; otherwise nil, a message that
-- ends with the command's stderr, and a code ("exit", "signal", or run's own codes).
function M.output(opts)
  local r, err, code = core.run(opts)
  if not r then return nil, err, code end
  if r.code == 0 then return r.stdout end
  local what = r.code and ("exited with code " .. r.code) or ("killed by signal " .. r.signal)
  local stderr = r.stderr:gsub("%s+$", "")
  local msg = opts.argv[1] .. ": " .. what
  if stderr ~= "" then msg = msg .. ": " .. stderr end
  return nil, msg, r.code and "exit" or "signal"
end

return M
