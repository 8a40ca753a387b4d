-- moonship.kube.wait on objects made in kubesim: wait_ready's outcomes (ready; failed, with the
-- reason, the message and the pod's last log lines; an early failure on a pod that cannot
-- start; timeout, with the last progress) and wait_deleted's. Each outcome is the simulator's
-- doing, by its scenario, at a time scale of 0.01: nothing here sleeps.
local kube = require "moonship.kube"
local sched = require "moonship.sched"
local kubesim = require "support.kubesim"

local SCENARIO = [[
workloads:
  failing: {exit_code: 1, duration: 1, logs: ["starting", "boom: exit 1"]}
  stuck: {never_ready: true}
  slow: {ready_delay: 100000}
broken_images: ["nope:*"]
]]

local function deployment(name, ns, opts)
  opts = opts or {}
  return {
    apiVersion = "apps/v1", kind = "Deployment", metadata = {name = name, namespace = ns},
    spec = {
      replicas = opts.replicas or 1, progressDeadlineSeconds = opts.deadline,
      selector = {matchLabels = {app = name}},
      template = {metadata = {labels = {app = name}},
                  spec = {containers = {{name = "main", image = opts.image or "example/" .. name .. ":1"}}}},
    },
  }
end

local function job(name, ns)
  return {
    apiVersion = "batch/v1", kind = "Job", metadata = {name = name, namespace = ns},
    spec = {backoffLimit = 0, template = {spec = {restartPolicy = "Never",
                                                  containers = {{name = "main", image = "example/tools:1"}}}}},
  }
end

describe("kube wait", function()
  local sim
  setup(function() sim = kubesim.start {time_scale = 0.01, scenario = SCENARIO} end)
  teardown(function() sim:stop() end)

  it("is ready when the rollout is complete, reporting progress on the way", function()
    sim:with_namespace(function(c, ns)
      local live = assert(c:apply(deployment("web", ns, {replicas = 2})))
      local progress = {}
      local ok = c:wait_ready(live, {timeout = 60, on_progress = function(summary, info)
        progress[#progress + 1] = {summary, info.desired}
      end})
      assert.equal("ready", ok)
      assert.same({"0/2 replicas ready", 2}, progress[1])
      local d = assert(c:get("apps/v1", "Deployment", "web", ns))
      assert.equal(2, d.status.availableReplicas) -- never ready early
    end)
  end)

  it("is ready when a Job completes", function()
    sim:with_namespace(function(c, ns)
      assert.equal("ready", c:wait_ready(assert(c:apply(job("migrate", ns))), {timeout = 10}))
      local j = assert(c:get("batch/v1", "Job", "migrate", ns))
      assert.equal(1, j.status.succeeded)
    end)
  end)

  it("fails a failed Job with its reason, its message and its pod's last log lines", function()
    sim:with_namespace(function(c, ns)
      local ok, reason, details = c:wait_ready(assert(c:apply(job("failing", ns))), {timeout = 10})
      assert.is_nil(ok)
      assert.equal("BackoffLimitExceeded", reason)
      assert.matches("^job failed: BackoffLimitExceeded", details.message)
      assert.matches("^failing%-", details.pod)
      assert.same({"starting", "boom: exit 1", "error: exit status 1"}, details.logs) -- kubesim's last line
      assert.equal("Job", details.object.kind)
    end)
  end)

  it("fails a Deployment early when its pod cannot pull its image, naming the pod", function()
    sim:with_namespace(function(c, ns)
      local live = assert(c:apply(deployment("broken", ns, {image = "nope:1"})))
      local ok, reason, details = c:wait_ready(live, {timeout = 10})
      assert.is_nil(ok)
      assert.is_true(reason == "ErrImagePull" or reason == "ImagePullBackOff", reason)
      assert.matches("^" .. reason .. ": pod broken%-[%w-]+ container main", details.message)
      assert.matches("^broken%-", details.pod)
      assert.equal("main", details.container)
      local d = assert(c:get("apps/v1", "Deployment", "broken", ns))
      assert.equal(0, d.status.readyReplicas or 0)
    end)
  end)

  it("fails a Deployment past its progress deadline", function()
    sim:with_namespace(function(c, ns)
      local live = assert(c:apply(deployment("stuck", ns, {deadline = 5})))
      local ok, reason, details = c:wait_ready(live, {timeout = 10})
      assert.is_nil(ok)
      assert.equal("ProgressDeadlineExceeded", reason)
      assert.equal('deployment "stuck" exceeded its progress deadline', details.message)
    end)
  end)

  it("times out with the last progress it saw, told on_progress or not", function()
    sim:with_namespace(function(c, ns)
      local live = assert(c:apply(deployment("slow", ns)))
      local t0 = sched.now()
      local ok, reason, details = c:wait_ready(live, {timeout = 0.2})
      assert.is_nil(ok)
      assert.equal("timeout", reason)
      assert.equal("0/1 replicas ready", details.message)
      assert.is_true(sched.now() - t0 >= 0.2)
      local told = {}
      ok, reason, details = c:wait_ready(live, {timeout = 0.1, on_progress = function(summary)
        told[#told + 1] = summary
      end})
      assert.same({nil, "timeout", "0/1 replicas ready"}, {ok, reason, details.message})
      assert.same({"0/1 replicas ready"}, told)
    end)
  end)

  it("fails at once when the watch cannot serve the kind", function()
    sim:with_namespace(function(c, ns)
      local ok, reason, details = c:wait_ready({apiVersion = "example.com/v1", kind = "Widget",
                                                metadata = {name = "w", namespace = ns}}, {timeout = 10})
      assert.is_nil(ok)
      assert.equal("watch_failed", reason)
      assert.matches("unknown apiVersion example.com/v1", details.message)
    end)
  end)

  it("waits for a deletion, or times out naming the object", function()
    sim:with_namespace(function(c, ns)
      local cm = assert(c:apply {apiVersion = "v1", kind = "ConfigMap", metadata = {name = "cm", namespace = ns}})
      assert.same({nil, "timeout", "timed out after 0.1s waiting for configmap/cm to be deleted"},
        {c:wait_deleted(cm, {timeout = 0.1})})
      assert(c:delete("v1", "ConfigMap", "cm", ns))
      assert.is_true(c:wait_deleted(cm, {timeout = 10}))
      -- another object of the name (a new uid) is not the one waited for
      local again = assert(c:apply {apiVersion = "v1", kind = "ConfigMap", metadata = {name = "cm", namespace = ns}})
      assert.not_equal(cm.metadata.uid, again.metadata.uid)
      assert.equal("ready", c:wait_ready(again, {timeout = 10})) -- the shared watch has it
      assert.is_true(c:wait_deleted(cm, {timeout = 10}))
    end)
  end)

  it("refuses an unknown option, and a call outside a task", function()
    sim:with_namespace(function(c, ns)
      local obj = deployment("x", ns)
      assert.has_error(function() c:wait_ready(obj, {bogus = 1}) end, "wait_ready: unknown option 'bogus'")
      assert.has_error(function() c:wait_deleted(obj, {bogus = 1}) end, "wait_deleted: unknown option 'bogus'")
    end)
    local c = assert(kube.connect {kubeconfig = sim.kubeconfig})
    assert.has_error(function() c:wait_ready(deployment("x", "default"), {}) end,
      "wait_ready must be called inside a task (use sched.run)")
  end)
end)
