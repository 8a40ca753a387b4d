-- The plain output (CI logs, pipes): events in, the exact lines out (their timestamps aside):
-- job output once, what hooks write marked apart from it, the words for steps and runs whose
-- failures were ignored, the halt's cause, the summary table, and colour only when asked.
local plain = require "moonship.output.plain"

local ESC = "\27"

-- A sink writing into a list; lines() gives what it wrote, without the "HH:MM:SS " of each line.
local function sink(opts)
  local out = {}
  local fn = plain.sink(function(text) out[#out + 1] = text end, opts or {utf8 = true})
  local function lines()
    local all = {}
    for l in table.concat(out):gmatch("([^\n]*)\n") do all[#all + 1] = (l:gsub("^%d%d:%d%d:%d%d ", "")) end
    return all
  end
  return fn, lines
end

local PLAN = {{step = "migrate", tasks = {"jobs.scrub"}}}

-- A run that pruned two objects after its one step (the engine's prune step).
local PRUNE_RUN = require("support.events").pruned_run()

describe("plain output", function()
  it("prints the prune step like any other: each deletion, and what the task did", function()
    local fn, lines = sink()
    for _, ev in ipairs(PRUNE_RUN) do fn(ev) end
    local out = lines()
    assert.same({"step prune started", "prune started", "prune: deleted deployment/worker",
                 "prune: deleted service/worker", "prune ok: deleted 2 objects", "step prune finished: succeeded"},
      {table.unpack(out, 6, 11)})
    assert.equal("  prune         prune  ✓ succeeded      0.7s         1  deleted 2 objects", out[#out])
  end)

  it("prints a failed job's output once, marks hook lines, and ends with the summary table", function()
    local emit, lines = sink()
    emit {event = "run_started", t = 0, run = "R1", workflow = "deploy", app = "shop", namespace = "default",
          steps = 1, tasks = {"jobs.scrub"}, plan = PLAN}
    emit {event = "step_started", t = 0, step = "migrate", index = 1}
    emit {event = "task_started", t = 0, task = "jobs.scrub", step = "migrate", attempt = 1}
    emit {event = "log", t = 1, task = "jobs.scrub", pod = "scrub-x", message = "cannot scrub: table locked"}
    emit {event = "log", t = 1, task = "jobs.scrub", hook = "on_error", message = "scrub failed; ignoring it"}
    emit {event = "task_finished", t = 2, task = "jobs.scrub", step = "migrate", state = "failed", attempt = 1,
          message = "job failed: BackoffLimitExceeded", logs = {"cannot scrub: table locked"}}
    emit {event = "step_finished", t = 2, step = "migrate", index = 1, state = "failed"}
    emit {event = "run_finished", t = 2, run = "R1", state = "failed", exit_code = 3, failed = 1}
    assert.same({
      "run R1: workflow deploy of shop in namespace default (1 step)",
      "step migrate started",
      "jobs.scrub started",
      "jobs.scrub | cannot scrub: table locked",
      "jobs.scrub ▸ hook on_error: scrub failed; ignoring it",
      "jobs.scrub FAILED: job failed: BackoffLimitExceeded",
      "step migrate finished with ignored failures",
      "run R1 finished with ignored failures (exit 3)",
      "",
      "deploy shop → default: finished with ignored failures in 2.0s (exit 3)  · run R1",
      "  TASK        STEP     STATE     DURATION  ATTEMPTS  MESSAGE",
      "  jobs.scrub  migrate  ✗ failed      2.0s         1  job failed: BackoffLimitExceeded: cannot scrub: table locked",
    }, lines())
  end)

  it("prints a service's crash logs, which nothing streamed, and none with --logs none", function()
    for _, logs in ipairs {"all", "none"} do
      local emit, lines = sink {utf8 = false, logs = logs}
      emit {event = "task_finished", t = 1, task = "services.api", step = "s", state = "failed", attempt = 1,
            message = "CrashLoopBackOff", logs = {"fatal: no database"}}
      local want = {"services.api FAILED: CrashLoopBackOff"}
      if logs == "all" then want[2] = "services.api | fatal: no database" end
      assert.same(want, lines())
    end
  end)

  it("names what halted the run, and says a halting step failed", function()
    local emit, lines = sink()
    emit {event = "run_halting", t = 1, task = "jobs.seed", cause = "on_error",
          message = "jobs.seed failed: halted by the on_error hook"}
    emit {event = "step_finished", t = 1, step = "app", index = 2, state = "failed", halt = true}
    emit {event = "log", t = 1, hook = "cleanup", message = "run R halted"}
    assert.same({"HALT: jobs.seed failed: halted by the on_error hook", "step app finished: failed",
                 "moonship ▸ hook cleanup: run R halted"}, lines())
  end)

  it("marks a rollback after the halt, lists its tasks in the summary, and says how it went", function()
    local emit, lines = sink()
    emit {event = "run_started", t = 0, run = "R3", workflow = "deploy", app = "shop", namespace = "default",
          steps = 1, tasks = {"services.web"}, plan = {{step = "web", tasks = {"services.web"}}}}
    emit {event = "task_finished", t = 1, task = "services.web", step = "web", state = "failed", attempt = 1,
          message = "CrashLoopBackOff", halt = true}
    emit {event = "run_halting", t = 1, task = "services.web", cause = "on_error", rollback = true,
          message = "services.web failed: halted by the on_error hook, which asked for a rollback to the last good run"}
    emit {event = "rollback_started", t = 1, to = "R1", revision = 4, target_workflow = "deploy", reason = "on_error",
          steps = 1, tasks = {"rollback.services.web"}, plan = {{step = "rollback.web", tasks = {"rollback.services.web"}}}}
    emit {event = "task_started", t = 1, task = "rollback.services.web", step = "rollback.web", attempt = 1}
    emit {event = "task_finished", t = 2, task = "rollback.services.web", step = "rollback.web", state = "succeeded",
          attempt = 1}
    emit {event = "run_finished", t = 2, run = "R3", state = "halted", exit_code = 1, failed = 1,
          halted_by = "services.web", rollback = "succeeded"}
    assert.same({
      "run R3: workflow deploy of shop in namespace default (1 step)",
      "services.web FAILED: CrashLoopBackOff",
      "HALT: services.web failed: halted by the on_error hook, which asked for a rollback to the last good run",
      "ROLLBACK to run R1 (revision 4, workflow deploy), as the on_error hook asked: re-applying its recorded objects",
      "rollback.services.web started",
      "rollback.services.web ok",
      "run R3 halted (exit 1); rollback succeeded",
      "",
      "deploy shop → default: halted in 2.0s (exit 1) · halted by services.web · rollback to run R1: succeeded  · run R3",
      "  TASK                   STEP          STATE        DURATION  ATTEMPTS  MESSAGE",
      "  services.web           web           ✗ failed            -         1  CrashLoopBackOff",
      "  rollback.services.web  rollback.web  ✓ succeeded      1.0s         1",
    }, lines())
  end)

  it("colours the state words and the summary only when asked", function()
    local events = {
      {event = "run_started", t = 0, run = "R2", workflow = "w", app = "a", namespace = "n", steps = 2,
       tasks = {"jobs.j"}, plan = {{step = "s", tasks = {"jobs.j"}}}},
      {event = "task_started", t = 0, task = "jobs.j", step = "s", attempt = 1},
      {event = "task_finished", t = 1, task = "jobs.j", step = "s", state = "succeeded", attempt = 1},
      {event = "run_finished", t = 1, run = "R2", state = "succeeded", exit_code = 0, failed = 0},
    }
    local colored, colored_lines = sink {utf8 = true, color = true}
    local uncolored, uncolored_lines = sink {utf8 = true}
    for _, ev in ipairs(events) do
      colored(ev)
      uncolored(ev)
    end
    local c, u = colored_lines(), uncolored_lines()
    assert.equal("run R2: workflow w of a in namespace n (2 steps)", u[1])
    assert.equal("jobs.j " .. ESC .. "[32mok" .. ESC .. "[0m", c[3])
    assert.equal("jobs.j ok", u[3])
    assert.equal("run R2 " .. ESC .. "[32msucceeded" .. ESC .. "[0m (exit 0)", c[4])
    assert.truthy(c[6]:find(ESC .. "[1mw a → n" .. ESC .. "[0m", 1, true))
    for _, l in ipairs(u) do assert.falsy(l:find(ESC, 1, true), l) end
    local stripped = {}
    for i, l in ipairs(c) do stripped[i] = l:gsub(ESC .. "%[[%d;]*m", "") end
    assert.same(u, stripped)
  end)
end)
