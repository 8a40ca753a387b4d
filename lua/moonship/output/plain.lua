-- The plain progress output (CI logs, pipes): one timestamped line per state change, each naming
-- its task, job logs prefixed by the task name and "|", what hooks and moonship say about a task
-- by "▸", and at the end the live view's summary table. Every line of a dry run (its events carry
-- dry_run) says so after the time, and none reads as if something had been deployed. Colour only
-- when asked (--color always): these lines usually end up in a file.
local events = require "moonship.run.events"
local tty = require "moonship.output.tty"

local M = {}

local fmt = string.format

local MARK = {succeeded = "ok", failed = "FAILED", cancelled = "cancelled", recovered = "recovered",
              skipped = "skipped"}
-- A task of a dry run deployed nothing: it passed the dry run, no more.
local DRY_MARK = {succeeded = "passed"}

-- SGR parameters of the words that carry a state.
local STYLE = {ok = "32", passed = "32", FAILED = "31", cancelled = "33", recovered = "36", skipped = "2",
               succeeded = "32", failed = "31", halted = "1;31", interrupted = "33", HALT = "1;31"}

local function plural(n, word) return fmt("%d %s%s", n, word, n == 1 and "" or "s") end

-- plain.sink(write, {logs=, color=, utf8=}) -> function(event) that prints it with write(text).
-- color: true colours the state words and the summary (the caller decides: --color always).
function M.sink(write, opts)
  opts = opts or {}
  local color = opts.color == true
  local utf8 = opts.utf8
  if utf8 == nil then utf8 = tty.utf8_locale() end
  local g = utf8 and tty.GLYPHS.utf8 or tty.GLYPHS.ascii
  local last_progress = {}
  local shown = events.shown_logs()
  -- The live view's state, for its summary table at the end (it prints nothing itself).
  local summary = tty.new {size = function() return 1000, 1000 end, write = function() end, color = color,
                           utf8 = utf8, logs = opts.logs, quiet = true}
  local function paint(word)
    local sgr = color and STYLE[word]
    return sgr and ("\27[" .. sgr .. "m" .. word .. "\27[0m") or word
  end
  return function(ev)
    local ts = os.date("%H:%M:%S")
    if ev.dry_run then ts = ts .. " [dry run]" end
    shown:fold(ev)
    summary:event(ev)
    local mark = ev.dry_run and DRY_MARK[ev.state] or MARK[ev.state]
    local e = ev.event
    local lines = {}
    if e == "run_started" then
      lines[1] = fmt("%s run %s: workflow %s of %s in namespace %s (%s)%s", ts, ev.run, ev.workflow,
        ev.app, ev.namespace, plural(ev.steps or 0, "step"), ev.dry_run and ": nothing will be applied" or "")
    elseif e == "step_started" then
      lines[1] = fmt("%s step %s started%s", ts, ev.step, ev.background and " (in the background)" or "")
    elseif e == "step_finished" then
      -- A failed step whose failures were ignored did finish; only a halting failure failed it.
      local how = (ev.state == "failed" and not ev.halt) and (" with " .. paint("ignored failures"))
        or (": " .. paint(ev.state))
      lines[1] = fmt("%s step %s finished%s", ts, ev.step, how)
    elseif e == "task_started" then
      lines[1] = fmt("%s %s started%s", ts, ev.task, (ev.attempt or 1) > 1 and fmt(" (attempt %d)", ev.attempt) or "")
    elseif e == "task_progress" then
      if last_progress[ev.task] ~= ev.message then
        last_progress[ev.task] = ev.message
        lines[1] = fmt("%s %s: %s", ts, ev.task, ev.message)
      end
    elseif e == "task_finished" then
      lines[1] = fmt("%s %s %s%s", ts, ev.task, paint(mark or ev.state), ev.message and (": " .. ev.message) or "")
      if opts.logs ~= "none" then
        for _, l in ipairs(shown:unshown(ev)) do lines[#lines + 1] = fmt("%s %s | %s", ts, ev.task, l) end
      end
    elseif e == "log" then
      if ev.pod ~= nil then
        if opts.logs ~= "none" then lines[1] = fmt("%s %s | %s", ts, ev.task or "", ev.message) end
      else
        lines[1] = fmt("%s %s %s %s%s", ts, ev.task or "moonship", g.hook,
          ev.hook and ("hook " .. ev.hook .. ": ") or "", ev.message)
      end
    elseif e == "run_halting" then
      lines[1] = fmt("%s %s: %s", ts, paint("HALT"), ev.message)
    elseif e == "rollback_started" then
      lines[1] = fmt("%s %s", ts, tty.rollback_line(ev))
    elseif e == "run_finished" then
      lines[1] = fmt("%s run %s %s (exit %d)%s%s", ts, ev.run, paint(tty.RUN_WORDS[ev.state] or ev.state), ev.exit_code,
        ev.dry_run and ": nothing was applied" or "",
        ev.rollback and ("; rollback " .. paint(ev.rollback == "unavailable" and "unavailable" or ev.rollback)) or "")
      lines[#lines + 1] = ""
      for _, l in ipairs(summary:summary_lines()) do lines[#lines + 1] = l end
    end
    if #lines > 0 then write(table.concat(lines, "\n") .. "\n") end
  end
end

return M
