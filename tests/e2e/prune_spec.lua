-- Pruning end to end on kubesim (README "Pruning"): the moonship binary deploys a template, the
-- template drops a service, a job and another workflow's service, and deploy --prune deletes
-- exactly what the workflow applied and the template no longer produces, each deletion an event
-- in the JSON output and the journal; a halted run, an interrupted run and a dry run delete
-- nothing; `prune: true` in the template prunes without the flag. Then the applyset module
-- itself against kubesim: a CRD kind found by discovery, and foreground deletions waited for.
local events = require "support.events"
local kubesim = require "support.kubesim"
local proc = require "support.proc"
local releases = require "support.releases"
local applyset = require "moonship.kube.applyset"
local kube = require "moonship.kube"
local sched = require "moonship.sched"

local deploy, find, final_state = events.deploy, events.find, events.final_state

local NS = "shop-dev"
local PARENT = "moonship-applyset-shop-dev"

-- Simulated seconds at --time-scale 0.02: migrate runs a second of real time, long enough for
-- the interrupt below to land while it runs; check fails.
local SCENARIO = [[
defaults: {start_delay: 0.2, ready_delay: 0.3, duration: 1, jitter: 0}
workloads:
  "migrate-*": {duration: 50, logs: ["migrating"]}
  "check-*": {duration: 1, exit_code: 1, logs: ["check failed"]}
]]

local V1 = [[
app: shop
services:
- {name: web, image: example/web:1, ports: [{type: container_port, port: 80}]}
- {name: worker, image: example/worker:1, ports: [{type: container_port, port: 9000}]}
- {name: api, image: example/api:1, ports: [{type: container_port, port: 8080}]}
- {name: admin, image: example/admin:1}
jobs:
- {name: migrate, image: example/tools:1, command: [migrate]}
- {name: seed, image: example/tools:1, command: [seed]}
workflows:
- name: setup
  parallelize:
  - {step: data, tasks: [jobs.migrate, jobs.seed]}
  - {step: apps, tasks: [services.web, services.worker, services.api]}
- name: patch
  parallelize:
  - {step: apps, tasks: [services.api, services.admin]}
]]

-- worker, admin (patch's) and the job seed are gone; check halts setup when it is there.
local function v2(opts)
  opts = opts or {}
  local check = opts.check and "- {name: check, image: example/tools:1, command: [check], halt_on_error: true}\n" or ""
  return (opts.prune and "prune: true\n" or "") .. [=[
app: shop
services:
- {name: web, image: example/web:1, ports: [{type: container_port, port: 80}]}
- {name: api, image: example/api:1, ports: [{type: container_port, port: 8080}]}
jobs:
- {name: migrate, image: example/tools:1, command: [migrate]}
]=] .. check .. [=[
workflows:
- name: setup
  parallelize:
  - {step: data, tasks: [jobs.migrate]=] .. (opts.check and ", jobs.check" or "") .. [=[]}
  - {step: apps, tasks: [services.web, services.api]}
- name: patch
  parallelize:
  - {step: apps, tasks: [services.api]}
]=]
end

local FOREIGN = releases.foreign(NS)

-- {"kind/name" = object} of what the namespace holds of these kinds.
local function held(sim)
  local out = {}
  for _, path in ipairs {"/apis/apps/v1/namespaces/" .. NS .. "/deployments", "/api/v1/namespaces/" .. NS .. "/services",
                         "/apis/batch/v1/namespaces/" .. NS .. "/jobs"} do
    local code, list = sim:get_json(path)
    assert.equal(200, code)
    for _, item in ipairs(list.items) do
      out[(item.kind or path:match("/(%a+)$"):sub(1, -2)):lower() .. "/" .. item.metadata.name] = item
    end
  end
  return out
end

local function names_of(map)
  local out = {}
  for k in pairs(map) do out[#out + 1] = k end
  table.sort(out)
  return out
end

-- The prune task's deleted objects, "kind/name", sorted, and its events.
local function deleted(ev)
  local out, evs = {}, {}
  for _, e in ipairs(ev) do
    if e.event == "task_progress" and e.task == "prune" and e.phase == "deleted" then
      assert.equal(1, #e.objects)
      out[#out + 1] = e.objects[1].kind:lower() .. "/" .. e.objects[1].name
      evs[#evs + 1] = e
    end
  end
  table.sort(out)
  return out, evs
end

-- The same object (uid), not being deleted, that no moonship manager ever wrote (its status
-- moves on: the Deployment controller writes it).
local function assert_untouched(before, after)
  assert.truthy(after, before.metadata.name .. " is gone")
  assert.equal(before.metadata.uid, after.metadata.uid)
  assert.is_nil(after.metadata.deletionTimestamp)
  assert.is_nil((after.metadata.labels or {})["applyset.kubernetes.io/part-of"])
  for _, mf in ipairs(after.metadata.managedFields or {}) do
    assert.is_nil(mf.manager:match("^moonship"), "written by " .. mf.manager)
  end
end

local function job_of(ev, task)
  for _, e in ipairs(ev) do
    if e.event == "task_progress" and e.task == task and e.objects then
      for _, o in ipairs(e.objects) do if o.kind == "Job" then return o.name end end
    end
  end
end

describe("moonship deploy --prune on kubesim", function()
  local sim
  after_each(function() if sim then sim:stop() sim = nil end end)

  it("deletes what the workflow dropped and nothing else; halted, interrupted and dry runs delete nothing", function()
    sim = kubesim.start {scenario = SCENARIO, time_scale = 0.02}
    local dir = proc.tmpdir()
    local template = dir .. "/moonship.yaml"
    local function run(text, args)
      proc.write_file(template, text)
      local argv = {template, "--env", "dev"}
      for _, a in ipairs(args) do argv[#argv + 1] = a end
      return deploy(sim, argv)
    end

    -- three runs of V1: setup, patch, setup again (a second Job of each job)
    local code, ev1, err = run(V1, {"-w", "setup"})
    assert.equal(0, code, err)
    local code2, ev2, err2 = run(V1, {"-w", "patch"})
    assert.equal(0, code2, err2)
    local code3, ev3, err3 = run(V1, {"-w", "setup"})
    assert.equal(0, code3, err3)
    -- the foreign object: the app's label, another manager, no part-of label
    local fcode = sim:apply("/apis/apps/v1/namespaces/" .. NS .. "/deployments/legacy", FOREIGN, "other-tool")
    assert.equal(201, fcode)

    -- every object moonship applied is a member, named by the workflow that applied it last
    local id = applyset.id(PARENT, NS, "Secret", "")
    local before = held(sim)
    assert.truthy(before["deployment/legacy"])
    for name, obj in pairs(before) do
      local labels, ann = obj.metadata.labels or {}, obj.metadata.annotations or {}
      if name == "deployment/legacy" then
        assert.is_nil(labels["applyset.kubernetes.io/part-of"])
      else
        assert.equal(id, labels["applyset.kubernetes.io/part-of"], name)
        local want = (name == "deployment/admin" and "patch") or "setup"
        assert.equal(want, ann["moonship.dev/workflow"], name)
      end
    end
    local pcode, parent = sim:get_json("/api/v1/namespaces/" .. NS .. "/secrets/" .. PARENT)
    assert.equal(200, pcode)
    assert.equal(id, parent.metadata.labels["applyset.kubernetes.io/id"])
    assert.equal("Deployment.apps,Job.batch,Service", parent.metadata.annotations["applyset.kubernetes.io/contains-group-kinds"])
    assert.matches("^moonship/", parent.metadata.annotations["applyset.kubernetes.io/tooling"])
    local migrate1, migrate3 = job_of(ev1, "jobs.migrate"), job_of(ev3, "jobs.migrate")
    local seed1, seed3 = job_of(ev1, "jobs.seed"), job_of(ev3, "jobs.seed")
    assert.truthy(before["job/" .. migrate1] and before["job/" .. migrate3] and before["job/" .. seed1] and before["job/" .. seed3])
    assert.equal("succeeded", find(ev2, {event = "run_finished"}).state)

    -- halted (check fails under halt_on_error): no prune step, the prune task skipped
    local hcode, hev = run(v2 {check = true}, {"-w", "setup", "--prune"})
    assert.equal(1, hcode)
    assert.equal("skipped", final_state(hev, "prune"))
    assert.is_nil(find(hev, {event = "task_started", task = "prune"}))
    assert.same({}, deleted(hev))
    local check_job = job_of(hev, "jobs.check")
    assert.truthy(held(sim)["deployment/worker"])

    -- interrupted while migrate runs (its Job applied): exit 130, the prune task cancelled,
    -- nothing deleted
    proc.write_file(template, v2())
    local r = proc.run {proc.source_dir .. "/tests/support/interrupt-at",
      '"message":"applied job/migrate-.*"task":"jobs.migrate"', "INT",
      proc.moonship, "deploy", template, "--env", "dev", "-w", "setup", "--prune", "-o", "json", "--kubeconfig", sim.kubeconfig}
    assert.matches("exit=130", r.stdout)
    local iev = events.decode(r.stdout)
    assert.equal("interrupted", find(iev, {event = "run_finished"}).state)
    assert.equal("cancelled", final_state(iev, "prune"))
    assert.is_nil(find(iev, {event = "task_started", task = "prune"}))
    assert.truthy(held(sim)["deployment/worker"])

    -- the dry run says what would go, and deletes nothing
    local want = {"deployment/worker", "job/" .. check_job, "job/" .. seed1, "job/" .. seed3, "service/worker"}
    table.sort(want)
    local dcode, dev, derr = run(v2(), {"-w", "setup", "--prune", "--dry-run"})
    assert.equal(0, dcode, derr)
    local would, wevs = deleted(dev)
    assert.same(want, would)
    for _, e in ipairs(wevs) do
      assert.is_true(e.dry_run)
      assert.matches("^would delete ", e.message)
    end
    local now = held(sim)
    for name in pairs(before) do assert.truthy(now[name], name .. " went in a dry run") end

    -- the prune: exactly the dropped service's Deployment and Service, the dropped jobs' Jobs
    local code4, ev4, err4, stdout4 = run(v2(), {"-w", "setup", "--prune"})
    assert.equal(0, code4, err4)
    assert.same(want, (deleted(ev4)))
    local step = find(ev4, {event = "step_started", step = "prune"})
    assert.truthy(step)
    assert.equal(3, step.index)
    assert.equal("succeeded", final_state(ev4, "prune"))
    assert.equal("deleted 5 objects", find(ev4, {event = "task_finished", task = "prune"}).message)
    local run_started = ev4[1]
    assert.equal(3, run_started.steps)
    assert.equal("prune", run_started.plan[3].step)
    local after = held(sim)
    for _, gone in ipairs(want) do assert.is_nil(after[gone], gone .. " survived the prune") end
    -- nothing else was touched: the foreign object (same resourceVersion), patch's admin, the
    -- earlier Jobs of the kept job, web and api
    assert_untouched(before["deployment/legacy"], after["deployment/legacy"])
    for _, kept in ipairs {"deployment/admin", "job/" .. migrate1, "job/" .. migrate3, "deployment/web", "service/web",
                           "deployment/api", "service/api"} do
      assert.truthy(after[kept], kept .. " was pruned")
    end
    assert.equal(before["deployment/admin"].metadata.uid, after["deployment/admin"].metadata.uid)
    assert.equal("patch", after["deployment/admin"].metadata.annotations["moonship.dev/workflow"])
    -- the journal has the same events as the JSON output
    local journal = assert(io.popen("ls -t " .. dir .. "/.moonship/runs/*.jsonl")):read("l")
    assert.equal(stdout4:gsub("%s+$", ""), proc.read_file(journal):gsub("%s+$", ""))

    -- prune: true in the template, turned off for one run by --no-prune: no prune step
    local code_np, ev_np, err_np = run(v2 {prune = true}, {"-w", "patch", "--no-prune"})
    assert.equal(0, code_np, err_np)
    assert.is_nil(find(ev_np, {task = "prune"}))
    assert.truthy(held(sim)["deployment/admin"])
    -- prune: true in the template: patch prunes without the flag, and only its admin
    local code5, ev5, err5 = run(v2 {prune = true}, {"-w", "patch"})
    assert.equal(0, code5, err5)
    assert.same({"deployment/admin"}, (deleted(ev5)))
    -- what is left: web, api, the foreign object, and every run's Job of migrate (the three
    -- setups, the halted one and the interrupted one)
    local left, migrates = {}, 0
    for _, name in ipairs(names_of(held(sim))) do
      if name:match("^job/migrate%-") then migrates = migrates + 1 else left[#left + 1] = name end
    end
    assert.same({"deployment/api", "deployment/legacy", "deployment/web", "service/api", "service/web"}, left)
    assert.equal(5, migrates)
  end)
end)

describe("moonship deploy and another tool's ApplySet", function()
  local sim
  after_each(function() if sim then sim:stop() sim = nil end end)

  it("refuses a parent whose tooling is not moonship: exit 2 before anything is applied, the parent unchanged", function()
    sim = kubesim.start {scenario = SCENARIO, time_scale = 0.02}
    local id = applyset.id(PARENT, NS, "Secret", "")
    assert.equal(201, (sim:apply("/api/v1/namespaces/" .. NS, '{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"shop-dev"}}')))
    local code, parent = sim:apply("/api/v1/namespaces/" .. NS .. "/secrets/" .. PARENT, ([[
apiVersion: v1
kind: Secret
metadata:
  name: %s
  labels: {applyset.kubernetes.io/id: %s}
  annotations: {applyset.kubernetes.io/tooling: kubectl/v1.37.2, applyset.kubernetes.io/contains-group-kinds: Deployment.apps}
]]):format(PARENT, id), "kubectl-applyset")
    assert.equal(201, code)
    local dir = proc.tmpdir()
    proc.write_file(dir .. "/moonship.yaml", V1)
    for _, extra in ipairs {{}, {"--dry-run"}, {"--prune"}} do
      local argv = {dir .. "/moonship.yaml", "--env", "dev", "-w", "setup"}
      for _, a in ipairs(extra) do argv[#argv + 1] = a end
      local rc, ev, stderr = deploy(sim, argv)
      assert.equal(2, rc)
      assert.same({}, ev)
      assert.equal("moonship: applyset parent secret/" .. PARENT .. " in namespace " .. NS .. " is managed by the tooling "
        .. '"kubectl", not moonship: left alone\n', stderr)
    end
    assert.same({}, names_of(held(sim)))
    local _, after = sim:get_json("/api/v1/namespaces/" .. NS .. "/secrets/" .. PARENT)
    assert.equal(parent.metadata.resourceVersion, after.metadata.resourceVersion)
  end)
end)

describe("applyset on kubesim", function()
  local sim
  after_each(function() if sim then sim:stop() sim = nil end end)

  it("finds a CRD kind's version by discovery, waits for a foreground deletion's dependents", function()
    sim = kubesim.start {scenario = SCENARIO, time_scale = 0.02, args = {"--kinds", "example.com/v1/Widget/widgets"}}
    sched.run(function()
      local client = assert(kube.connect {kubeconfig = sim.kubeconfig})
      local set = applyset.new(client, {app = "shop", environment = "e2e", namespace = "default"})
      local widget = {apiVersion = "example.com/v1", kind = "Widget", metadata = {name = "gear", namespace = "default"},
                      spec = {size = 1}}
      local web = {apiVersion = "apps/v1", kind = "Deployment", metadata = {name = "web", namespace = "default"},
                   spec = {replicas = 2, selector = {matchLabels = {app = "web"}},
                           template = {metadata = {labels = {app = "web"}},
                                       spec = {containers = {{name = "web", image = "example/web:1"}}}}}}
      assert(set:record {widget, web})
      for _, obj in ipairs {widget, web} do
        set:label(obj, "setup")
        assert(client:apply(obj))
      end
      assert(client:wait_ready(web, {timeout = 30}))
      local stale = assert(set:stale({}, "setup"))
      assert.equal(2, #stale)
      -- kinds in contains-group-kinds order: Deployment.apps, Widget.example.com
      assert.equal("Deployment", stale[1].kind)
      assert.equal("Widget", stale[2].kind)
      local pods = assert(client:list("v1", "Pod", {namespace = "default", label_selector = "app=web"}))
      assert.equal(2, #pods.items)
      local said = {}
      assert(set:prune(stale, {timeout = 30, on_deleted = function(obj, message) said[#said + 1] = message end}))
      table.sort(said)
      assert.same({"deleted deployment/web", "deleted widget/gear"}, said)
      -- gone means gone, with its ReplicaSet and pods (foreground)
      assert.equal("not_found", select(3, client:get("apps/v1", "Deployment", "web", "default")))
      assert.equal(0, #assert(client:list("apps/v1", "ReplicaSet", {namespace = "default"})).items)
      assert.equal(0, #assert(client:list("v1", "Pod", {namespace = "default", label_selector = "app=web"})).items)
      assert.same({}, assert(set:stale({}, "setup")))
      client:close()
    end)
  end)
end)
