-- The live view without a terminal: events in, frames out (a fake clock and size), checked on
-- what each frame writes: marks, details, widths, incremental redraws, resizes, the height
-- limit, logs, colors and the summary table.
local tty = require "moonship.output.tty"

local ESC = "\27"

-- A view on a fake terminal; frames are collected in v.frames.
local function view(opts)
  opts = opts or {}
  local t = {now = 0, cols = opts.cols or 100, rows = opts.rows or 30}
  local frames = {}
  local v = tty.new {
    size = function() return t.cols, t.rows end,
    now = function() return t.now end,
    write = function(s) frames[#frames + 1] = s end,
    color = opts.color, utf8 = opts.utf8, logs = opts.logs,
  }
  v.frames, v.term = frames, t
  return v
end

-- The text a frame writes, without control sequences, as lines.
local function text_lines(frame)
  local s = frame:gsub(ESC .. "%[[%d;?]*[%a]", ""):gsub("\r", "")
  local lines = {}
  for l in s:gmatch("([^\n]*)\n") do lines[#lines + 1] = l end
  return lines
end

local function shop_start(v)
  v:event {event = "run_started", t = 0, run = "R1", workflow = "deploy", app = "shop", namespace = "default",
           steps = 3, tasks = {"services.frontend", "jobs.migrate", "jobs.scrub", "services.backend"}}
  v:event {event = "step_started", t = 0, step = "frontend", index = 1, background = true}
  v:event {event = "task_started", t = 0, task = "services.frontend", step = "frontend", attempt = 1}
  v:event {event = "step_started", t = 0, step = "migrate", index = 2}
  v:event {event = "task_started", t = 0, task = "jobs.migrate", step = "migrate", attempt = 1}
end

local function last(v) return v.frames[#v.frames] end

-- A run that pruned two objects after its one step (the engine's prune step).
local PRUNE_RUN = require("support.events").pruned_run()

local function find(lines, text)
  for _, l in ipairs(lines) do if l:find(text, 1, true) then return l end end
end

describe("tty view", function()
  it("draws a header and one line per task with its mark, step, elapsed time and detail", function()
    local v = view()
    shop_start(v)
    v.term.now = 62
    v:event {event = "task_progress", t = 1, task = "services.frontend", step = "frontend",
             message = "2/3 replicas ready", ready = 2, desired = 3}
    v:event {event = "task_progress", t = 20, task = "jobs.migrate", step = "migrate",
             message = "job running: 1 active, 0 succeeded, 0 failed", phase = "job_running"}
    v:event {event = "log", t = 21, task = "jobs.migrate", pod = "migrate-x", message = "migrating schema"}
    v:draw()
    local lines = text_lines(last(v))
    assert.equal("jobs.migrate      │ migrating schema", lines[1])
    assert.matches("^deploy shop → default  · step 2/3 migrate %(%+1 in the background%)  · 0/4 done  · 1:02  · run R1$", lines[2])
    assert.equal("  ⠙ services.frontend  frontend (bg)     1:02  2/3 replicas ready", lines[3])
    assert.equal("  ⠙ jobs.migrate       migrate           1:02  job running 0:42 · migrating schema", lines[4])
    assert.equal(4, #lines)
  end)

  it("uses ASCII marks when asked, and tells a UTF-8 locale from others", function()
    local v = view {utf8 = false}
    shop_start(v)
    v:event {event = "task_finished", t = 1, task = "jobs.migrate", step = "migrate", state = "succeeded", attempt = 1}
    v:draw()
    local lines = text_lines(last(v))
    assert.matches("^  [|/%-\\] services%.frontend", lines[2])
    assert.matches("^  %+ jobs%.migrate", lines[3])
    assert.matches("deploy shop %-> default  %- step 2/3", lines[1])
    local env = function(t) return function(k) return t[k] end end
    assert.is_true(tty.utf8_locale(env {LANG = "en_US.UTF-8"}))
    assert.is_true(tty.utf8_locale(env {LC_ALL = "C.utf8", LANG = "C"}))
    assert.is_false(tty.utf8_locale(env {LC_ALL = "C", LANG = "en_US.UTF-8"}))
    assert.is_false(tty.utf8_locale(env {}))
  end)

  it("honours --color and NO_COLOR", function()
    local env = function(t) return function(k) return t[k] end end
    assert.is_true(tty.use_color("auto", true, env {TERM = "xterm"}))
    assert.is_false(tty.use_color("auto", true, env {TERM = "xterm", NO_COLOR = "1"}))
    assert.is_true(tty.use_color("auto", true, env {TERM = "xterm", NO_COLOR = ""}))
    assert.is_false(tty.use_color("auto", false, env {TERM = "xterm"}))
    assert.is_false(tty.use_color("auto", true, env {TERM = "dumb"}))
    assert.is_true(tty.use_color("always", false, env {NO_COLOR = "1"}))
    assert.is_false(tty.use_color("never", true, env {TERM = "xterm"}))
    local colored, plain = view {color = true}, view {color = false}
    for _, v in ipairs {colored, plain} do
      shop_start(v)
      v:event {event = "task_finished", t = 1, task = "jobs.migrate", step = "migrate", state = "failed",
               attempt = 1, message = "job failed"}
      v:draw()
    end
    assert.truthy(last(colored):find(ESC .. "[31m✗" .. ESC .. "[0m", 1, true))
    assert.falsy(last(plain):find(ESC .. "%[[%d;]*m"))
    assert.same(text_lines(last(colored)), text_lines(last(plain)))
  end)

  it("redraws only the lines that changed, in one write, and nothing when nothing changed", function()
    local v = view()
    shop_start(v)
    v:event {event = "task_finished", t = 1, task = "jobs.migrate", step = "migrate", state = "succeeded", attempt = 1}
    v:draw()
    v:draw() -- the spinner of services.frontend moves: its line only
    local frame = last(v)
    assert.equal(2, #v.frames)
    assert.matches("^" .. ESC .. "%[%?7l\r" .. ESC .. "%[3A", frame)
    local lines = text_lines(frame)
    assert.equal(1, #lines)
    assert.matches("services%.frontend", lines[1])
    assert.truthy(frame:find(ESC .. "[1B", 1, true)) -- past the unchanged migrate line
    v:event {event = "task_finished", t = 2, task = "services.frontend", step = "frontend", state = "succeeded", attempt = 1}
    v:draw()
    local n = #v.frames
    assert.is_false(v:animating())
    assert.is_false(v:draw())
    assert.equal(n, #v.frames)
  end)

  it("never writes a line wider than the terminal, cutting with an ellipsis", function()
    local v = view {cols = 50}
    shop_start(v)
    v:event {event = "task_progress", t = 1, task = "services.frontend", step = "frontend",
             message = "0/1 replicas ready, CrashLoopBackOff (restart 1) " .. string.rep("x", 80)}
    v:draw()
    for _, l in ipairs(text_lines(last(v))) do
      assert.is_true(tty.width(l) <= 49, l)
    end
    assert.matches("…$", text_lines(last(v))[1])
    assert.matches("…$", text_lines(last(v))[2])
    -- narrow terminals drop the step, then the time column
    assert.is_nil(find(text_lines(last(v)), "(bg)"))
  end)

  it("redraws the whole block after a resize, over the rows the terminal re-wrapped", function()
    local v = view {cols = 100}
    shop_start(v)
    v:draw()
    local widths = {}
    for i, w in ipairs(v.drawn_w) do widths[i] = w end
    v.term.cols = 40
    v:draw()
    local up = 0
    for _, w in ipairs(widths) do up = up + math.max(1, math.ceil(w / 40)) end
    local frame = last(v)
    assert.matches("^" .. ESC .. "%[%?7l\r" .. ESC .. "%[" .. up .. "A", frame)
    assert.truthy(frame:find(ESC .. "[J", 1, true))
    assert.equal(3, #text_lines(frame))
    for _, l in ipairs(text_lines(frame)) do assert.is_true(tty.width(l) <= 39) end
  end)

  it("keeps the block within the screen's height: running tasks first, the rest counted", function()
    local v = view {rows = 6}
    local ids = {}
    for i = 1, 8 do ids[i] = "jobs.j" .. i end
    v:event {event = "run_started", t = 0, run = "R", workflow = "w", app = "a", namespace = "n", steps = 1, tasks = ids}
    v:event {event = "step_started", t = 0, step = "s", index = 1}
    for i = 1, 8 do v:event {event = "task_started", t = 0, task = ids[i], step = "s", attempt = 1} end
    for i = 1, 6 do v:event {event = "task_finished", t = 1, task = ids[i], step = "s", state = "succeeded", attempt = 1} end
    v:draw()
    local lines = text_lines(last(v))
    assert.equal(5, #lines) -- rows - 1: the cursor's line stays on the screen
    assert.truthy(find(lines, "jobs.j7"))
    assert.truthy(find(lines, "jobs.j8"))
    assert.matches("… and 5 succeeded$", lines[5])
  end)

  it("shows job logs above the block by --logs, and failures with their last log line", function()
    local v = view {logs = "none", cols = 120}
    shop_start(v)
    v:event {event = "log", t = 1, task = "jobs.migrate", pod = "p", message = "hidden"}
    v:event {event = "log", t = 1, task = "jobs.migrate", message = "a hook's message\nover two lines"}
    v:event {event = "task_finished", t = 2, task = "services.frontend", step = "frontend", state = "failed",
             attempt = 1, reason = "CrashLoopBackOff", restarts = 3,
             message = "CrashLoopBackOff: pod frontend-1 container frontend (restart 3)",
             logs = {"starting", "fatal: backend \27[31munreachable\27[0m"}}
    v:draw()
    local lines = text_lines(last(v))
    assert.is_nil(find(lines, "hidden"))
    -- what is not job output (no pod) is marked apart from it
    assert.equal("jobs.migrate      ▸ a hook's message", lines[1])
    assert.equal("jobs.migrate      ▸ over two lines", lines[2])
    assert.equal("  ✗ services.frontend  frontend (bg)     0:02  CrashLoopBackOff (restart 3): fatal: backend unreachable",
                 find(lines, "services.frontend"))
  end)

  it("prints a failed job's log lines once, a service's crash logs, and marks what hooks write", function()
    local v = view {cols = 120}
    shop_start(v)
    v:event {event = "task_started", t = 0, task = "jobs.scrub", step = "migrate", attempt = 1}
    for _, l in ipairs {"scrubbing", "table locked"} do
      v:event {event = "log", t = 1, task = "jobs.scrub", pod = "scrub-1", message = l}
    end
    v:event {event = "log", t = 2, task = "jobs.scrub", hook = "on_error", message = "giving up on scrub"}
    v:event {event = "task_finished", t = 2, task = "jobs.scrub", step = "migrate", state = "failed", attempt = 1,
             message = "job failed", logs = {"scrubbing", "table locked"}}
    v:event {event = "task_finished", t = 3, task = "services.frontend", step = "frontend", state = "failed",
             attempt = 1, message = "CrashLoopBackOff", logs = {"fatal: no backend"}}
    v:draw()
    local lines = text_lines(last(v))
    assert.equal("jobs.scrub        │ scrubbing", lines[1])
    assert.equal("jobs.scrub        │ table locked", lines[2])
    assert.equal("jobs.scrub        ▸ hook on_error: giving up on scrub", lines[3])
    assert.equal("services.frontend │ fatal: no backend", lines[4])
    assert.matches("^deploy shop", lines[5])
    -- a second attempt's failure shows its own lines, even when they are the same as before
    v:event {event = "task_started", t = 4, task = "jobs.scrub", step = "migrate", attempt = 2}
    v:event {event = "task_finished", t = 5, task = "jobs.scrub", step = "migrate", state = "failed", attempt = 2,
             message = "job failed", logs = {"scrubbing", "table locked"}}
    v:draw()
    lines = text_lines(last(v))
    assert.equal("jobs.scrub        │ scrubbing", lines[1])
    assert.equal("jobs.scrub        │ table locked", lines[2])
    assert.matches("^deploy shop", lines[3])
  end)

  it("ends with a summary table of every planned task and its last state", function()
    local v = view()
    shop_start(v)
    v:event {event = "task_started", t = 0, task = "jobs.scrub", step = "migrate", attempt = 1}
    v:event {event = "task_finished", t = 3, task = "jobs.scrub", step = "migrate", state = "failed", attempt = 1,
             message = "job failed: BackoffLimitExceeded"}
    v:event {event = "run_halting", t = 3, task = "jobs.scrub", message = "halt_on_error: jobs.scrub failed"}
    v:event {event = "task_finished", t = 3.5, task = "jobs.migrate", step = "migrate", state = "cancelled",
             attempt = 1, message = "halted by jobs.scrub"}
    v:event {event = "task_finished", t = 3.5, task = "services.frontend", step = "frontend", state = "cancelled",
             attempt = 1, message = "halted by jobs.scrub"}
    v:event {event = "task_finished", t = 3.5, task = "services.backend", state = "skipped", attempt = 0,
             message = "not started: run halted"}
    v:event {event = "run_finished", t = 3.6, state = "halted", exit_code = 1, halted_by = "jobs.scrub"}
    v:finish()
    local lines = text_lines(last(v))
    assert.equal("HALT: halt_on_error: jobs.scrub failed", lines[1])
    assert.equal("deploy shop → default: halted in 3.6s (exit 1) · halted by jobs.scrub  · run R1", lines[2])
    assert.equal("  TASK               STEP      STATE        DURATION  ATTEMPTS  MESSAGE", lines[3])
    assert.equal("  services.frontend  frontend  ⊘ cancelled      3.5s         1  halted by jobs.scrub", lines[4])
    assert.equal("  jobs.migrate       migrate   ⊘ cancelled      3.5s         1  halted by jobs.scrub", lines[5])
    assert.equal("  jobs.scrub         migrate   ✗ failed         3.0s         1  job failed: BackoffLimitExceeded", lines[6])
    assert.equal("  services.backend             ↷ skipped           -         0  not started: run halted", lines[7])
    assert.equal(7, #lines)
    assert.is_true(v.finished)
    -- with the plan in run_started, a task that never started has its step
    local w = view()
    w:event {event = "run_started", t = 0, run = "R2", workflow = "deploy", app = "shop", namespace = "default",
             steps = 1, tasks = {"services.backend"}, plan = {{step = "backend", tasks = {"services.backend"}}}}
    w:event {event = "task_finished", t = 0, task = "services.backend", state = "skipped", attempt = 0}
    w:event {event = "run_finished", t = 0, state = "halted", exit_code = 1}
    w:finish()
    assert.matches("^  services%.backend  backend  ↷ skipped", text_lines(last(w))[3])
    assert.same({}, v.drawn) -- the table stays; nothing is redrawn over it
  end)

  it("shows the prune step like any other, and in its table what the prune task deleted", function()
    local v = view()
    for _, ev in ipairs(PRUNE_RUN) do
      v:event(ev)
      if ev.event == "task_progress" then
        v.term.now = ev.t
        v:draw()
        local line
        for _, l in ipairs(text_lines(last(v))) do if l:match("^  %S+ prune +prune ") then line = l end end
        assert.truthy(line, "the prune task's line")
        assert.matches(ev.message .. "$", line)
      end
    end
    assert.truthy(table.concat(v.frames):find("step 2/2 prune", 1, true))
    v:finish()
    local lines = text_lines(last(v))
    assert.equal("  services.web  apps   ✓ succeeded      1.0s         1", lines[3])
    assert.equal("  prune         prune  ✓ succeeded      0.7s         1  deleted 2 objects", lines[4])
  end)

  it("says a run whose failures were ignored finished with them, and gives its table as text", function()
    local v = view {color = true}
    v:event {event = "run_started", t = 0, run = "R4", workflow = "deploy", app = "shop", namespace = "default",
             steps = 1, tasks = {"jobs.scrub"}, plan = {{step = "migrate", tasks = {"jobs.scrub"}}}}
    v:event {event = "task_started", t = 0, task = "jobs.scrub", step = "migrate", attempt = 1}
    v:event {event = "task_finished", t = 2, task = "jobs.scrub", step = "migrate", state = "failed", attempt = 1,
             message = "job failed"}
    v:event {event = "run_finished", t = 2.5, state = "failed", exit_code = 3}
    local plain_lines = {}
    for i, l in ipairs(v:summary_lines()) do plain_lines[i] = l:gsub(ESC .. "%[[%d;]*m", "") end
    assert.same({
      "deploy shop → default: finished with ignored failures in 2.5s (exit 3)  · run R4",
      "  TASK        STEP     STATE     DURATION  ATTEMPTS  MESSAGE",
      "  jobs.scrub  migrate  ✗ failed      2.0s         1  job failed",
    }, plain_lines)
    assert.truthy(v:summary_lines()[3]:find(ESC .. "[31m✗ failed" .. ESC .. "[0m", 1, true))
  end)

  it("says in the summary of a dry run that nothing was applied; its tasks passed", function()
    local v = view()
    v:event {event = "run_started", t = 0, run = "R3", workflow = "deploy", app = "shop", namespace = "newns",
             steps = 1, tasks = {"services.web"}, plan = {{step = "web", tasks = {"services.web"}}}, dry_run = true}
    v:event {event = "task_started", t = 0, task = "services.web", step = "web", attempt = 1, dry_run = true}
    v:event {event = "task_finished", t = 0.5, task = "services.web", step = "web", state = "succeeded",
             attempt = 1, dry_run = true}
    v:event {event = "run_finished", t = 0.6, state = "succeeded", exit_code = 0, dry_run = true}
    v:finish()
    local lines = text_lines(last(v))
    assert.equal("deploy shop → newns: succeeded in 0.6s (exit 0)  [dry run: nothing was applied]  · run R3", lines[1])
    assert.equal("  services.web  web   ✓ passed      0.5s         1", lines[3])
  end)

  it("prints a rollback's marker, counts its steps and tasks in the header, and says how it went", function()
    local v = view {cols = 160}
    shop_start(v)
    v:event {event = "run_halting", t = 1, task = "jobs.migrate", cause = "on_error", rollback = true,
             message = "jobs.migrate failed: halted by the on_error hook, which asked for a rollback to the last good run"}
    v:event {event = "rollback_started", t = 1, to = "R0", revision = 2, target_workflow = "deploy", reason = "on_error",
             steps = 1, tasks = {"rollback.services.frontend"},
             plan = {{step = "rollback.frontend", tasks = {"rollback.services.frontend"}}}}
    v:event {event = "step_started", t = 1, step = "rollback.frontend", index = 4}
    v:event {event = "task_started", t = 1, task = "rollback.services.frontend", step = "rollback.frontend", attempt = 1}
    v:draw()
    local lines = text_lines(last(v))
    assert.truthy(find(lines, "ROLLBACK to run R0 (revision 2, workflow deploy), as the on_error hook asked: "
      .. "re-applying its recorded objects"))
    assert.truthy(find(lines, "step 4/4 rollback.frontend"))
    assert.truthy(find(lines, "0/5 done"))
    v:event {event = "task_finished", t = 2, task = "rollback.services.frontend", step = "rollback.frontend",
             state = "succeeded", attempt = 1}
    v:event {event = "run_finished", t = 2, run = "R1", state = "halted", exit_code = 1, halted_by = "jobs.migrate",
             rollback = "succeeded"}
    v:finish()
    lines = text_lines(last(v))
    assert.truthy(find(lines, "halted by jobs.migrate · rollback to run R0: succeeded"))
    assert.truthy(find(lines, "rollback.services.frontend  rollback.frontend  ✓ succeeded"))
  end)

  it("makes text safe for one terminal line and measures it in columns", function()
    assert.equal("a b  c", tty.sanitize("a\tb\r\nc"))
    assert.equal("red", tty.sanitize("\27[1;31mred\27[0m"))
    assert.equal("ok?", tty.sanitize("ok\xff"))
    assert.equal(4, tty.width("日本"))
    assert.equal(3, tty.width("✓ a"))
    assert.equal("日…", tty.truncate("日本語", 4))
    assert.equal("abc", tty.truncate("abc", 3))
    assert.equal("0:07", tty.clock(7.9))
    assert.equal("1:02:03", tty.clock(3723))
    assert.equal("2m05s", tty.duration(125))
  end)
end)

describe("tty.terminal_size", function()
  local function term_reporting(...)
    local size = table.pack(...)
    return {size = function() return table.unpack(size, 1, size.n) end}
  end
  local function env(vars) return function(name) return vars[name] end end

  it("takes the terminal's size when it reports one", function()
    assert.same({132, 50}, {tty.terminal_size(term_reporting(132, 50), env {COLUMNS = "90", LINES = "30"})})
  end)

  it("falls back to COLUMNS and LINES, then 80x24, when the terminal reports none", function()
    local sizeless = term_reporting(nil, "terminal size: the terminal does not report one", "unknown")
    assert.same({90, 30}, {tty.terminal_size(sizeless, env {COLUMNS = "90", LINES = "30"})})
    assert.same({80, 24}, {tty.terminal_size(sizeless, env {})})
    assert.same({80, 24}, {tty.terminal_size(sizeless, env {COLUMNS = "wide", LINES = "-3"})})
  end)
end)
