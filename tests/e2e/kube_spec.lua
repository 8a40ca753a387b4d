-- The Kubernetes client against kubesim: apply/get/list/delete, discovery of a CRD kind,
-- watches, shared-watch waits (request counts), faults, crash-loop diagnostics, TLS + token.
local kubesim = require "support.kubesim"
local sched = require "moonship.sched"
local kube = require "moonship.kube"
local proc = require "support.proc"

local function deployment(name, opts)
  opts = opts or {}
  return {
    apiVersion = "apps/v1", kind = "Deployment",
    metadata = {name = name, namespace = opts.namespace or "default", labels = {app = name}},
    spec = {
      replicas = opts.replicas or 1,
      selector = {matchLabels = {app = name}},
      template = {metadata = {labels = {app = name}},
                  spec = {containers = {{name = "main", image = opts.image or "registry.local/" .. name .. ":1"}}}},
    },
  }
end

local function connect(sim)
  local c = assert(kube.connect {kubeconfig = sim.kubeconfig})
  return c
end

describe("kube client on kubesim", function()
  local sim
  before_each(function() sim = kubesim.start {time_scale = 0.02} end)
  after_each(function() if sim then sim:stop() end end)

  it("applies (create, then update), gets, lists and deletes", function()
    sched.run(function()
      local c = connect(sim)
      local live, created = c:apply(deployment("web"))
      assert.truthy(live, created)
      assert.is_true(created)
      assert.equal("web", live.metadata.name)
      assert.truthy(live.metadata.uid)
      local again, created2 = c:apply(deployment("web", {replicas = 2}))
      assert.is_false(created2)
      assert.equal(live.metadata.uid, again.metadata.uid)
      assert.equal(2, again.spec.replicas)
      local got = assert(c:get("apps/v1", "Deployment", "web", "default"))
      assert.equal(2, got.spec.replicas)
      local list = assert(c:list("apps/v1", "Deployment", {namespace = "default", label_selector = "app=web"}))
      assert.equal(1, #list.items)
      assert.equal("Deployment", list.items[1].kind)
      local none = assert(c:list("apps/v1", "Deployment", {namespace = "default", label_selector = "app=nope"}))
      assert.equal(0, #none.items)
      assert.is_true((c:delete("apps/v1", "Deployment", "web", "default")))
      local gone, err, code = c:get("apps/v1", "Deployment", "web", "default")
      assert.is_nil(gone)
      assert.equal("not_found", code)
      assert.matches("NotFound %(404%)", err)
    end)
  end)

  it("keeps to its request rate after the burst, and not at all with qps 0", function()
    sched.run(function()
      -- 2 at once, then 10 a second: the 5th of 5 gets goes out 0.3 s after the first at the soonest
      local c = assert(kube.connect {kubeconfig = sim.kubeconfig, qps = 10, burst = 2})
      local t0 = sched.now()
      for _ = 1, 5 do assert(c:get("v1", "Namespace", "default")) end
      assert.is_true(sched.now() - t0 >= 0.29, "5 requests in " .. (sched.now() - t0) .. " s")
      local free = assert(kube.connect {kubeconfig = sim.kubeconfig, qps = 0, burst = 1})
      for _ = 1, 5 do assert(free:get("v1", "Namespace", "default")) end
      assert.equal(0, free.tokens - free.burst) -- the limiter never ran: its bucket is untouched
    end)
  end)

  it("names an unknown kind", function()
    sched.run(function()
      local c = connect(sim)
      local obj, err, code = c:apply {apiVersion = "example.com/v1", kind = "Widget", metadata = {name = "w"}}
      assert.is_nil(obj)
      assert.equal("unknown_kind", code)
      assert.matches("Widget", err)
    end)
  end)

  it("waits for 200 Deployments through shared watches, with under 3 requests each", function()
    sched.run(function()
      local c = connect(sim)
      local before = sim:stats().requests_total
      local t0 = sched.now()
      local g = sched.group()
      for i = 1, 200 do
        g:spawn(function()
          local live = assert(c:apply(deployment("svc" .. i, {replicas = 2})))
          return assert(c:wait_ready(live, {timeout = 300}))
        end)
      end
      for _, outcome in ipairs(g:wait()) do
        assert.is_true(outcome[1], outcome[2])
        assert.equal("ready", outcome[2])
      end
      local elapsed = sched.now() - t0
      local used = sim:stats().requests_total - before
      print(string.format("\n200 deployments: %d requests (%.2f per deployment), %.2f s", used, used / 200, elapsed))
      assert.is_true(used < 3 * 200, "requests for 200 deployments: " .. used)
      -- Every wait agrees with the server: each Deployment reports all replicas available.
      local list = assert(c:list("apps/v1", "Deployment", {namespace = "default"}))
      local available = 0
      for _, d in ipairs(list.items) do
        if d.status.availableReplicas == 2 then available = available + 1 end
      end
      assert.equal(200, available)
      c:close()
    end)
  end)

  it("fails a crash-looping Deployment's wait early, with the reason and its last log lines", function()
    sim:stop()
    sim = kubesim.start {time_scale = 0.02, scenario = [[
workloads:
  crashy: {requires: [nothing-provides-this], crash_after: 1, logs: ["connecting to nothing-provides-this", "fatal: no upstream"]}
]]}
    sched.run(function()
      local c = connect(sim)
      local live = assert(c:apply(deployment("crashy")))
      local progress = {}
      local ok, reason, details = c:wait_ready(live, {timeout = 300, on_progress = function(summary)
        progress[#progress + 1] = summary
      end})
      assert.is_nil(ok)
      assert.equal("CrashLoopBackOff", reason)
      assert.matches("CrashLoopBackOff: pod crashy%-", details.message)
      assert.matches("fatal: no upstream", table.concat(details.logs, "\n"))
      -- Before the progress deadline: the server has not yet declared it exceeded.
      local now = assert(c:get("apps/v1", "Deployment", "crashy", "default"))
      for _, cond in ipairs(now.status.conditions or {}) do
        assert.not_equal("ProgressDeadlineExceeded", cond.reason)
      end
      assert.matches("0/1 replicas ready", progress[1])
      c:close()
    end)
  end)

  it("waits for the release that replaces a crash-looping one, not failing on the old release's pods", function()
    sim:stop()
    sim = kubesim.start {time_scale = 0.02, scenario = [[
crashing_images: ["registry.local/web:2"]
]]}
    sched.run(function()
      local c = connect(sim)
      assert(c:wait_ready(assert(c:apply(deployment("web", {replicas = 2}))), {timeout = 300}))
      -- release 2 crash-loops (the rolling update keeps release 1's pods)
      local bad = assert(c:apply(deployment("web", {replicas = 2, image = "registry.local/web:2"})))
      local ok, reason = c:wait_ready(bad, {timeout = 300})
      assert.is_nil(ok)
      assert.equal("CrashLoopBackOff", reason)
      -- back to release 1 (the controller gives its ReplicaSet the newest revision): the wait,
      -- started at once, sees the shared watch's old Deployment and the crash-looping pods
      -- first, and must wait for this rollout instead of failing on them
      for _ = 1, 3 do
        local good = assert(c:apply(deployment("web", {replicas = 2})))
        assert.equal("ready", (c:wait_ready(good, {timeout = 300})))
        bad = assert(c:apply(deployment("web", {replicas = 2, image = "registry.local/web:2"})))
        assert.equal("CrashLoopBackOff", select(2, c:wait_ready(bad, {timeout = 300})))
      end
      c:close()
    end)
  end)

  it("a watch delivers events and resumes after the server closes it", function()
    sched.run(function()
      local c = connect(sim)
      local seen = {}
      local watcher = sched.spawn(function()
        for ev in c:watch("v1", "ConfigMap", {namespace = "default"}) do
          seen[#seen + 1] = ev.type .. " " .. ev.object.metadata.name
          if #seen == 3 then return end
        end
      end)
      for i = 1, 3 do
        assert(c:apply {apiVersion = "v1", kind = "ConfigMap", metadata = {name = "cm" .. i, namespace = "default"},
                        data = {k = tostring(i)}})
      end
      assert(watcher:join())
      assert.same({"ADDED cm1", "ADDED cm2", "ADDED cm3"}, seen)
    end)
  end)
end)

describe("kube client auth", function()
  it("TLS with the CA and token of the kubeconfig; a wrong token is Unauthorized", function()
    local sim = kubesim.start {tls = true}
    local ok, err = pcall(sched.run, function()
      local c = assert(kube.connect {kubeconfig = sim.kubeconfig})
      assert.matches("^https://", c.server)
      assert(c:apply {apiVersion = "v1", kind = "ConfigMap", metadata = {name = "tls", namespace = "default"}})
      c.cfg.auth = {kind = "token", token = "wrong"}
      local obj, msg, code = c:get("v1", "ConfigMap", "tls", "default")
      assert.is_nil(obj)
      assert.equal("unauthorized", code)
      assert.matches("Unauthorized %(401%)", msg)
      assert.not_matches("wrong", msg) -- the token never appears in messages
    end)
    sim:stop()
    assert(ok, err)
  end)

  it("an exec credential plugin from a merged KUBECONFIG authenticates, is re-run on 401, and is cached", function()
    local sim = kubesim.start {tls = true, token = "plugin-token-2"}
    local dir = proc.tmpdir()
    local count = dir .. "/count"
    -- The first file names the context; the second holds the cluster and the user.
    proc.write_file(dir .. "/a.yaml", ([[
apiVersion: v1
kind: Config
current-context: sim
contexts:
- name: sim
  context: {cluster: sim, user: plugin, namespace: team}
]]))
    proc.write_file(dir .. "/b.yaml", ([[
apiVersion: v1
kind: Config
current-context: elsewhere
clusters:
- name: sim
  cluster: {server: %s, certificate-authority-data: %s}
users:
- name: plugin
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1
      command: %s
      interactiveMode: Never
      env: [{name: PLUGIN_COUNT_FILE, value: %s}]
]]):format(sim.url, sim.ca_data, proc.source_dir .. "/tests/fixtures/exec-credential-plugin", count))
    local script = proc.write_file(dir .. "/use.lua", [[
local kube = require "moonship.kube"
local c = assert(kube.connect {})
print("namespace " .. c.namespace)
for i = 1, 3 do
  assert(c:apply {apiVersion = "v1", kind = "ConfigMap", metadata = {name = "cm" .. i, namespace = "default"}})
end
print("applied")
]])
    local r = proc.run {proc.moonship, "run", script, env = {KUBECONFIG = dir .. "/a.yaml:" .. dir .. "/b.yaml"}}
    sim:stop()
    assert.equal(0, r.code, r.stderr)
    assert.matches("namespace team", r.stdout)
    assert.matches("applied", r.stdout)
    -- Run once (token 1: refused), again after the 401 (token 2), then cached for the rest.
    local runs = 0
    for _ in proc.read_file(count):gmatch("run") do runs = runs + 1 end
    assert.equal(2, runs)
  end)
end)

describe("kube client on kubesim with faults", function()
  it("ends 200 waits correctly with 5xx/429, dropped connections, watch closes and expiry", function()
    local scenario = proc.write_file(os.tmpname(), [[
faults:
  error_rate: 0.1
  retry_after: 0
  drop_rate: 0.02
  watch_close_every: 1
  expire_every: 2
]])
    local sim = kubesim.start {time_scale = 0.02, scenario = scenario, seed = 7}
    local ok, err = pcall(sched.run, function()
      local c = assert(kube.connect {kubeconfig = sim.kubeconfig})
      local objs = {}
      for i = 1, 200 do objs[i] = assert(c:apply(deployment("f" .. i, {replicas = 2}))) end
      local g = sched.group()
      for i = 1, 200 do g:spawn(function() return c:wait_ready(objs[i], {timeout = 300}) end) end
      for i, outcome in ipairs(g:wait()) do
        assert.same({true, "ready"}, {outcome[1], outcome[2]}, "wait " .. i)
        local d = assert(c:get("apps/v1", "Deployment", "f" .. i, "default"))
        assert.equal(2, d.status.availableReplicas) -- never ready early
      end
      c:close()
    end)
    sim:stop()
    assert(ok, err)
  end)
end)
