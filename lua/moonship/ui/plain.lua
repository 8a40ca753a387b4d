-- The plain progress output (CI logs, pipes): one timestamped line per state change, each naming
-- its task, and job logs prefixed by the task name. Every line of a dry run (its events carry
-- dry_run) says so after the time, and none reads as if something had been deployed.
local M = {}

local fmt = string.format

local MARK = {succeeded = "ok", failed = "FAILED", cancelled = "cancelled", recovered = "recovered",
              skipped = "skipped"}
-- A task of a dry run deployed nothing: it passed the dry run, no more.
local DRY_MARK = {succeeded = "passed"}

-- plain.sink(write) -> function(event) that prints it with write(line)
function M.sink(write, opts)
  opts = opts or {}
  local last_progress = {}
  return function(ev)
    local ts = os.date("%H:%M:%S")
    if ev.dry_run then ts = ts .. " [dry run]" end
    local mark = ev.dry_run and DRY_MARK[ev.state] or MARK[ev.state]
    local e = ev.event
    local line
    if e == "run_started" then
      line = fmt("%s run %s: workflow %s of %s in namespace %s (%d steps)%s", ts, ev.run, ev.workflow,
        ev.app, ev.namespace, ev.steps, ev.dry_run and ": nothing will be applied" or "")
    elseif e == "step_started" then
      line = fmt("%s step %s started%s", ts, ev.step, ev.background and " (in the background)" or "")
    elseif e == "step_finished" then
      line = fmt("%s step %s finished: %s", ts, ev.step, ev.state)
    elseif e == "task_started" then
      line = fmt("%s %s started%s", ts, ev.task, (ev.attempt or 1) > 1 and fmt(" (attempt %d)", ev.attempt) or "")
    elseif e == "task_progress" then
      if last_progress[ev.task] ~= ev.message then
        last_progress[ev.task] = ev.message
        line = fmt("%s %s: %s", ts, ev.task, ev.message)
      end
    elseif e == "task_finished" then
      line = fmt("%s %s %s%s", ts, ev.task, mark or ev.state, ev.message and (": " .. ev.message) or "")
      if ev.logs and #ev.logs > 0 then
        local lines = {line}
        for _, l in ipairs(ev.logs) do lines[#lines + 1] = fmt("%s %s | %s", ts, ev.task, l) end
        line = table.concat(lines, "\n")
      end
    elseif e == "log" then
      if opts.logs ~= "none" then
        line = fmt("%s %s | %s", ts, ev.task or "moonship", ev.message)
      end
    elseif e == "run_halting" then
      line = fmt("%s HALT: %s", ts, ev.message)
    elseif e == "run_finished" then
      line = fmt("%s run %s %s (exit %d)%s", ts, ev.run, ev.state, ev.exit_code,
        ev.dry_run and ": nothing was applied" or "")
    end
    if line then write(line .. "\n") end
  end
end

return M
