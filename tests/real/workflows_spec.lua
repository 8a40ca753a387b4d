-- The workflow semantics of DESIGN.md §3 against the real control plane: a halt and its
-- --resume, a crash-looping service that fails fast, an ignored failure that recovers at the
-- settle check, a dry run into a namespace that does not exist, and `moonship render` piped
-- into kubectl. One cluster, one scenario; each case in its own namespace. Assertions come from
-- the runs' JSON events and from the objects as kube-apiserver holds them.
local events = require "support.events"
local kubesim = require "support.kubesim"
local proc = require "support.proc"
local realcluster = require "support.realcluster"
local yaml = require "moonship.yaml"

local find, index_of, final_state = events.find, events.index_of, events.final_state
local q = proc.quote

-- Simulated seconds; at --time-scale 0.05 a simulated second is 50 ms. Only the simulated
-- nodes scale: the Job controller's retry back-off (10 s) is real time.
local SCENARIO = [[
defaults: {start_delay: 0.2, ready_delay: 0.3, duration: 1, jitter: 0}
workloads:
  # halt: web rolls out in the background for 15 s and migrate runs 10 s, while verify fails
  # its first attempt within a second or two
  web: {start_delay: 1, ready_delay: 300}
  "migrate-*": {duration: 200, logs: ["migrating"]}
  "verify-*": {duration: 2, fail_attempts: 1, logs: ["checking the schema", "schema check failed"]}
  # crash loop: a Service that never comes
  crashy: {requires: [nowhere], crash_after: 1, logs: ["crashy starting"]}
  # recovery: orders crash-loops until payments has a ready endpoint
  orders: {requires: [payments], crash_after: 1}
  payments: {start_delay: 1, ready_delay: 2}
]]

local cluster, why = realcluster.start {scenario = SCENARIO, time_scale = 0.05}
if not cluster then pending(why) return end

local dirs = {}
local function template(text, files)
  local dir = proc.tmpdir()
  dirs[#dirs + 1] = dir
  proc.write_file(dir .. "/moonship.yaml", text)
  for name, body in pairs(files or {}) do proc.write_file(dir .. "/" .. name, body) end
  return dir .. "/moonship.yaml", dir
end

-- kubectl get ... -o jsonpath=PATH in namespace ns: the text, or an error with kubectl's stderr.
local function jsonpath(ns, what, path)
  local ok, out, err = cluster:kubectl("-n", ns, "get", what, "-o", "jsonpath=" .. path)
  assert(ok, ("kubectl get %s -n %s: %s"):format(what, ns, err))
  return out
end

local function not_found(...)
  local ok, _, err = cluster:kubectl("get", ...)
  return not ok and err:find("NotFound", 1, true) ~= nil, err
end

-- The objects a task applied, from its task_progress events.
local function applied(ev, task)
  local out = {}
  for _, e in ipairs(ev) do
    if e.event == "task_progress" and e.task == task and e.objects then
      for _, o in ipairs(e.objects) do out[#out + 1] = o end
    end
  end
  return out
end

local function job_of(ev, task)
  for _, o in ipairs(applied(ev, task)) do
    if o.kind == "Job" then return o.name end
  end
end

local HALT_APP = [[
app: halting
services:
- {name: db, image: example/db:1, ports: [{type: container_port, port: 5432}]}
- {name: web, image: example/web:1}
- {name: api, image: example/api:1}
jobs:
- {name: migrate, image: example/tools:1, command: [migrate]}
- {name: verify, image: example/tools:1, command: [verify], halt_on_error: true, backoff_limit: 0}
workflows:
- name: up
  parallelize:
  - step: data
    tasks: [services.db]
  - step: front
    wait_for_finish: false
    tasks: [services.web]
  - step: checks
    tasks: [jobs.verify, jobs.migrate]
  - step: app
    tasks: [services.api]
]]

-- The cleanup hook says what the halted run started, and deletes the Jobs of the tasks it
-- cancelled (Kubernetes would run them on); the failed one stays for its logs.
local HALT_HOOKS = [[
return {
  cleanup = function(ctx, run, reason)
    ctx.log("cleanup after %s: %d tasks started", reason, #run.started)
    for _, t in ipairs(run.started) do
      ctx.log("started %s: %s", t.id, t.state)
      if t.state == "cancelled" then
        for _, o in ipairs(t.objects or {}) do
          if o.kind == "Job" then
            assert(ctx.kube:delete("batch/v1", "Job", o.name, ctx.namespace, {propagation = "Background"}))
            ctx.log("deleted job/%s", o.name)
          end
        end
      end
    end
  end,
}
]]

describe("workflows on the real control plane", function()
  teardown(function()
    cluster:stop()
    for _, dir in ipairs(dirs) do os.execute("rm -rf " .. q(dir)) end
  end)

  it("halts on a failed halt_on_error job, cancels what runs, cleans up; --resume finishes the rest", function()
    local path = template(HALT_APP, {["hooks.lua"] = HALT_HOOKS})
    local code, ev, stderr = events.deploy(cluster, {path, "-w", "up", "-n", "halt"})
    assert.equal(1, code, stderr)
    local finished = find(ev, {event = "run_finished"})
    assert.same({"halted", 1, "jobs.verify"}, {finished.state, finished.exit_code, finished.halted_by})
    -- verify failed, and its failure was the halt
    local verify = find(ev, {event = "task_finished", task = "jobs.verify"})
    assert.equal("failed", verify.state)
    assert.is_true(verify.halt)
    assert.matches("BackoffLimitExceeded", verify.message)
    local halting, halt_at = find(ev, {event = "run_halting"})
    assert.equal("jobs.verify", halting.task)
    -- what ran beside it, in its step and in the background step, was cancelled by the halt
    for _, task in ipairs {"jobs.migrate", "services.web"} do
      local f, at = find(ev, {event = "task_finished", task = task})
      assert.same({"cancelled", "halted by jobs.verify"}, {f.state, f.message}, task)
      assert.is_true(at > halt_at, task)
    end
    assert.equal("succeeded", final_state(ev, "services.db"))
    -- nothing started after the halt; the last step never did
    for i = halt_at, #ev do assert.are_not.equal("task_started", ev[i].event, ev[i].task) end
    assert.is_nil(find(ev, {event = "task_started", task = "services.api"}))
    assert.is_nil(find(ev, {event = "step_started", step = "app"}))
    assert.equal("skipped", final_state(ev, "services.api"))
    -- the cleanup hook ran, with what the run started
    assert.truthy(find(ev, {event = "log", message = "cleanup after halted: 4 tasks started"}))
    assert.truthy(find(ev, {event = "log", message = "started jobs.verify: failed"}))
    assert.truthy(find(ev, {event = "log", message = "started services.db: succeeded"}))
    local migrate_job = assert(job_of(ev, "jobs.migrate"))
    assert.truthy(find(ev, {event = "log", message = "deleted job/" .. migrate_job}))

    -- The API server: verify's Job failed by the Job controller's rule, the cancelled migrate
    -- Job is gone (the cleanup hook), web kept its Deployment, api was never applied.
    local verify_job = assert(job_of(ev, "jobs.verify"))
    assert.equal("True BackoffLimitExceeded",
      jsonpath("halt", "job/" .. verify_job, '{.status.conditions[?(@.type=="Failed")].status} '
        .. '{.status.conditions[?(@.type=="Failed")].reason}'))
    assert.is_true(not_found("-n", "halt", "job", migrate_job))
    assert.equal("web", jsonpath("halt", "deployment/web", "{.metadata.name}"))
    assert.is_true(not_found("-n", "halt", "deployment", "api"))
    assert.equal("halted", require("moonship.json").decode(
      jsonpath("halt", "configmap/moonship-run-halting-up", "{.data.run\\.json}")).state)

    -- The fix: verify may try twice (its first attempt fails by the scenario). --resume runs
    -- what did not succeed and skips db, whose spec did not change.
    proc.write_file(path, (HALT_APP:gsub("backoff_limit: 0", "backoff_limit: 1")))
    local code2, ev2, stderr2 = events.deploy(cluster, {path, "-w", "up", "-n", "halt", "--resume"})
    assert.equal(0, code2, stderr2)
    assert.equal(ev[1].run, find(ev2, {event = "run_started"}).resume_of)
    local db = find(ev2, {event = "task_finished", task = "services.db"})
    assert.equal("skipped", db.state)
    assert.is_nil(find(ev2, {event = "task_started", task = "services.db"}))
    for _, task in ipairs {"services.web", "jobs.verify", "jobs.migrate", "services.api"} do
      assert.equal("succeeded", final_state(ev2, task), task)
      assert.truthy(find(ev2, {event = "task_started", task = task}), task)
    end
    assert.equal("succeeded", find(ev2, {event = "run_finished"}).state)
    -- the new verify Job: one failed attempt, one that succeeded, Complete
    local verify2 = assert(job_of(ev2, "jobs.verify"))
    assert.are_not.equal(verify_job, verify2)
    assert.equal("1 1 True", jsonpath("halt", "job/" .. verify2,
      '{.status.failed} {.status.succeeded} {.status.conditions[?(@.type=="Complete")].status}'))
    local available, wanted = jsonpath("halt", "deployment/api", "{.status.availableReplicas}/{.spec.replicas}")
      :match("^(%d+)/(%d+)$")
    assert.equal(wanted, available)
  end)

  it("fails a crash-looping service fast, with its reason and last log lines; exit 3", function()
    local path = template [[
app: crashing
services:
- {name: crashy, image: example/crashy:1}
workflows:
- name: up
  order_from: [services.crashy]
]]
    local code, ev, stderr = events.deploy(cluster, {path, "-w", "up", "-n", "crash", "--settle", "1"})
    assert.equal(3, code, stderr)
    local f = find(ev, {event = "task_finished", task = "services.crashy"})
    assert.equal("failed", f.state)
    assert.equal("CrashLoopBackOff", f.reason)
    assert.matches("CrashLoopBackOff", f.message)
    assert.not_matches("timed out", f.message)
    -- the crashed container's last lines, served by the (simulated) kubelet through the API server
    assert.is_table(f.logs)
    assert.truthy(f.logs[1], "no log lines")
    local text = table.concat(f.logs, "\n")
    assert.matches("crashy starting", text, 1, true)
    assert.matches('fatal: required service "nowhere" is not available', text, 1, true)
    -- the settle check found it still failing
    assert.truthy(find(ev, {event = "task_progress", task = "services.crashy",
                            message = "still failing after the settle check"}))
    assert.equal("failed", final_state(ev, "services.crashy"))
    assert.same({"failed", 3}, {ev[#ev].state, ev[#ev].exit_code})
    -- the API server: the pod restarted at least twice, the Deployment has no available replica
    local restarts = tonumber(jsonpath("crash", "pods", "{.items[0].status.containerStatuses[0].restartCount}"))
    assert.is_true(restarts >= 2, "restartCount " .. tostring(restarts))
    assert.equal("1", jsonpath("crash", "deployment/crashy", "{.status.unavailableReplicas}"))
  end)

  it("ignores a service that crash-loops until what it requires is up, and reports it recovered", function()
    local path = template [[
app: recovering
services:
- {name: payments, image: example/payments:1, ports: [{type: container_port, port: 8080}]}
- {name: orders, image: example/orders:1, depends_on: [payments]}
workflows:
- name: up
  parallelize:
  - step: orders-first
    tasks: [services.orders]
  - step: payments
    tasks: [services.payments]
]]
    local code, ev, stderr = events.deploy(cluster, {path, "-w", "up", "-n", "recover", "--settle", "120"})
    assert.equal(0, code, stderr)
    local failed, failed_at = find(ev, {event = "task_finished", task = "services.orders", state = "failed"})
    assert.truthy(failed, "orders did not fail first")
    assert.equal("CrashLoopBackOff", failed.reason)
    -- the failure was ignored: payments' step started after it, and succeeded
    assert.is_true(index_of(ev, {event = "task_started", task = "services.payments"}) > failed_at)
    assert.equal("succeeded", final_state(ev, "services.payments"))
    local recovered, recovered_at = find(ev, {event = "task_finished", task = "services.orders", state = "recovered"})
    assert.truthy(recovered, "orders did not recover")
    assert.is_true(recovered_at > index_of(ev, {event = "task_finished", task = "services.payments"}))
    assert.equal("recovered", final_state(ev, "services.orders"))
    assert.same({"succeeded", 0, 0}, {ev[#ev].state, ev[#ev].exit_code, ev[#ev].failed})
    -- the API server: orders is available now, after restarts
    assert.equal("1/1", jsonpath("recover", "deployment/orders", "{.status.availableReplicas}/{.spec.replicas}"))
    local restarts = tonumber(jsonpath("recover", "pods", "{.items[?(@.metadata.labels.app\\.kubernetes\\.io/name==\"orders\")].status.containerStatuses[0].restartCount}"))
    assert.is_true(restarts >= 2, "restartCount " .. tostring(restarts))
  end)

  describe("--dry-run into a namespace that does not exist", function()
    local DRY_APP = [[
app: dry
services:
- {name: api, image: example/api:1, ports: [{type: container_port, port: 8080}]}
jobs:
- {name: seed, image: example/api:1, command: [seed]}
manifests:
- {name: broken, path: broken.yaml}
workflows:
- name: up
  parallelize:
  - step: first
    tasks: [jobs.seed]
  - step: second
    tasks: [services.api]
- name: broken
  order_from: [manifests.broken]
]]
    -- A field of the wrong type: the schema refuses it, namespace or not.
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
    local SCHEMA_ONLY = "(schema checked only: namespace dryrun-new does not exist yet)"

    it("exits 0, every object 'would apply' up to the namespace check, and nothing is created", function()
      local path = template(DRY_APP, {["broken.yaml"] = BROKEN})
      local code, ev, stderr = events.deploy(cluster, {path, "-w", "up", "-n", "dryrun-new", "--dry-run"})
      assert.equal(0, code, stderr)
      assert.matches("namespace dryrun%-new does not exist yet", stderr)
      local objects = {}
      for _, e in ipairs(ev) do
        assert.is_true(e.dry_run, e.event)
        if e.event == "task_progress" then
          assert.matches("^would apply ", e.message)
          assert.equal(SCHEMA_ONLY, e.message:sub(-#SCHEMA_ONLY))
          objects[#objects + 1] = e.objects[1].kind .. "/" .. e.objects[1].name
        end
        if e.event == "task_finished" then assert.equal("succeeded", e.state) end
      end
      table.sort(objects)
      assert.equal(3, #objects)
      assert.same({"Deployment/api", "Service/api"}, {objects[1], objects[3]})
      assert.matches("^Job/seed%-", objects[2])
      assert.same({"succeeded", 0}, {ev[#ev].state, ev[#ev].exit_code})
      -- kube-apiserver stored nothing: no namespace, so nothing in it either
      assert.is_true(not_found("namespace", "dryrun-new"))
    end)

    -- kube-apiserver answers a server-side apply that does not fit the schema with 500 and no
    -- reason (a create would get 400); it is the same answer every time, so moonship must not
    -- retry it as a server error (it used to, for 40 s).
    it("fails an object with a field of the wrong type with the server's message, asked once", function()
      local path = template(DRY_APP, {["broken.yaml"] = BROKEN})
      local METRIC = 'apiserver_request_total{code="500",component="apiserver",dry_run="All",group="apps",'
        .. 'resource="deployments",scope="resource",subresource="",verb="APPLY",version="v1"}'
      local function refused()
        local status, body = cluster:request("GET", "/metrics")
        assert.equal(200, status)
        for line in body:gmatch("[^\n]+") do
          if line:sub(1, #METRIC) == METRIC then return tonumber(line:sub(#METRIC + 2)) end
        end
        return 0
      end
      local before = refused()
      local code, ev, stderr = events.deploy(cluster, {path, "-w", "broken", "-n", "dryrun-new", "--dry-run"})
      assert.equal(3, code, stderr)
      local f = find(ev, {event = "task_finished", task = "manifests.broken"})
      assert.equal("failed", f.state)
      assert.truthy(f.message:find("apply deployment/broken: PATCH /apis/apps/v1/namespaces/dryrun-new/deployments/broken: "
        .. "HTTP 500 (500): failed to create typed patch object (dryrun-new/broken; apps/v1, Kind=Deployment): "
        .. ".spec.replicas: expected numeric (int or float), got string", 1, true), f.message)
      assert.equal(1, refused() - before)
      assert.is_true(not_found("namespace", "dryrun-new"))
    end)
  end)

  it("`moonship render | kubectl apply --server-side -f -` creates every object it prints", function()
    local storefront = proc.source_dir .. "/tests/fixtures/templates/releasehub-format/storefront/application_template.yaml"
    assert(cluster:kubectl("create", "namespace", "rendered"))
    local render = proc.run {proc.moonship, "render", storefront, "-w", "setup", "--env", "pr-1", "-n", "rendered"}
    assert.equal(0, render.code, render.stderr)
    local docs = assert(yaml.load(render.stdout))
    assert.is_true(#docs >= 8, "render printed " .. #docs .. " objects")
    local r = proc.run {"sh", "-c", ("%s render %s -w setup --env pr-1 -n rendered 2>/dev/null | HOME=%s %s --kubeconfig %s apply --server-side -f -")
      :format(q(proc.moonship), q(storefront), q(cluster.home), q(assert(kubesim.kubectl_path())), q(cluster.kubeconfig))}
    assert.equal(0, r.code, r.stderr)
    local kinds, seen = {}, {}
    for _, obj in ipairs(docs) do
      local group = obj.apiVersion:match("^(.+)/[^/]+$")
      local kind = obj.kind:lower() .. (group and ("." .. group) or "")
      if not seen[kind] then seen[kind], kinds[#kinds + 1] = true, kind end
      local what = kind .. "/" .. obj.metadata.name
      assert.matches(what:gsub("%p", "%%%0") .. " serverside%-applied", r.stdout)
      assert.equal("rendered", obj.metadata.namespace)
      -- held by the API server, with the labels moonship gives every object
      assert.equal("storefront", jsonpath("rendered", what, "{.metadata.labels.app\\.kubernetes\\.io/part-of}"), what)
    end
    -- nothing else of the app is there
    local ok, names = cluster:kubectl("-n", "rendered", "get", table.concat(kinds, ","), "-l",
      "app.kubernetes.io/part-of=storefront", "-o", "name")
    assert.is_true(ok)
    local n = 0
    for _ in names:gmatch("[^\n]+") do n = n + 1 end
    assert.equal(#docs, n)
  end)
end)
