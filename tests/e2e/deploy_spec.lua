-- `moonship deploy` on kubesim: the workflow semantics of DESIGN.md §3, asserted on the run's
-- JSON events (their order and the overlap of tasks), never on sleeps.
local json = require "moonship.json"
local events = require "support.events"
local kubesim = require "support.kubesim"
local proc = require "support.proc"

local deploy, find, index_of, final_state = events.deploy, events.find, events.index_of, events.final_state

local SHOP = proc.source_dir .. "/examples/shop/moonship.yaml"

local function copy_template(dir, src, extra_files)
  local text = proc.read_file(src)
  proc.write_file(dir .. "/moonship.yaml", text)
  for name, body in pairs(extra_files or {}) do proc.write_file(dir .. "/" .. name, body) end
  return dir .. "/moonship.yaml"
end

-- Durations that keep the orders this test asserts far apart (simulated seconds).
local SHOP_SCENARIO = [[
defaults: {start_delay: 0.2, ready_delay: 0.3, duration: 1}
workloads:
  frontend: {start_delay: 1, ready_delay: 60}
  backend: {start_delay: 1, ready_delay: 10}
  "migrate-*": {duration: 15, logs: ["migrating schema", "migration done"]}
  "scrub-*": {duration: 5, logs: ["scrubbing"]}
]]

describe("moonship deploy: the seed workflow", function()
  local sim
  after_each(function() if sim then sim:stop() sim = nil end end)

  it("runs frontend in the background, migrate and scrub side by side, then backend", function()
    sim = kubesim.start {scenario = SHOP_SCENARIO, time_scale = 0.05}
    local dir = proc.tmpdir()
    local code, ev, stderr = deploy(sim, {copy_template(dir, SHOP), "-w", "deploy"})
    assert.equal(0, code, stderr)

    local f_start = index_of(ev, {event = "task_started", task = "services.frontend"})
    local f_end = index_of(ev, {event = "task_finished", task = "services.frontend"})
    local m_start = index_of(ev, {event = "task_started", task = "jobs.migrate"})
    local s_start = index_of(ev, {event = "task_started", task = "jobs.scrub"})
    local m_end = index_of(ev, {event = "task_finished", task = "jobs.migrate"})
    local s_end = index_of(ev, {event = "task_finished", task = "jobs.scrub"})
    local b_start = index_of(ev, {event = "task_started", task = "services.backend"})
    local b_end = index_of(ev, {event = "task_finished", task = "services.backend"})
    local run_end = index_of(ev, {event = "run_finished"})
    assert.truthy(f_start and f_end and m_start and s_start and m_end and s_end and b_start and b_end and run_end)

    -- frontend starts first and is still running while migrate and backend run
    assert.is_true(f_start < m_start and f_start < s_start)
    assert.is_true(f_end > b_start, "frontend finished before backend started")
    -- migrate and scrub overlap
    assert.is_true(m_start < s_end and s_start < m_end)
    -- backend starts only after both finished
    assert.is_true(b_start > m_end and b_start > s_end)
    -- the run ends after frontend (the background step) finishes
    assert.is_true(run_end > f_end)
    for _, task in ipairs {"services.frontend", "jobs.migrate", "jobs.scrub", "services.backend"} do
      assert.equal("succeeded", final_state(ev, task))
    end
    local finished = find(ev, {event = "run_finished"})
    assert.equal("succeeded", finished.state)
    -- the frontend step is marked as a background step, and its step_finished comes last
    assert.is_true(find(ev, {event = "step_started", step = "frontend"}).background)
    assert.is_true(index_of(ev, {event = "step_finished", step = "frontend"}) > index_of(ev, {event = "step_finished", step = "backend"}))
    -- job logs are streamed, with the task name
    assert.truthy(find(ev, {event = "log", task = "jobs.migrate", message = "migrating schema"}))
    -- objects applied are reported with their uid
    local applied = find(ev, {event = "task_progress", task = "services.backend"})
    assert.truthy(applied.objects[1].uid)
  end)

  it("halts when scrub fails: backend never starts, frontend is cancelled, cleanup runs; --resume finishes", function()
    sim = kubesim.start {scenario = SHOP_SCENARIO .. [[
  "scrub-*": {duration: 20, exit_code: 3, logs: ["cannot scrub: table locked"]}
]], time_scale = 0.05}
    local dir = proc.tmpdir()
    local cleanup_log = dir .. "/cleanup.log"
    local template = copy_template(dir, SHOP, {["hooks.lua"] = ([[
return {
  cleanup = function(ctx, run, reason)
    local f = assert(io.open(%q, "w"))
    f:write(reason, "\n")
    for _, t in ipairs(run.started) do f:write(t.id, " ", t.state, "\n") end
    f:close()
  end,
}
]]):format(cleanup_log)})
    local code, ev, stderr = deploy(sim, {template, "-w", "deploy"})
    assert.equal(1, code, stderr)
    assert.is_nil(find(ev, {event = "task_started", task = "services.backend"}))
    assert.equal("failed", final_state(ev, "jobs.scrub"))
    assert.equal("succeeded", final_state(ev, "jobs.migrate"))
    assert.equal("cancelled", final_state(ev, "services.frontend"))
    assert.equal("skipped", final_state(ev, "services.backend"))
    local halt = find(ev, {event = "run_halting"})
    assert.equal("jobs.scrub", halt.task)
    assert.equal("halted", find(ev, {event = "run_finished"}).state)
    -- the failure carries the job's last log lines
    local failed = find(ev, {event = "task_finished", task = "jobs.scrub"})
    assert.matches("BackoffLimitExceeded", failed.message)
    -- the cleanup hook saw what the run started
    local cleanup = proc.read_file(cleanup_log)
    assert.matches("^halted\n", cleanup)
    assert.matches("jobs.scrub failed", cleanup)
    assert.matches("jobs.migrate succeeded", cleanup)
    assert.matches("services.frontend cancelled", cleanup)
    assert.not_matches("services.backend", cleanup)
    -- the journal file and the ConfigMap record it
    local journal = stderr:match("journal (%S+%.jsonl)") or
      io.popen("ls " .. dir .. "/.moonship/runs/*.jsonl"):read("l")
    assert.truthy(journal)
    local status, cm = sim:get_json("/api/v1/namespaces/default/configmaps/moonship-run-shop-deploy")
    assert.equal(200, status)
    local snap = json.decode(cm.data["run.json"])
    assert.equal("halted", snap.state)

    -- Fix the scenario: a new kubesim would lose the cluster state, so the same one is given a
    -- scrub that works by renaming the job's pattern; then --resume runs only what did not succeed.
    sim:stop()
    sim = nil
    local sim2 = kubesim.start {scenario = SHOP_SCENARIO, time_scale = 0.05}
    sim = sim2
    local code2, ev2, stderr2 = deploy(sim2, {template, "-w", "deploy", "--resume"})
    assert.equal(0, code2, stderr2)
    assert.equal("skipped", final_state(ev2, "jobs.migrate"))
    assert.is_nil(find(ev2, {event = "task_started", task = "jobs.migrate"}))
    assert.equal("succeeded", final_state(ev2, "jobs.scrub"))
    assert.equal("succeeded", final_state(ev2, "services.frontend"))
    assert.equal("succeeded", final_state(ev2, "services.backend"))
  end)
end)

describe("moonship deploy: what the plain output says", function()
  local sim
  after_each(function() if sim then sim:stop() sim = nil end end)

  it("a failed job's logs once, hook lines marked, the halt's cause, no object missing after its apply", function()
    sim = kubesim.start {scenario = SHOP_SCENARIO .. [[
  "scrub-*": {duration: 2, exit_code: 3, logs: ["scrubbing", "cannot scrub: table locked"]}
]], time_scale = 0.05}
    local dir = proc.tmpdir()
    -- the migrate step without halt_on_error: the on_error hook halts
    local template = copy_template(dir, SHOP, {["hooks.lua"] = [[
return {
  on_error = function(ctx, task, err)
    ctx.log("%s failed: stopping here", task.id)
    return "halt"
  end,
}
]]})
    proc.write_file(template, proc.read_file(template):gsub("    halt_on_error: true\n", ""))
    local r = proc.run {proc.moonship, "deploy", template, "-w", "deploy", "--kubeconfig", sim.kubeconfig}
    assert.equal(1, r.code, r.stderr)
    local out = r.stdout:gsub("\n%d%d:%d%d:%d%d ", "\n"):gsub("^%d%d:%d%d:%d%d ", "")
    local function count(line)
      local n = 0
      for l in out:gmatch("[^\n]+") do if l == line then n = n + 1 end end
      return n
    end
    assert.equal(1, count("jobs.scrub | scrubbing"), out)
    assert.equal(1, count("jobs.scrub | cannot scrub: table locked"), out)
    assert.equal(1, count("jobs.scrub ▸ hook on_error: jobs.scrub failed: stopping here"), out)
    assert.equal(1, count("HALT: jobs.scrub failed: halted by the on_error hook"), out)
    assert.equal(1, count("step migrate finished: cancelled"), out)
    assert.matches("\nrun %S+ halted %(exit 1%)\n\ndeploy shop → default: halted in %S+ %(exit 1%) · halted by jobs%.scrub", out)
    -- an object this run applied is never reported missing while the watch catches up
    assert.is_nil(out:find("not found yet", 1, true), out)
  end)
end)

describe("moonship deploy: ignored failures", function()
  local sim
  after_each(function() if sim then sim:stop() sim = nil end end)

  it("a service that crash-loops until its dependency is up fails, is ignored, and recovers", function()
    sim = kubesim.start {scenario = [[
defaults: {start_delay: 0.2, ready_delay: 0.3}
workloads:
  api: {requires: [db], crash_after: 1}
  db: {start_delay: 1, ready_delay: 2}
]], time_scale = 0.05}
    local dir = proc.tmpdir()
    proc.write_file(dir .. "/moonship.yaml", [[
app: deps
services:
- name: db
  image: postgres:16
  ports: [{type: container_port, port: 5432}]
- name: api
  image: example/api:1
  depends_on: [db]
workflows:
- name: up
  parallelize:
  - step: api-first
    tasks: [services.api]
  - step: db
    tasks: [services.db]
]])
    local code, ev, stderr = deploy(sim, {dir .. "/moonship.yaml", "-w", "up", "--settle", "120"})
    assert.equal(0, code, stderr)
    local failed = find(ev, {event = "task_finished", task = "services.api", state = "failed"})
    assert.truthy(failed, "api did not fail first")
    assert.matches("CrashLoopBackOff", failed.message)
    -- the failure was ignored: db's step started after it
    assert.is_true(index_of(ev, {event = "task_started", task = "services.db"}) >
      index_of(ev, {event = "task_finished", task = "services.api", state = "failed"}))
    assert.equal("succeeded", final_state(ev, "services.db"))
    assert.equal("recovered", final_state(ev, "services.api"))
    assert.equal("succeeded", find(ev, {event = "run_finished"}).state)
  end)

  it("exits 3 when an ignored failure does not recover", function()
    sim = kubesim.start {scenario = [[
workloads:
  stuck: {never_ready: true}
]], time_scale = 0.05}
    local dir = proc.tmpdir()
    proc.write_file(dir .. "/moonship.yaml", [[
app: stuckapp
services:
- name: stuck
  image: example/stuck:1
workflows:
- name: up
  order_from: [services.stuck]
]])
    local code, ev = deploy(sim, {dir .. "/moonship.yaml", "-w", "up", "--timeout", "2", "--settle", "0.5"})
    assert.equal(3, code)
    assert.equal("failed", final_state(ev, "services.stuck"))
    assert.matches("timed out", find(ev, {event = "task_finished", task = "services.stuck"}).message)
    assert.equal("failed", find(ev, {event = "run_finished"}).state)
  end)
end)

describe("moonship deploy: hooks", function()
  local sim
  after_each(function() if sim then sim:stop() sim = nil end end)

  local JOB_APP = [[
app: hooked
jobs:
- name: flaky
  image: example/flaky:1
services:
- name: web
  image: example/web:1
workflows:
- name: run
  parallelize:
  - step: one
    tasks: [jobs.flaky]
  - step: two
    tasks: [services.web]
]]

  it("a retry hook retries a failing job with back-off until it succeeds", function()
    sim = kubesim.start {scenario = [[
defaults: {start_delay: 0.1, ready_delay: 0.1}
workloads:
  "flaky-*-3": {duration: 0.5, logs: ["third time lucky"]}
  "flaky-*": {duration: 0.5, exit_code: 1, logs: ["flaky failure"]}
]], time_scale = 0.05}
    local dir = proc.tmpdir()
    proc.write_file(dir .. "/moonship.yaml", JOB_APP)
    proc.write_file(dir .. "/hooks.lua", [[
return {
  retry = function(ctx, task, err, attempt)
    if task.kind == "jobs" and attempt < 3 then return 0.1 * 2 ^ attempt end
  end,
}
]])
    local code, ev, stderr = deploy(sim, {dir .. "/moonship.yaml", "-w", "run"})
    assert.equal(0, code, stderr)
    local starts = {}
    for _, e in ipairs(ev) do
      if e.event == "task_started" and e.task == "jobs.flaky" then starts[#starts + 1] = e.attempt end
    end
    assert.same({1, 2, 3}, starts)
    local retries = 0
    for _, e in ipairs(ev) do if e.retry and e.task == "jobs.flaky" then retries = retries + 1 end end
    assert.equal(2, retries)
    assert.equal("succeeded", final_state(ev, "jobs.flaky"))
  end)

  it("an on_error hook turns an ignored failure into a halt", function()
    sim = kubesim.start {scenario = [[
workloads:
  "flaky-*": {duration: 0.5, exit_code: 1}
]], time_scale = 0.05}
    local dir = proc.tmpdir()
    proc.write_file(dir .. "/moonship.yaml", JOB_APP)
    proc.write_file(dir .. "/hooks.lua", [[
return {
  on_error = function(ctx, task, err)
    if task.id == "jobs.flaky" then return "halt" end
  end,
}
]])
    local code, ev = deploy(sim, {dir .. "/moonship.yaml", "-w", "run"})
    assert.equal(1, code)
    assert.equal("failed", final_state(ev, "jobs.flaky"))
    assert.is_nil(find(ev, {event = "task_started", task = "services.web"}))
    assert.equal("halted", find(ev, {event = "run_finished"}).state)
  end)

  it("a hook that runs past its instruction budget fails its task, not the tool", function()
    sim = kubesim.start {time_scale = 0.05}
    local dir = proc.tmpdir()
    proc.write_file(dir .. "/moonship.yaml", JOB_APP)
    proc.write_file(dir .. "/hooks.lua", [[
return {
  instruction_budget = 1000000,
  before_task = function(ctx, task)
    if task.id == "jobs.flaky" then
      while true do pcall(function() end) end -- a runaway hook; pcall cannot swallow the stop
    end
  end,
}
]])
    local code, ev = deploy(sim, {dir .. "/moonship.yaml", "-w", "run"})
    assert.equal(3, code)
    local failed = find(ev, {event = "task_finished", task = "jobs.flaky"})
    assert.equal("failed", failed.state)
    assert.matches("hook before_task: .*budget of 1000000 instructions", failed.message)
    assert.matches("stack traceback", failed.message)
    assert.equal("succeeded", final_state(ev, "services.web"))
  end)

  it("runs a custom task kind from the hooks file, with ctx", function()
    sim = kubesim.start {time_scale = 0.05}
    local dir = proc.tmpdir()
    proc.write_file(dir .. "/moonship.yaml", [[
app: custom
workflows:
- name: run
  order_from: [lua.notify, lua.fail]
]])
    proc.write_file(dir .. "/hooks.lua", [[
return {
  tasks = {
    lua = function(ctx, name, spec)
      if name == "fail" then error("deliberate failure") end
      ctx.log("notifying from %s in %s", ctx.app, ctx.namespace)
      local cm = ctx.kube:apply {apiVersion = "v1", kind = "ConfigMap",
        metadata = {name = "notified", namespace = ctx.namespace}, data = {run = ctx.run_id}}
      ctx.sleep(0.01)
      return cm ~= nil
    end,
  },
}
]])
    local code, ev = deploy(sim, {dir .. "/moonship.yaml", "-w", "run"})
    assert.equal(3, code)
    assert.equal("succeeded", final_state(ev, "lua.notify"))
    assert.truthy(find(ev, {event = "log", task = "lua.notify", message = "notifying from custom in default"}))
    local failed = find(ev, {event = "task_finished", task = "lua.fail"})
    assert.equal("failed", failed.state)
    assert.matches("deliberate failure", failed.message)
    assert.matches("stack traceback", failed.message)
    local status, cm = sim:get_json("/api/v1/namespaces/default/configmaps/notified")
    assert.equal(200, status)
    assert.equal(find(ev, {event = "run_started"}).run, cm.data.run)
  end)

  it("uses an Argo CD health.lua script for a CRD's readiness", function()
    sim = kubesim.start {time_scale = 0.05, args = {"--kinds", "example.com/v1/Widget/widgets"}}
    local dir = proc.tmpdir()
    os.execute("mkdir -p " .. proc.quote(dir .. "/health/example.com/Widget"))
    proc.write_file(dir .. "/health/example.com/Widget/health.lua", [[
hs = {}
if obj.spec ~= nil and obj.spec.size ~= nil and table.getn(obj.spec.parts or {}) >= obj.spec.size then
  hs.status = "Healthy"
  hs.message = "widget assembled"
  return hs
end
hs.status = "Degraded"
hs.message = "widget is missing parts"
return hs
]])
    proc.write_file(dir .. "/widget.yaml", [[
apiVersion: example.com/v1
kind: Widget
metadata: {name: gear}
spec: {size: 2, parts: [a]}
]])
    proc.write_file(dir .. "/moonship.yaml", [[
app: widgets
manifests:
- name: gear
  path: widget.yaml
workflows:
- name: up
  order_from: [manifests.gear]
]])
    proc.write_file(dir .. "/hooks.lua", 'return {health_dir = "health"}\n')
    local code, ev = deploy(sim, {dir .. "/moonship.yaml", "-w", "up"})
    assert.equal(3, code)
    local failed = find(ev, {event = "task_finished", task = "manifests.gear"})
    assert.equal("failed", failed.state)
    assert.matches("widget is missing parts", failed.message)
    proc.write_file(dir .. "/widget.yaml", [[
apiVersion: example.com/v1
kind: Widget
metadata: {name: gear}
spec: {size: 2, parts: [a, b]}
]])
    code, ev = deploy(sim, {dir .. "/moonship.yaml", "-w", "up"})
    assert.equal(0, code)
    assert.equal("succeeded", final_state(ev, "manifests.gear"))
  end)
end)

describe("moonship deploy: interrupted", function()
  it("Ctrl-C: exit 130, every task's state in the journal, nothing unrecorded", function()
    local sim = kubesim.start {scenario = SHOP_SCENARIO, time_scale = 0.05}
    local dir = proc.tmpdir()
    local template = copy_template(dir, SHOP)
    local r = proc.run {proc.source_dir .. "/tests/support/interrupt-at", '"task":"jobs.scrub"', "INT",
      proc.moonship, "deploy", template, "-w", "deploy", "-o", "json", "--kubeconfig", sim.kubeconfig}
    sim:stop()
    assert.matches("exit=130", r.stdout)
    local ev = events.decode(r.stdout)
    for _, task in ipairs {"services.frontend", "jobs.migrate", "jobs.scrub", "services.backend"} do
      assert.truthy(final_state(ev, task), task .. " has no final state")
    end
    assert.equal("cancelled", final_state(ev, "services.backend"))
    assert.equal("interrupted", find(ev, {event = "run_finished"}).state)
    -- the local journal has the same events
    local path = io.popen("ls " .. dir .. "/.moonship/runs/*.jsonl"):read("l")
    local lines = 0
    for _ in proc.read_file(path):gmatch("[^\n]+") do lines = lines + 1 end
    assert.equal(#ev, lines)
  end)
end)
