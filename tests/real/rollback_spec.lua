-- The run history and rollbacks against the real control plane: a release whose new image
-- crash-loops under halt_on_error, then `moonship rollback` brings back the previous image and
-- kube-controller-manager rolls the Deployment back until it is available again; the records are
-- Secrets kube-apiserver accepts and lists by label; on_error "rollback" does it in one run.
-- Assertions come from the runs' JSON events and from the objects as kube-apiserver holds them.
local json = require "moonship.json"
local events = require "support.events"
local proc = require "support.proc"
local releases = require "support.releases"
local realcluster = require "support.realcluster"

local find, index_of, final_state = events.find, events.index_of, events.final_state
local q = proc.quote

local SCENARIO = releases.SCENARIO

local cluster, why = realcluster.start {scenario = SCENARIO, time_scale = 0.05}
if not cluster then pending(why) return end

local dirs = {}
-- Release `version` (its web image example/web:<version>) written in dir.
local function template(dir, version, hooks) return releases.write(dir, version, {hooks = hooks}) end
local function tmpdir()
  local dir = proc.tmpdir()
  dirs[#dirs + 1] = dir
  return dir
end

local function moonship(command, args)
  local argv = {proc.moonship, command}
  for _, a in ipairs(args) do argv[#argv + 1] = a end
  argv[#argv + 1] = "--kubeconfig"
  argv[#argv + 1] = cluster.kubeconfig
  local r = proc.run(argv)
  return r.code, r.stdout, r.stderr
end

-- kubectl get ... -o jsonpath=PATH in namespace ns.
local function jsonpath(ns, what, path)
  local ok, out, err = cluster:kubectl("-n", ns, "get", what, "-o", "jsonpath=" .. path)
  assert(ok, ("kubectl get %s -n %s: %s"):format(what, ns, err))
  return out
end

-- The Deployment web as kube-apiserver holds it.
local function web(ns)
  local ok, out, err = cluster:kubectl("-n", ns, "get", "deployment/web", "-o", "json")
  assert(ok, err)
  return json.decode(out)
end

local function available(obj)
  for _, c in ipairs(obj.status.conditions or {}) do
    if c.type == "Available" then return c.status == "True" end
  end
  return false
end

describe("rollback on the real control plane", function()
  teardown(function()
    cluster:stop()
    for _, dir in ipairs(dirs) do os.execute("rm -rf " .. q(dir)) end
  end)

  it("brings back the previous image after a release that crash-loops; the Deployment is available again", function()
    local dir, ns = tmpdir(), "rollback"
    local code, ev1, err = events.deploy(cluster, {template(dir, 1), "-w", "deploy", "-n", ns})
    assert.equal(0, code, err)
    local v1 = find(ev1, {event = "run_finished"}).run

    local ev2
    code, ev2, err = events.deploy(cluster, {template(dir, 2), "-w", "deploy", "-n", ns})
    assert.equal(1, code, err)
    local failed = find(ev2, {event = "task_finished", task = "services.web"})
    assert.same({"failed", "CrashLoopBackOff"}, {failed.state, failed.reason})
    -- the rolling update kept release 1's pods: a crash-looping new pod, no available update
    local before = web(ns)
    assert.equal("example/web:2", before.spec.template.spec.containers[1].image)
    assert.is_true((before.status.unavailableReplicas or 0) >= 1)

    local out
    code, out, err = moonship("rollback", {dir .. "/moonship.yaml", "-n", ns, "-o", "json"})
    assert.equal(0, code, err)
    local ev = events.decode(out)
    assert.equal(v1, find(ev, {event = "run_started"}).rollback_of)
    assert.same({v1, "command"}, {find(ev, {event = "rollback_started"}).to, find(ev, {event = "rollback_started"}).reason})
    assert.equal("succeeded", final_state(ev, "rollback.services.web"))
    assert.equal("skipped", final_state(ev, "rollback.jobs.migrate"))
    assert.is_true(index_of(ev, {event = "task_finished", task = "rollback.services.web"})
      < index_of(ev, {event = "run_finished"}))

    -- kube-controller-manager rolled back: release 1's template, every replica updated and available
    local obj = web(ns)
    assert.equal("example/web:1", obj.spec.template.spec.containers[1].image)
    assert.is_true(obj.status.observedGeneration >= obj.metadata.generation)
    assert.same({2, 2, 2}, {obj.status.replicas, obj.status.updatedReplicas, obj.status.availableReplicas})
    assert.is_nil(obj.status.unavailableReplicas)
    assert.is_true(available(obj))
    -- release 1's ReplicaSet came back as the newest revision (3); release 2's has no pods
    local revisions = jsonpath(ns, "replicasets", '{range .items[*]}{.spec.template.spec.containers[0].image}='
      .. '{.metadata.annotations.deployment\\.kubernetes\\.io/revision}:{.spec.replicas} {end}')
    assert.matches("example/web:1=3:2", revisions, 1, true)
    assert.matches("example/web:2=2:0", revisions, 1, true)
    -- no Job ran again
    local jobs = 0
    for _ in jsonpath(ns, "jobs", "{.items[*].metadata.name}"):gmatch("%S+") do jobs = jobs + 1 end
    assert.equal(2, jobs)

    -- the records: Secrets of type moonship.dev/run.v1, found by their labels
    -- (beside them, the app's ApplySet parent: moonship-applyset-shop)
    local names = {}
    for name in jsonpath(ns, "secrets", "{.items[*].metadata.name}"):gmatch("%S+") do
      if name:match("^moonship%.run%.") then names[#names + 1] = name end
    end
    assert.equal("moonship.run.v1.shop.local.1 moonship.run.v1.shop.local.2 moonship.run.v1.shop.local.3",
      table.concat(names, " "))
    local ok, kout = cluster:kubectl("-n", ns, "get", "secrets", "-l", "moonship.dev/state=halted",
      "-o", "jsonpath={.items[*].type} {.items[*].immutable}")
    assert(ok)
    assert.equal("moonship.dev/run.v1 true", kout)
    code, out, err = moonship("history", {dir .. "/moonship.yaml", "-n", ns, "-o", "json"})
    assert.equal(0, code, err)
    local list = json.decode(out)
    assert.same({"succeeded", "halted", "succeeded"}, {list[1].state, list[2].state, list[3].state})
    assert.same({v1, list[3].template_hash}, {list[1].rollback_of, list[1].template_hash})
  end)

  it("deletes, once rolled back, what the release it replaces added (foreground, waited for)", function()
    local dir, ns = tmpdir(), "rollback-prune"
    local code, _, err = events.deploy(cluster, {template(dir, 1), "-w", "deploy", "-n", ns})
    assert.equal(0, code, err)
    -- release 2 adds the service extra (in the first step) and crash-loops web
    releases.write(dir, 2, {extra = true})
    code, _, err = events.deploy(cluster, {dir .. "/moonship.yaml", "-w", "deploy", "-n", ns})
    assert.equal(1, code, err)
    assert.equal("extra", jsonpath(ns, "deployment/extra", "{.metadata.name}"))
    local out
    code, out, err = moonship("rollback", {dir .. "/moonship.yaml", "-n", ns, "-o", "json"})
    assert.equal(0, code, err)
    local ev = events.decode(out)
    assert.equal("succeeded", final_state(ev, "rollback.prune"))
    local deleted = {}
    for _, e in ipairs(ev) do
      if e.task == "rollback.prune" and e.phase == "deleted" then deleted[#deleted + 1] = e.objects[1].kind .. "/" .. e.objects[1].name end
    end
    table.sort(deleted)
    assert.same({"Deployment/extra", "Service/extra"}, deleted)
    -- gone when the step ended: kube-apiserver no longer has them, nor the ReplicaSets they owned
    local ok, names = cluster:kubectl("-n", ns, "get", "deployments,services,replicasets", "-o",
      "jsonpath={.items[*].metadata.name}")
    assert(ok, names)
    for name in names:gmatch("%S+") do assert.is_nil(name:match("^extra"), name .. " is still there") end
    assert.equal("example/web:1", web(ns).spec.template.spec.containers[1].image)
  end)

  it("rolls back in the same run when on_error answers \"rollback\"", function()
    local dir, ns = tmpdir(), "rollback-hook"
    local code, ev1, err = events.deploy(cluster, {template(dir, 1), "-w", "deploy", "-n", ns})
    assert.equal(0, code, err)
    local v1 = find(ev1, {event = "run_finished"}).run
    local ev
    code, ev, err = events.deploy(cluster, {template(dir, 2, 'return {on_error = function() return "rollback" end}\n'),
                                            "-w", "deploy", "-n", ns})
    assert.equal(1, code, err)
    assert.is_true(find(ev, {event = "run_halting"}).rollback)
    assert.same({v1, "on_error"}, {find(ev, {event = "rollback_started"}).to, find(ev, {event = "rollback_started"}).reason})
    assert.equal("succeeded", final_state(ev, "rollback.services.web"))
    assert.same({"halted", "succeeded"}, {ev[#ev].state, ev[#ev].rollback})
    local obj = web(ns)
    assert.same({"example/web:1", 2, true},
      {obj.spec.template.spec.containers[1].image, obj.status.availableReplicas, available(obj)})
  end)
end)
