-- Child processes on the scheduler: process.run (capture a command's output) and
-- process.spawn (a Process object to stream from and write to), from the C core, plus
-- helpers. Every call that waits must run inside a task.
local core = require("moonship.core").process

local M = {
  run = core.run,
  spawn = core.spawn,
  wait_detached = core.wait_detached,
  detached = core.detached,
}

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
