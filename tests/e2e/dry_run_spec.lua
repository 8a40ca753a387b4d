-- `moonship deploy --dry-run` into a namespace that does not exist yet: the Namespace is checked
-- by a server-side dry run, the objects to go in it as far as the server can without the
-- namespace (its schema: kube-apiserver's NamespaceLifecycle admission answers 404 before the
-- object's own validation), and every line and event says it is a dry run. Nothing is stored.
local events = require "support.events"
local kubesim = require "support.kubesim"
local proc = require "support.proc"

local APP = [[
app: demo
services:
- {name: api, image: example/api:1, ports: [{type: container_port, port: 8080}]}
jobs:
- {name: migrate, image: example/api:1, command: [migrate]}
manifests:
- {name: broken, path: broken.yaml}
- {name: unmatched, path: unmatched.yaml}
workflows:
- name: up
  parallelize:
  - step: first
    tasks: [jobs.migrate]
  - step: second
    tasks: [services.api]
- name: broken
  order_from: [manifests.broken]
- name: unmatched
  order_from: [manifests.unmatched]
]]

-- A field of the wrong type: the server's schema check refuses it, namespace or not.
local BROKEN = [[
apiVersion: apps/v1
kind: Deployment
metadata: {name: broken}
spec:
  replicas: three
  selector: {matchLabels: {app: broken}}
  template:
    metadata: {labels: {app: broken}}
    spec: {containers: [{name: main, image: nginx}]}
]]

-- Well typed but invalid (the selector does not match the template's labels): only the
-- validation that needs the namespace to exist would see it.
local UNMATCHED = [[
apiVersion: apps/v1
kind: Deployment
metadata: {name: unmatched}
spec:
  selector: {matchLabels: {app: one}}
  template:
    metadata: {labels: {app: other}}
    spec: {containers: [{name: main, image: nginx}]}
]]

local SCHEMA_ONLY = "(schema checked only: namespace newns does not exist yet)"

describe("moonship deploy --dry-run", function()
  local sim, dir, before
  before_each(function()
    sim = kubesim.start {scenario = "namespaces: [existing]\n"}
    dir = proc.tmpdir()
    proc.write_file(dir .. "/moonship.yaml", APP)
    proc.write_file(dir .. "/broken.yaml", BROKEN)
    proc.write_file(dir .. "/unmatched.yaml", UNMATCHED)
    before = sim:stats()
  end)
  after_each(function()
    sim:stop()
    os.execute("rm -rf " .. proc.quote(dir))
  end)

  local function plain(...)
    local argv = {proc.moonship, "deploy", dir .. "/moonship.yaml", "--kubeconfig", sim.kubeconfig, "--dry-run"}
    for _, a in ipairs {...} do argv[#argv + 1] = a end
    return proc.run(argv)
  end

  local function lines(text)
    local out = {}
    for l in text:gmatch("[^\n]+") do out[#out + 1] = l end
    return out
  end

  -- Nothing stored: no object, no new resourceVersion, and no namespace newns.
  local function nothing_stored()
    local stats = sim:stats()
    assert.equal(before.objects, stats.objects)
    assert.equal(before.resource_version, stats.resource_version)
    assert.equal(404, (sim:request("GET", "/api/v1/namespaces/newns")))
  end

  it("into a new namespace: exit 0, every line a dry run, every object 'would apply'", function()
    local r = plain("-w", "up", "-n", "newns")
    assert.equal(0, r.code, r.stderr)
    assert.matches("moonship: dry run: namespace newns does not exist yet %(the server accepted it as a new one%); "
      .. "the objects to go in it are checked against the API schema only", r.stderr)
    -- the progress lines, then a blank line and the summary table, whose title says it too
    local progress, summary = r.stdout:match("^(.-\n)\n(.*)$")
    assert.matches("^up demo → newns: succeeded in %S+ %(exit 0%)  %[dry run: nothing was applied%]", summary)
    assert.matches("\n  services%.api  +second +%S+ passed ", summary)
    local out = lines(progress)
    assert.is_true(#out >= 8)
    for _, l in ipairs(out) do
      assert.matches("^%d%d:%d%d:%d%d %[dry run%] ", l)
      -- no line says something was applied
      local claim = l:gsub("nothing will be applied", ""):gsub("nothing was applied", "")
      assert.is_nil(claim:find("applied", 1, true), l)
    end
    local want = {
      "jobs.migrate: would apply job/migrate-%S+ " .. SCHEMA_ONLY:gsub("%p", "%%%0"),
      "services.api: would apply deployment/api " .. SCHEMA_ONLY:gsub("%p", "%%%0"),
      "services.api: would apply service/api " .. SCHEMA_ONLY:gsub("%p", "%%%0"),
      "jobs.migrate passed\n", "services.api passed\n",
      "run %S+: workflow up of demo in namespace newns %(2 steps%): nothing will be applied\n",
      "run %S+ succeeded %(exit 0%): nothing was applied\n",
    }
    for _, pattern in ipairs(want) do assert.matches("%] " .. pattern, r.stdout) end
    nothing_stored()
  end)

  it("into a new namespace with -o json: every event carries dry_run, objects 'would apply'", function()
    local code, ev, stderr = events.deploy(sim, {dir .. "/moonship.yaml", "-w", "up", "-n", "newns", "--dry-run"})
    assert.equal(0, code, stderr)
    assert.is_true(#ev >= 10)
    local applied = {}
    for _, e in ipairs(ev) do
      assert.is_true(e.dry_run, e.event)
      if e.event == "task_progress" then
        assert.matches("^would apply ", e.message)
        assert.equal(SCHEMA_ONLY, e.message:sub(-#SCHEMA_ONLY))
        applied[#applied + 1] = e.objects[1].kind .. "/" .. e.objects[1].name
      end
      if e.event == "task_finished" then assert.equal("succeeded", e.state) end
    end
    table.sort(applied)
    assert.equal(3, #applied)
    assert.equal("Deployment/api", applied[1])
    assert.matches("^Job/migrate%-", applied[2])
    assert.equal("Service/api", applied[3])
    assert.same({event = "run_finished", state = "succeeded", exit_code = 0},
      {event = ev[#ev].event, state = ev[#ev].state, exit_code = ev[#ev].exit_code})
    nothing_stored()
  end)

  it("an object with a field of the wrong type still fails there, with the server's message", function()
    local message = "apply deployment/broken: PATCH /apis/apps/v1/namespaces/newns/deployments/broken: "
      .. "BadRequest (400): failed to create typed patch object (apps/v1, Kind=Deployment): .spec.replicas: "
      .. "expected numeric (int or float), got string"
    local r = plain("-w", "broken", "-n", "newns")
    assert.equal(3, r.code, r.stderr)
    assert.truthy(r.stdout:find("[dry run] manifests.broken FAILED: " .. message .. "\n", 1, true), r.stdout)
    local code, ev = events.deploy(sim, {dir .. "/moonship.yaml", "-w", "broken", "-n", "newns", "--dry-run"})
    assert.equal(3, code)
    local finished = events.find(ev, {event = "task_finished", task = "manifests.broken"})
    assert.same({"failed", message, true}, {finished.state, finished.message, finished.dry_run})
    nothing_stored()
  end)

  it("says what a new namespace leaves unchecked: an invalid object fails only where the namespace exists", function()
    -- the namespace exists: the server's validation runs and refuses the object
    local r = plain("-w", "unmatched", "-n", "existing")
    assert.equal(3, r.code, r.stderr)
    assert.truthy(r.stdout:find("Invalid (422): Deployment.apps \"unmatched\" is invalid: "
      .. "spec.template.metadata.labels: Invalid value: `selector` does not match template `labels`", 1, true), r.stdout)
    -- it does not: the namespace's 404 comes first, and the line says the object was not validated
    r = plain("-w", "unmatched", "-n", "newns")
    assert.equal(0, r.code, r.stderr)
    assert.matches("%[dry run%] manifests.unmatched: would apply deployment/unmatched "
      .. SCHEMA_ONLY:gsub("%p", "%%%0"), r.stdout)
    nothing_stored()
  end)

  it("kubesim orders its checks as kube-apiserver: field types, then the namespace, then validation", function()
    local JSON, APPLY = {["Content-Type"] = "application/json"}, {["Content-Type"] = "application/apply-patch+yaml"}
    local function answer(method, path, headers, body)
      local code, text = sim:request(method, path, {headers = headers, body = body})
      local status = assert(kubesim.decode(text))
      return code, status.message
    end
    local typed = '{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d"},"spec":{"replicas":"two"}}'
    local invalid = '{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d"},"spec":{}}'
    for _, dry in ipairs {"", "?dryRun=All"} do
      local sep = dry == "" and "?" or "&"
      assert.same({400, 'Deployment in version "v1" cannot be handled as a Deployment: .spec.replicas: '
        .. "expected numeric (int or float), got string"},
        {answer("POST", "/apis/apps/v1/namespaces/newns/deployments" .. dry, JSON, typed)})
      assert.same({400, "failed to create typed patch object (apps/v1, Kind=Deployment): .spec.replicas: "
        .. "expected numeric (int or float), got string"},
        {answer("PATCH", "/apis/apps/v1/namespaces/newns/deployments/d" .. dry .. sep .. "fieldManager=t", APPLY, typed)})
      assert.same({404, 'namespaces "newns" not found'},
        {answer("POST", "/apis/apps/v1/namespaces/newns/deployments" .. dry, JSON, invalid)})
      assert.same({404, 'namespaces "newns" not found'},
        {answer("PATCH", "/apis/apps/v1/namespaces/newns/deployments/d" .. dry .. sep .. "fieldManager=t", APPLY, invalid)})
      local code = answer("PATCH", "/apis/apps/v1/namespaces/existing/deployments/d" .. dry .. sep .. "fieldManager=t",
        APPLY, invalid)
      assert.equal(422, code)
    end
    nothing_stored()
  end)

  it("into a namespace that exists: each object passed the server's dry run", function()
    local r = plain("-w", "up", "-n", "existing")
    assert.equal(0, r.code, r.stderr)
    assert.is_nil(r.stderr:find("does not exist yet", 1, true))
    assert.matches("%[dry run%] services.api: would apply deployment/api %(the server's dry run passed%)", r.stdout)
    assert.matches("%[dry run%] services.api: would apply service/api %(the server's dry run passed%)", r.stdout)
    nothing_stored()
  end)
end)
