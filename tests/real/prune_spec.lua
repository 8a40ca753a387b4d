-- Pruning against the real control plane (README "Pruning"): a template drops a service, and
-- deploy --prune deletes its Deployment and Service with foreground propagation, waited for
-- (their ReplicaSet and pods are gone when the run ends), and nothing else: not another tool's
-- Deployment with the app's label, not the earlier runs' Jobs of a job still in the template; a
-- dry run deletes nothing. kubectl (the same release, throwaway HOME) sees the same set: the
-- part-of label selects exactly the members; kubectl refuses moonship's parent, naming its
-- tooling, and changes nothing; kubectl's own parent of the same name carries the id moonship
-- computes; and once the parent is handed to kubectl, kubectl's dry-run prune lists what
-- moonship prunes plus the earlier runs' Jobs, which only moonship knows to keep.
local events = require "support.events"
local proc = require "support.proc"
local releases = require "support.releases"
local realcluster = require "support.realcluster"
local applyset = require "moonship.kube.applyset"

local find, final_state = events.find, events.final_state
local q = proc.quote

local SCENARIO = [[
defaults: {start_delay: 0.2, ready_delay: 0.3, duration: 1, jitter: 0}
]]

local cluster, why = realcluster.start {scenario = SCENARIO, time_scale = 0.05}
if not cluster then pending(why) return end

local NS = "shop-dev"
local PARENT = "moonship-applyset-shop-dev"

local V1 = [[
app: shop
services:
- {name: web, image: example/web:1, ports: [{type: container_port, port: 80}]}
- {name: worker, image: example/worker:1, replicas: 2, ports: [{type: container_port, port: 9000}]}
jobs:
- {name: migrate, image: example/tools:1, command: [migrate]}
workflows:
- name: setup
  parallelize:
  - {step: data, tasks: [jobs.migrate]}
  - {step: apps, tasks: [services.all]}
]]
local V2 = V1:gsub("%- {name: worker[^\n]*\n", "")

local FOREIGN = releases.foreign(NS)

local function web_for(ns)
  return ([[
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: %s}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: example/web:1}]}
]]):format(ns)
end

local dir = proc.tmpdir()
local TEMPLATE = dir .. "/moonship.yaml"

local function deploy(text, ...)
  proc.write_file(TEMPLATE, text)
  return events.deploy(cluster, {TEMPLATE, "--env", "dev", "-w", "setup", ...})
end

-- kubectl with KUBECTL_APPLYSET=true (the ApplySet flags are alpha): ok, stdout, stderr.
local function kubectl_applyset(...)
  local kubectl = assert(require("support.kubesim").kubectl_path())
  local parts = {"env -u LD_PRELOAD KUBECTL_APPLYSET=true HOME=" .. q(cluster.home), q(kubectl), "--kubeconfig",
                 q(cluster.kubeconfig)}
  for _, a in ipairs {...} do parts[#parts + 1] = q(a) end
  local err = dir .. "/kubectl.err"
  local p = assert(io.popen(table.concat(parts, " ") .. " 2>" .. q(err)))
  local out = p:read("a")
  local ok = p:close()
  return ok == true, out, proc.read_file(err)
end

-- "kind/name" of kubectl's "kind.group/name" lines, sorted.
local function short_names(text, suffix)
  local out = {}
  for line in text:gmatch("[^\n]+") do
    local ref = suffix and line:match("^(%S+) " .. suffix .. "$") or (not suffix and line:match("^(%S+)$"))
    if ref then
      local kind, name = ref:match("^([^./]+)[^/]*/(.+)$")
      out[#out + 1] = kind .. "/" .. name
    end
  end
  table.sort(out)
  return out
end

local function get_names(...)
  local ok, out, err = cluster:kubectl("-n", NS, "get", ...)
  assert(ok, err)
  return short_names(out)
end

local function jsonpath(what, path)
  local ok, out, err = cluster:kubectl("-n", NS, "get", what, "-o", "jsonpath=" .. path)
  assert(ok, err)
  return out
end

local function resource_version(what) return jsonpath(what, "{.metadata.resourceVersion}") end

local function deleted(ev)
  local out = {}
  for _, e in ipairs(ev) do
    if e.event == "task_progress" and e.task == "prune" and e.phase == "deleted" then
      out[#out + 1] = e.objects[1].kind:lower() .. "/" .. e.objects[1].name
    end
  end
  table.sort(out)
  return out
end

local function job_of(ev)
  for _, e in ipairs(ev) do
    for _, o in ipairs(e.task == "jobs.migrate" and e.objects or {}) do
      if o.kind == "Job" then return o.name end
    end
  end
end

describe("pruning on the real control plane", function()
  teardown(function()
    cluster:stop()
    os.execute("rm -rf " .. q(dir))
  end)

  it("deletes the dropped service with foreground propagation, waited for, and nothing else; kubectl sees the same set", function()
    local code1, ev1, err1 = deploy(V1)
    assert.equal(0, code1, err1)
    local code2, ev2, err2 = deploy(V1)
    assert.equal(0, code2, err2)
    local job1, job2 = "job/" .. job_of(ev1), "job/" .. job_of(ev2)
    proc.write_file(dir .. "/legacy.yaml", FOREIGN)
    local fok, _, ferr = cluster:kubectl("apply", "--server-side", "--field-manager", "other-tool", "-f", dir .. "/legacy.yaml")
    assert(fok, ferr)

    -- the members, as kubectl selects them by the part-of label: everything moonship applied
    local id = applyset.id(PARENT, NS, "Secret", "")
    local ok, got_id = cluster:kubectl("-n", NS, "get", "secret", PARENT, "-o",
      "jsonpath={.metadata.labels.applyset\\.kubernetes\\.io/id} {.metadata.annotations.applyset\\.kubernetes\\.io/contains-group-kinds}")
    assert.truthy(ok)
    assert.equal(id .. " Deployment.apps,Job.batch,Service", got_id)
    local members = {"deployment/web", "deployment/worker", job1, job2, "service/web", "service/worker"}
    table.sort(members)
    assert.same(members, get_names("deploy,svc,job", "-l", "applyset.kubernetes.io/part-of=" .. id, "-o", "name"))

    -- kubectl refuses moonship's parent, naming the tooling, before applying anything
    proc.write_file(dir .. "/web.yaml", web_for(NS))
    local parent_rv, web_rv = resource_version("secret/" .. PARENT), resource_version("deployment/web")
    local kok, _, kerr = kubectl_applyset("apply", "-n", NS, "--prune", "--applyset=secret/" .. PARENT, "--server-side",
      "-f", dir .. "/web.yaml")
    assert.is_false(kok)
    assert.equal('error: ApplySet parent object "secrets./' .. PARENT .. '" already exists and is managed by tooling '
      .. '"moonship" instead of "kubectl"\n', kerr)
    assert.equal(parent_rv, resource_version("secret/" .. PARENT))
    assert.equal(web_rv, resource_version("deployment/web"))

    -- the template drops worker; the dry run lists it and deletes nothing
    local dcode, dev, derr = deploy(V2, "--prune", "--dry-run")
    assert.equal(0, dcode, derr)
    assert.same({"deployment/worker", "service/worker"}, deleted(dev))
    assert.same({"deployment/worker"}, get_names("deploy", "worker", "-o", "name"))

    -- handed to kubectl (its tooling annotation), the same set: kubectl's dry-run prune, given
    -- what the template now renders, lists moonship's stale members plus the earlier Jobs
    local aok, _, aerr = cluster:kubectl("-n", NS, "annotate", "--overwrite", "secret/" .. PARENT,
      "applyset.kubernetes.io/tooling=kubectl/v1.37.2")
    assert(aok, aerr)
    local r = proc.run {proc.moonship, "render", TEMPLATE, "--env", "dev", "-w", "setup", "--run-id", "handover"}
    assert.equal(0, r.code, r.stderr)
    proc.write_file(dir .. "/rendered.yaml", r.stdout)
    local pok, pout, perr = kubectl_applyset("apply", "-n", NS, "--prune", "--applyset=" .. PARENT, "--server-side",
      "--force-conflicts", "--dry-run=server", "-f", dir .. "/rendered.yaml")
    assert(pok, perr)
    local want = {"deployment/worker", job1, job2, "service/worker"}
    table.sort(want)
    assert.same(want, short_names(pout, "pruned %(server dry run%)"))
    local bok, _, berr = cluster:kubectl("-n", NS, "annotate", "--overwrite", "secret/" .. PARENT,
      "applyset.kubernetes.io/tooling=moonship/" .. require("moonship.core").version)
    assert(bok, berr)

    -- the prune: worker's Deployment and Service, gone with their ReplicaSet and pods when the
    -- run ends (foreground: the Deployment goes last)
    local legacy_uid = jsonpath("deployment/legacy", "{.metadata.uid}")
    local code3, ev3, err3 = deploy(V2, "--prune")
    assert.equal(0, code3, err3)
    assert.same({"deployment/worker", "service/worker"}, deleted(ev3))
    assert.equal("succeeded", final_state(ev3, "prune"))
    assert.equal("deleted 2 objects", find(ev3, {event = "task_finished", task = "prune"}).message)
    assert.same({}, get_names("deploy,svc,rs,pods", "-l", "app.kubernetes.io/name=worker", "-o", "name"))
    -- nothing else: the foreign Deployment unchanged, web and every Job of migrate there
    assert.equal(legacy_uid .. " ", jsonpath("deployment/legacy", "{.metadata.uid} {.metadata.deletionTimestamp}"))
    local managers = {}
    for m in jsonpath("deployment/legacy", "{.metadata.managedFields[*].manager}"):gmatch("%S+") do
      assert.is_nil(m:match("^moonship"), "legacy written by " .. m)
      managers[m] = true
    end
    assert.truthy(managers["other-tool"])
    assert.equal("", jsonpath("deployment/legacy", "{.metadata.labels.applyset\\.kubernetes\\.io/part-of}"))
    local left = {"deployment/legacy", "deployment/web", job1, job2, "job/" .. job_of(ev3), "service/web"}
    table.sort(left)
    assert.same(left, get_names("deploy,svc,job", "-o", "name"))
  end)

  it("computes kubectl's id: kubectl's own parent of that name carries it, and moonship refuses that parent", function()
    local ns = "kubectl-set"
    assert(cluster:kubectl("create", "namespace", ns))
    proc.write_file(dir .. "/web2.yaml", web_for(ns))
    local ok, out, err = kubectl_applyset("apply", "-n", ns, "--prune", "--applyset=" .. PARENT, "--server-side",
      "-f", dir .. "/web2.yaml")
    assert(ok, err)
    assert.equal("deployment.apps/web serverside-applied\n", out)
    local _, labels = cluster:kubectl("-n", ns, "get", "secret", PARENT, "-o",
      "jsonpath={.metadata.labels.applyset\\.kubernetes\\.io/id} {.metadata.annotations.applyset\\.kubernetes\\.io/contains-group-kinds}")
    assert.equal(applyset.id(PARENT, ns, "Secret", "") .. " Deployment.apps", labels)
    -- moonship meets kubectl's set: exit 2 before anything is applied
    proc.write_file(TEMPLATE, V1)
    local code, ev, stderr = events.deploy(cluster, {TEMPLATE, "--env", "dev", "-n", ns, "-w", "setup"})
    assert.equal(2, code)
    assert.same({}, ev)
    assert.equal("moonship: applyset parent secret/" .. PARENT .. " in namespace " .. ns .. ' is managed by the tooling '
      .. '"kubectl", not moonship: left alone\n', stderr)
    local _, names = cluster:kubectl("-n", ns, "get", "deploy,svc,job", "-o", "name")
    assert.equal("deployment.apps/web\n", names)
  end)
end)
