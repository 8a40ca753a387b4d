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

  it("names an unknown kind", function()
    sched.run(function()
      local c = connect(sim)
      local obj, err, code = c:apply {apiVersion = "example.com/v1", kind = "Widget", metadata = {name = "w"}}
      assert.is_nil(obj)
      assert.equal("unknown_kind", code)
      assert.matches("Widget", err)
    end)
  end)

  it("waits for 50 Deployments through shared watches, with few requests", function()
    sched.run(function()
      local c = connect(sim)
      local before = sim:stats().requests_total
      local objs = {}
      for i = 1, 50 do objs[i] = assert(c:apply(deployment("svc" .. i, {replicas = 2}))) end
      local g = sched.group()
      for i = 1, 50 do g:spawn(function() return assert(c:wait_ready(objs[i], {timeout = 120})) end) end
      for _, outcome in ipairs(g:wait()) do
        assert.is_true(outcome[1], outcome[2])
        assert.equal("ready", outcome[2])
      end
      -- Every wait agrees with the server: each Deployment reports all replicas available.
      for i = 1, 50 do
        local d = assert(c:get("apps/v1", "Deployment", "svc" .. i, "default"))
        assert.equal(2, d.status.availableReplicas)
      end
      local used = sim:stats().requests_total - before - 50 -- minus the final gets
      assert.is_true(used < 3 * 50, "requests for 50 deployments: " .. used)
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

describe("kube client on kubesim with faults", function()
  it("ends every wait correctly with 5xx/429, dropped connections and watch expiry", function()
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
      for i = 1, 30 do objs[i] = assert(c:apply(deployment("f" .. i, {replicas = 2}))) end
      local g = sched.group()
      for i = 1, 30 do g:spawn(function() return c:wait_ready(objs[i], {timeout = 120}) end) end
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
