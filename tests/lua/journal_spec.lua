-- moonship.run.journal: a sink of the run's events. Each event gets its time, run and workflow, goes
-- to the file (one JSON line each, as it happens) and to every sink; a sink that fails is reported
-- once and replaced by its fallback, never failing the run; the snapshot is the run's state.
local journal_mod = require "moonship.run.journal"
local json = require "moonship.json"
local sched = require "moonship.sched"

local function tmpdir()
  local p = os.tmpname()
  os.remove(p)
  return p
end

local function new(opts)
  local warned = {}
  opts = opts or {}
  opts.app, opts.workflow, opts.namespace = "shop", "deploy", "default"
  opts.warn = function(text) warned[#warned + 1] = text end
  return journal_mod.new(opts), warned
end

describe("journal", function()
  it("writes every event to its file as it happens, with time, run and workflow", function()
    local dir = tmpdir()
    local j = new {dir = dir, run_id = "R1"}
    sched.run(function()
      j:emit {event = "run_started", tasks = {"services.web"}, plan = {{step = "s", tasks = {"services.web"}}}}
      j:emit {event = "task_started", task = "services.web", step = "s", attempt = 1}
    end)
    local lines = {}
    for line in io.lines(dir .. "/R1.jsonl") do lines[#lines + 1] = json.decode(line) end
    assert.equal(2, #lines)
    assert.same({"run_started", "R1", "deploy"}, {lines[1].event, lines[1].run, lines[1].workflow})
    assert.is_number(lines[2].t)
    j:close()
  end)

  it("marks every event of a dry run", function()
    local j = new {dry_run = true}
    local seen = {}
    j:add_sink(function(ev) seen[#seen + 1] = ev end)
    sched.run(function() j:emit {event = "log", message = "hello"} end)
    assert.is_true(seen[1].dry_run)
  end)

  it("refuses an event outside the contract", function()
    local j = new()
    assert.has_error(function() sched.run(function() j:emit {event = "task_exploded"} end) end)
  end)

  it("reports a failing sink once and goes on with its fallback, which sees that event too", function()
    local j, warned = new()
    local plain, other = {}, {}
    j:add_sink(function(ev) if ev.event == "task_started" then error("the view broke") end end,
               {name = "the live view", fallback = function(ev) plain[#plain + 1] = ev.event end})
    j:add_sink(function(ev) other[#other + 1] = ev.event end)
    sched.run(function()
      j:emit {event = "run_started", tasks = {}}
      j:emit {event = "task_started", task = "services.web", attempt = 1}
      j:emit {event = "task_finished", task = "services.web", state = "succeeded", attempt = 1}
    end)
    assert.equal(1, #warned)
    assert.matches("^moonship: the live view failed: .*the view broke; going on with plain lines\n$", warned[1])
    assert.same({"task_started", "task_finished"}, plain)
    assert.same({"run_started", "task_started", "task_finished"}, other)
  end)

  it("keeps the run's state for its snapshot, and journal.tasks/order for the Lua API", function()
    local j = new()
    sched.run(function()
      j:emit {event = "run_started", tasks = {"jobs.a", "jobs.b"},
              plan = {{step = "s", tasks = {"jobs.a", "jobs.b"}}}}
      j:emit {event = "task_started", task = "jobs.a", step = "s", attempt = 1}
      j:emit {event = "task_progress", task = "jobs.a", step = "s", message = "applied job/a",
              objects = {{kind = "Job", name = "a"}}}
      j:emit {event = "task_finished", task = "jobs.a", step = "s", state = "succeeded", attempt = 1, spec_hash = "h"}
      j:emit {event = "run_finished", state = "succeeded", exit_code = 0}
    end)
    local snap = j:snapshot()
    assert.equal("succeeded", snap.state)
    assert.same({"jobs.a", "jobs.b"}, {snap.tasks[1].id, snap.tasks[2].id})
    assert.same({"succeeded", 1, "h"}, {snap.tasks[1].state, snap.tasks[1].attempts, snap.tasks[1].spec_hash})
    assert.same({{kind = "Job", name = "a"}}, snap.tasks[1].objects)
    assert.equal("pending", snap.tasks[2].state)
    assert.same({"jobs.a", "jobs.b"}, j.order)
    assert.equal("succeeded", j.tasks["jobs.a"].state)
  end)
end)
