-- moonship.run.engine on the loop with a scripted client (tests/support/fake_client.lua): each line
-- of DESIGN.md §3 in milliseconds, read from the run's events. The end-to-end specs check the
-- same against kubesim; these pin the engine alone.
local engine = require "moonship.run.engine"
local hooks_mod = require "moonship.run.hooks"
local journal_mod = require "moonship.run.journal"
local sched = require "moonship.sched"
local template = require "moonship.model.template"
local fake_client = require "support.fake_client"
local proc = require "support.proc"
local EXIT = require "moonship.exit"

local TEMPLATE = [[
app: shop
services:
- {name: frontend, image: example/frontend:1}
- {name: backend, image: example/backend:1}
- {name: cache, image: example/cache:1}
- {name: search, image: example/search:1}
jobs:
- {name: migrate, image: example/tools:1}
- {name: scrub, image: example/tools:1}
workflows:
- name: deploy
  parallelize:
  - {step: frontend, tasks: [services.frontend], wait_for_finish: false}
  - {step: migrate, tasks: [jobs.migrate, jobs.scrub], halt_on_error: true}
  - {step: backend, tasks: [services.backend]}
- name: wide
  parallelize:
  - {step: all, tasks: [services.frontend, services.backend, services.cache, services.search], max_parallel: 2}
- name: serial
  order_from: [services.cache, services.backend]
]]

-- What load(path) makes of text written to a file of its own.
local function loaded_from(text, load)
  local path = proc.write_file(os.tmpname(), text)
  local value = assert(load(path))
  os.remove(path)
  return value
end

local MODEL = loaded_from(TEMPLATE, template.load)

-- Runs a workflow on the scripted client: the result, the events, the client.
local function run(workflow, script, opts)
  opts = opts or {}
  local client = opts.client or fake_client.new(script)
  if opts.client then client.script = script end
  local events = {}
  local journal = journal_mod.new {app = "shop", workflow = workflow, namespace = "default"}
  journal:add_sink(function(ev) events[#events + 1] = ev end)
  local hooks = opts.hooks or hooks_mod.load(nil)
  local result = sched.run(function()
    return engine.run {
      model = MODEL, workflow = template.workflow(MODEL, workflow), client = client, hooks = hooks,
      journal = journal, namespace = "default", settle = opts.settle or 0.05, logs = "none",
      resume = opts.resume, concurrency = opts.concurrency, record = opts.record,
      prune = opts.prune, applyset = opts.applyset, dry_run = opts.dry_run,
    }
  end)
  return result, events, client
end

-- The index of the first event with these fields.
local function at(events, fields)
  for i, ev in ipairs(events) do
    local ok = true
    for k, v in pairs(fields) do if ev[k] ~= v then ok = false break end end
    if ok then return i end
  end
end

local function final(events, task)
  local state
  for _, ev in ipairs(events) do
    if ev.event == "task_finished" and ev.task == task then state = ev.state end
  end
  return state
end

local function hooks_from(text) return loaded_from(text, hooks_mod.load) end

describe("engine", function()
  it("runs steps in order: the next starts when every task of the last has finished", function()
    local result, ev = run("deploy", {frontend = {ready_after = 0}, ["migrate-"] = {ready_after = 0.01},
                                      ["scrub-"] = {ready_after = 0.03}})
    assert.equal(EXIT.ok, result.exit_code)
    local backend = at(ev, {event = "task_started", task = "services.backend"})
    assert.is_true(backend > at(ev, {event = "task_finished", task = "jobs.migrate"}))
    assert.is_true(backend > at(ev, {event = "task_finished", task = "jobs.scrub"}))
  end)

  it("lets a wait_for_finish: false step run beside the later steps; the run ends after it", function()
    local result, ev = run("deploy", {frontend = {ready_after = 0.08}, ["migrate-"] = {ready_after = 0.01},
                                      ["scrub-"] = {ready_after = 0.01}, backend = {ready_after = 0.01}})
    assert.equal(EXIT.ok, result.exit_code)
    local frontend_done = at(ev, {event = "task_finished", task = "services.frontend"})
    assert.is_true(at(ev, {event = "task_started", task = "jobs.migrate"}) < frontend_done)
    assert.is_true(at(ev, {event = "task_finished", task = "services.backend"}) < frontend_done)
    assert.is_true(frontend_done < at(ev, {event = "run_finished"}))
  end)

  it("starts the tasks of a step together, at most max_parallel at once", function()
    local script = {frontend = {ready_after = 0.02}, backend = {ready_after = 0.02}, cache = {ready_after = 0.02},
                    search = {ready_after = 0.02}}
    local result, _, client = run("wide", script)
    assert.equal(EXIT.ok, result.exit_code)
    assert.equal(2, client.max_waiting)
    result, _, client = run("deploy", {frontend = {ready_after = 0.05}, ["migrate-"] = {ready_after = 0.02},
                                       ["scrub-"] = {ready_after = 0.02}})
    assert.equal(3, client.max_waiting) -- the background frontend and both jobs
  end)

  it("halts on a halt_on_error failure: in-flight and background tasks cancelled, nothing after, cleanup called", function()
    local hooks = hooks_from([[
return {cleanup = function(ctx, run, reason)
  local ids = {}
  for _, t in ipairs(run.started) do ids[#ids + 1] = t.id .. "=" .. t.state end
  table.sort(ids)
  ctx.log("cleanup %s: %s", reason, table.concat(ids, " "))
end}
]])
    local result, ev, client = run("deploy", {frontend = {ready_after = 1}, ["migrate-"] = {fail_after = 0.01},
                                              ["scrub-"] = {ready_after = 1}}, {hooks = hooks})
    assert.equal(EXIT.halted, result.exit_code)
    assert.equal("failed", final(ev, "jobs.migrate"))
    assert.equal("cancelled", final(ev, "jobs.scrub"))
    assert.equal("cancelled", final(ev, "services.frontend"))
    assert.equal("skipped", final(ev, "services.backend"))
    assert.is_nil(at(ev, {event = "task_started", task = "services.backend"}))
    assert.is_nil((function() for _, a in ipairs(client.applied) do if a:match("backend") then return a end end end)())
    local halting = at(ev, {event = "run_halting", task = "jobs.migrate"})
    assert.is_true(halting < at(ev, {event = "task_finished", task = "jobs.scrub"}))
    assert.truthy(at(ev, {event = "log",
      message = "cleanup halted: jobs.migrate=failed jobs.scrub=cancelled services.frontend=cancelled"}))
    assert.equal("halted", ev[#ev].state)
  end)

  it("ignores other failures, and the settle check reports a service that came back recovered", function()
    local result, ev = run("serial", {cache = {fail_after = 0.01, reason = "CrashLoopBackOff", settle = "ready"},
                                      backend = {ready_after = 0.01}})
    assert.equal(EXIT.ok, result.exit_code)
    assert.equal("recovered", final(ev, "services.cache"))
    -- the failure did not stop the workflow
    assert.is_true(at(ev, {event = "task_started", task = "services.backend"}) >
                   at(ev, {event = "task_finished", task = "services.cache", state = "failed"}))
    result, ev = run("serial", {cache = {fail_after = 0.01, reason = "CrashLoopBackOff", settle = "failed"}})
    assert.equal(EXIT.ignored_failures, result.exit_code)
    assert.equal("failed", final(ev, "services.cache"))
    assert.truthy(at(ev, {event = "task_progress", task = "services.cache",
                          message = "still failing after the settle check"}))
  end)

  it("retries as the retry hook says, then succeeds", function()
    local hooks = hooks_from("return {retry = function(ctx, task, err, attempt) if attempt < 3 then return 0 end end}\n")
    local result, ev = run("serial", {cache = {fail_after = 0, attempts_failing = 2}}, {hooks = hooks})
    assert.equal(EXIT.ok, result.exit_code)
    local attempts = {}
    for _, e in ipairs(ev) do
      if e.event == "task_started" and e.task == "services.cache" then attempts[#attempts + 1] = e.attempt end
    end
    assert.same({1, 2, 3}, attempts)
    assert.equal("succeeded", final(ev, "services.cache"))
  end)

  it("asks retry first; on_error decides the policy once retry gives up, so 'ignore' never stops a retry", function()
    local hooks = hooks_from([[
return {
  retry = function(ctx, task, err, attempt)
    ctx.log("retry asked after attempt %d", attempt)
    if attempt < 2 then return 0 end
  end,
  on_error = function(ctx, task, err)
    ctx.log("on_error asked after attempt %d", task.attempt)
    return "ignore"
  end,
}
]])
    local result, ev = run("serial", {cache = {fail_after = 0, attempts_failing = 2}, backend = {ready_after = 0}},
                           {hooks = hooks})
    assert.equal(EXIT.ignored_failures, result.exit_code)
    local said = {}
    for _, e in ipairs(ev) do
      if e.event == "log" and e.task == "services.cache" then said[#said + 1] = e.hook .. ": " .. e.message end
    end
    assert.same({"retry: retry asked after attempt 1", "retry: retry asked after attempt 2",
                 "on_error: on_error asked after attempt 2"}, said)
    assert.equal("failed", final(ev, "services.cache"))
    -- on_error's "retry" without a retry hook: the default back-off, up to 3 attempts, then the template's policy
    hooks = hooks_from('return {on_error = function() return "retry" end}\n')
    result, ev = run("serial", {cache = {fail_after = 0, attempts_failing = 5}}, {hooks = hooks})
    local attempts = 0
    for _, e in ipairs(ev) do
      if e.event == "task_started" and e.task == "services.cache" then attempts = e.attempt end
    end
    assert.equal(3, attempts)
    assert.truthy(at(ev, {event = "log", task = "services.cache", hook = "on_error",
                          message = 'returned "retry" after 3 attempts: using the template\'s policy'}))
  end)

  it("names the on_error hook as the halt's cause, and marks the step whose failure halted the run", function()
    local hooks = hooks_from('return {on_error = function(ctx, task) if task.id == "services.cache" then return "halt" end end}\n')
    local result, ev = run("serial", {cache = {fail_after = 0}}, {hooks = hooks})
    assert.equal(EXIT.halted, result.exit_code)
    local halting = ev[at(ev, {event = "run_halting"})]
    assert.same({"services.cache", "on_error", "services.cache failed: halted by the on_error hook"},
                {halting.task, halting.cause, halting.message})
    assert.is_true(ev[at(ev, {event = "step_finished", step = "services.cache"})].halt)
    -- the template's halt_on_error says so too
    result, ev = run("deploy", {frontend = {ready_after = 1}, ["migrate-"] = {fail_after = 0.01}})
    halting = ev[at(ev, {event = "run_halting"})]
    assert.same({"halt_on_error", "jobs.migrate failed: halted by halt_on_error"}, {halting.cause, halting.message})
    -- a failure that was ignored leaves its step without halt
    result, ev = run("serial", {cache = {fail_after = 0, settle = "failed"}})
    assert.equal("failed", ev[at(ev, {event = "step_finished", step = "services.cache"})].state)
    assert.is_nil(ev[at(ev, {event = "step_finished", step = "services.cache"})].halt)
  end)

  it("gives after_task the attempt's state in the events' words", function()
    local hooks = hooks_from([[
return {after_task = function(ctx, task, result)
  ctx.log("%s attempt %d: %s ok=%s", task.id, task.attempt, result.state, tostring(result.ok))
end, retry = function(ctx, task, err, attempt) if attempt < 2 then return 0 end end}
]])
    local _, ev = run("serial", {cache = {fail_after = 0, attempts_failing = 1}}, {hooks = hooks})
    assert.truthy(at(ev, {event = "log", hook = "after_task", message = "services.cache attempt 1: failed ok=false"}))
    assert.truthy(at(ev, {event = "log", hook = "after_task", message = "services.cache attempt 2: succeeded ok=true"}))
  end)

  it("skips, on resume, a task that succeeded with the same spec, and reruns one whose spec changed", function()
    local _, first = run("serial", {})
    local snapshot = {run = "R0", tasks = {}}
    for _, e in ipairs(first) do
      if e.event == "task_finished" then
        snapshot.tasks[#snapshot.tasks + 1] = {id = e.task, state = e.state, spec_hash = e.spec_hash}
      end
    end
    snapshot.tasks[2].spec_hash = "changed"
    local result, ev, client = run("serial", {}, {resume = snapshot})
    assert.equal(EXIT.ok, result.exit_code)
    assert.equal("skipped", final(ev, "services.cache"))
    assert.equal("succeeded", final(ev, "services.backend"))
    assert.same({"deployment/backend"}, client.applied)
  end)

  -- ---- the run history and rollbacks --------------------------------------------------------

  local history = require "moonship.run.history"
  local RECORD = {keep = 10, env = "local", template = "app.yaml"}

  local function records(client)
    return sched.run(function()
      return assert(history.list(client, {namespace = "default", app = "shop", env = "local"}))
    end)
  end

  local function fetch(client, summary)
    return sched.run(function() return assert(history.fetch(client, "default", summary)) end)
  end

  it("records a finished run: each task's objects as sent, a resumed task's too; never a dry run", function()
    local client = fake_client.new()
    local result = run("serial", {}, {client = client, record = RECORD})
    local list = records(client)
    assert.equal(1, #list)
    assert.same({1, result.run_id, "serial", "succeeded"}, {list[1].revision, list[1].run, list[1].workflow, list[1].state})
    local rec = fetch(client, list[1])
    assert.same({"services.cache", "services.cache"}, {rec.steps[1].step, rec.steps[1].tasks[1].id})
    local kinds = {}
    for i, o in ipairs(rec.steps[2].tasks[1].objects) do kinds[i] = o.kind .. "/" .. o.metadata.name end
    assert.same({"Deployment/backend"}, kinds)
    -- as sent: no uid, no resourceVersion (the fake server gives both)
    assert.is_nil(rec.steps[2].tasks[1].objects[1].metadata.uid)
    assert.equal("example/backend:1", rec.steps[2].tasks[1].objects[1].spec.template.spec.containers[1].image)
    assert.matches("^%x%x%x%x%x%x%x%x$", rec.template_hash)
    -- a resumed run: the task skipped with the same spec is recorded with the objects it stands for
    local snapshot = {run = result.run_id, tasks = {}}
    for _, t in ipairs(rec.steps) do
      for _, task in ipairs(t.tasks) do
        snapshot.tasks[#snapshot.tasks + 1] = {id = task.id, state = "succeeded", spec_hash = task.spec_hash, attempts = 1}
      end
    end
    run("serial", {}, {client = client, record = RECORD, resume = snapshot})
    list = records(client)
    rec = fetch(client, list[1])
    assert.equal("skipped", rec.steps[1].tasks[1].state)
    assert.equal("Deployment", rec.steps[1].tasks[1].objects[1].kind)
    assert.equal(list[2].template_hash, list[1].template_hash) -- the same specs, the same hash
  end)

  it("on_error \"rollback\": halts, cleans up, re-applies the last good run after the halted steps, records both",
    function()
    local client = fake_client.new()
    local first = run("serial", {}, {client = client, record = RECORD})
    local hooks = hooks_from([[
return {
  on_error = function() return "rollback" end,
  cleanup = function(ctx, run, reason) ctx.log("cleanup after %s", reason) end,
  after_workflow = function(ctx, run) ctx.log("after %s%s", run.workflow, run.rollback_of and (" rollback of " .. run.rollback_of) or "") end,
}
]])
    -- (the fake counts waits per object over the client's life: the first run's was the 1st)
    local result, ev = run("serial", {backend = {fail_after = 0.01, attempts_failing = 2}},
      {client = client, record = RECORD, hooks = hooks})
    assert.equal(EXIT.halted, result.exit_code)
    assert.equal("succeeded", result.rollback)
    local halting = ev[at(ev, {event = "run_halting"})]
    assert.same({"services.backend", "on_error", true}, {halting.task, halting.cause, halting.rollback})
    assert.equal("services.backend failed: halted by the on_error hook, which asked for a rollback to the last good run",
      halting.message)
    local started = ev[at(ev, {event = "rollback_started"})]
    assert.same({first.run_id, 1, "serial", "on_error", 3}, {started.to, started.revision, started.target_workflow,
                                                           started.reason, started.steps})
    -- its last step prunes what the run it goes back to did not have
    assert.same({"rollback.services.cache", "rollback.services.backend", "rollback.prune"}, started.tasks)
    -- the order: the halt, the cleanup, the rollback's steps (indexed after the halted run's), one run_finished
    local cleanup = at(ev, {event = "log", message = "cleanup after halted"})
    assert.is_true(at(ev, {event = "run_halting"}) < cleanup)
    assert.is_true(cleanup < at(ev, {event = "rollback_started"}))
    assert.is_true(at(ev, {event = "rollback_started"}) < at(ev, {event = "step_started", step = "rollback.services.cache", index = 3}))
    assert.truthy(at(ev, {event = "step_started", step = "rollback.services.backend", index = 4}))
    assert.equal("succeeded", final(ev, "rollback.services.backend"))
    assert.equal("succeeded", final(ev, "rollback.prune"))
    assert.truthy(at(ev, {event = "step_started", step = "rollback.prune", index = 5}))
    assert.truthy(at(ev, {event = "log", message = "after serial rollback of " .. first.run_id}))
    local finished = ev[#ev]
    assert.same({"run_finished", "halted", EXIT.halted, "succeeded"},
      {finished.event, finished.state, finished.exit_code, finished.rollback})
    -- the rollback re-applied what the first run sent: the same objects again
    assert.same({"deployment/cache", "deployment/backend", "deployment/cache", "deployment/backend",
                 "deployment/cache", "deployment/backend"}, client.applied)
    -- three records: the first run, the halted one, its rollback (under the halted run's id)
    local list = records(client)
    assert.same({"succeeded", "halted", "succeeded"}, {list[3].state, list[2].state, list[1].state})
    assert.same({result.run_id, result.run_id, first.run_id}, {list[2].run, list[1].run, list[1].rollback_of})
    assert.equal(list[3].template_hash, list[1].template_hash)
    local rec = fetch(client, list[1])
    assert.same({"services.cache", "services.backend"}, {rec.steps[1].step, rec.steps[2].tasks[1].id})
  end)

  it("names rollback among on_error's answers when it gets another one", function()
    local hooks = hooks_from('return {on_error = function() return "rolback" end}\n')
    local result, ev = run("serial", {backend = {fail_after = 0.01}}, {hooks = hooks})
    assert.equal(EXIT.ignored_failures, result.exit_code) -- the template's policy: ignore
    assert.truthy(at(ev, {event = "log", hook = "on_error",
      message = "returned \"rolback\" (want ignore, halt, retry or rollback): using the template's policy"}))
  end)

  it("on_error \"rollback\" with no earlier good run, or no run history: a halt that says why", function()
    local hooks = hooks_from('return {on_error = function() return "rollback" end}\n')
    local result, ev = run("serial", {backend = {fail_after = 0.01}}, {record = RECORD, hooks = hooks})
    assert.equal(EXIT.halted, result.exit_code)
    assert.equal("unavailable", result.rollback)
    assert.truthy(at(ev, {event = "log", message = "rollback: nothing to roll back to in namespace default: no earlier run succeeded"}))
    assert.is_nil(at(ev, {event = "rollback_started"}))
    assert.equal("unavailable", ev[#ev].rollback)
    -- without a run history (the engine of a script that asks for none)
    result, ev = run("serial", {backend = {fail_after = 0.01}}, {hooks = hooks})
    assert.equal(EXIT.halted, result.exit_code)
    assert.is_nil(result.rollback)
    assert.truthy(at(ev, {event = "log", hook = "on_error",
      message = "returned \"rollback\", but this run keeps no run history: halting"}))
  end)

  it("a rollback runs no jobs again, and never asks for another rollback", function()
    local client = fake_client.new()
    local first = run("deploy", {}, {client = client, record = RECORD})
    local list = records(client)
    local rec = fetch(client, list[1])
    local events = {}
    local journal = journal_mod.new {app = "shop", workflow = "deploy", namespace = "default"}
    journal:add_sink(function(e) events[#events + 1] = e end)
    client.script = {backend = {fail_after = 0.01}}
    local result = sched.run(function()
      return engine.run {model = MODEL, workflow = history.rollback_workflow(rec), client = client, journal = journal,
                         namespace = "default", settle = 0.05, logs = "none", record = RECORD,
                         hooks = hooks_from('return {on_error = function() return "rollback" end}\n')}
    end)
    assert.equal(first.run_id, events[1].rollback_of)
    assert.same({"rollback_started", first.run_id, "command"}, {events[2].event, events[2].to, events[2].reason})
    assert.equal("skipped", final(events, "rollback.jobs.migrate"))
    assert.matches("^not re%-run", events[at(events, {event = "task_finished", task = "rollback.jobs.scrub"})].message)
    assert.equal("succeeded", final(events, "rollback.services.frontend"))
    assert.equal(EXIT.halted, result.exit_code)
    assert.truthy(at(events, {event = "log", hook = "on_error",
      message = "returned \"rollback\", but this run is a rollback already: halting"}))
    list = records(client)
    assert.same({"halted", first.run_id}, {list[1].state, list[1].rollback_of})
  end)
end)

-- A scripted ApplySet (the engine's side of moonship.kube.applyset): what it was asked, and one
-- stale member for the prune step to delete.
local function scripted_set()
  local set = {calls = {}, labelled = {}}
  function set:label(obj, workflow)
    self.labelled[#self.labelled + 1] = obj.kind:lower() .. "/" .. obj.metadata.name .. "@" .. workflow
    return obj
  end
  function set:record(objects)
    self.calls[#self.calls + 1] = "record " .. #objects
    return true
  end
  function set:stale(objects, workflow, opts)
    self.calls[#self.calls + 1] = ("stale %s (%d produced, %d kept)"):format(workflow, #objects, #opts.keep)
    return {{apiVersion = "apps/v1", kind = "Deployment", metadata = {name = "old", namespace = "default", uid = "u1"}}}
  end
  function set:prune(stale, opts)
    self.calls[#self.calls + 1] = "prune " .. #stale .. (opts.dry_run and " dry" or "")
    for _, obj in ipairs(stale) do
      opts.on_deleted(obj, (opts.dry_run and "would delete " or "deleted ") .. "deployment/" .. obj.metadata.name)
    end
    return true
  end
  return set
end

describe("engine: the prune step", function()
  it("runs after every step of a workflow that succeeded, one task_progress per deleted object", function()
    local set = scripted_set()
    local result, ev = run("serial", {}, {prune = true, applyset = set})
    assert.equal(EXIT.ok, result.exit_code)
    assert.same({"record 1", "record 1", "stale serial (2 produced, 6 kept)", "prune 1"}, set.calls)
    assert.same({"deployment/cache@serial", "deployment/backend@serial"}, set.labelled)
    local started = ev[1]
    assert.equal(3, started.steps)
    assert.same({"services.cache", "services.backend", "prune"}, started.tasks)
    assert.same({step = "prune", tasks = {"prune"}}, started.plan[3])
    local step = at(ev, {event = "step_started", step = "prune", index = 3})
    assert.is_true(step > at(ev, {event = "step_finished", step = "services.backend"}))
    assert.truthy(at(ev, {event = "task_started", task = "prune", step = "prune", attempt = 1}) > step)
    local deleted = ev[at(ev, {event = "task_progress", task = "prune", phase = "deleted"})]
    assert.equal("deleted deployment/old", deleted.message)
    assert.same({{kind = "Deployment", apiVersion = "apps/v1", name = "old", namespace = "default", uid = "u1"}},
      deleted.objects)
    local finished = ev[at(ev, {event = "task_finished", task = "prune"})]
    assert.equal("succeeded", finished.state)
    assert.equal("deleted 1 object", finished.message)
    assert.truthy(at(ev, {event = "step_finished", step = "prune", state = "succeeded"}))
    assert.is_true(at(ev, {event = "step_finished", step = "prune"}) < at(ev, {event = "run_finished"}))
  end)

  it("never prunes after a halt: the prune task is skipped, no step, nothing asked of the set", function()
    local set = scripted_set()
    local result, ev = run("deploy", {frontend = {ready_after = 1}, ["migrate-"] = {fail_after = 0.01},
                                      ["scrub-"] = {ready_after = 1}}, {prune = true, applyset = set})
    assert.equal(EXIT.halted, result.exit_code)
    assert.equal("skipped", final(ev, "prune"))
    assert.equal("not started: run halted", ev[at(ev, {event = "task_finished", task = "prune"})].message)
    assert.is_nil(at(ev, {event = "step_started", step = "prune"}))
    assert.is_nil(at(ev, {event = "task_started", task = "prune"}))
    for _, c in ipairs(set.calls) do assert.matches("^record", c) end
  end)

  it("never prunes after an ignored failure that did not recover: skipped, and the run ends failed", function()
    local set = scripted_set()
    local result, ev = run("serial", {cache = {fail_after = 0.01, reason = "CrashLoopBackOff", settle = "failed"}},
                           {prune = true, applyset = set})
    assert.equal(EXIT.ignored_failures, result.exit_code)
    assert.equal("skipped", final(ev, "prune"))
    assert.equal("not run: 1 task failed (pruning follows only a workflow that succeeded)",
      ev[at(ev, {event = "task_finished", task = "prune"})].message)
    assert.is_nil(at(ev, {event = "task_started", task = "prune"}))
    for _, c in ipairs(set.calls) do assert.matches("^record", c) end
  end)

  it("prunes after a failure that recovered at the settle check", function()
    local set = scripted_set()
    local result, ev = run("serial", {cache = {fail_after = 0.01, reason = "CrashLoopBackOff", settle = "ready"}},
                           {prune = true, applyset = set})
    assert.equal(EXIT.ok, result.exit_code)
    assert.equal("recovered", final(ev, "services.cache"))
    assert.equal("succeeded", final(ev, "prune"))
    assert.is_true(at(ev, {event = "task_started", task = "prune"}) > at(ev, {event = "task_finished", task = "services.cache", state = "recovered"}))
  end)

  it("in a dry run labels every object but writes no parent, and the prune step only says what it would delete", function()
    local set = scripted_set()
    local result, ev = run("serial", {}, {prune = true, applyset = set, dry_run = true})
    assert.equal(EXIT.ok, result.exit_code)
    assert.same({"stale serial (2 produced, 6 kept)", "prune 1 dry"}, set.calls)
    assert.same({"deployment/cache@serial", "deployment/backend@serial"}, set.labelled)
    assert.equal("would delete deployment/old", ev[at(ev, {event = "task_progress", task = "prune", phase = "deleted"})].message)
    assert.equal("would delete 1 object", ev[at(ev, {event = "task_finished", task = "prune"})].message)
  end)

  it("a stop while it deletes cancels the prune task, says which deletions are not over, and the run is interrupted", function()
    local set = scripted_set()
    local pruning = sched.event()
    function set:prune(stale, opts)
      for _, obj in ipairs(stale) do opts.on_requested(obj) end
      pruning:set()
      sched.sleep(60)
    end
    local client = fake_client.new {}
    local ev = {}
    local journal = journal_mod.new {app = "shop", workflow = "serial", namespace = "default"}
    journal:add_sink(function(e) ev[#ev + 1] = e end)
    local result = sched.run(function()
      local out
      local runner = sched.spawn(function()
        out = engine.run {model = MODEL, workflow = template.workflow(MODEL, "serial"), client = client,
                          hooks = hooks_mod.load(nil), journal = journal, namespace = "default", settle = 0.05,
                          logs = "none", prune = true, applyset = set}
      end)
      pruning:wait()
      runner:cancel()
      runner:join()
      return out
    end)
    assert.equal(EXIT.interrupted, result.exit_code)
    local finished = ev[at(ev, {event = "task_finished", task = "prune"})]
    assert.equal("cancelled", finished.state)
    assert.equal("interrupted; deletion requested, not over: deployment/old", finished.message)
    assert.truthy(at(ev, {event = "step_finished", step = "prune", state = "cancelled"}))
    assert.equal("interrupted", ev[#ev].state)
  end)

  it("has no prune step without prune, and still labels and records", function()
    local set = scripted_set()
    local _, ev = run("serial", {}, {applyset = set})
    assert.same({"record 1", "record 1"}, set.calls)
    assert.equal(2, ev[1].steps)
    assert.is_nil(at(ev, {event = "task_finished", task = "prune"}))
  end)
end)
