-- The readiness rules against objects shaped as the API server returns them.
local readiness = require "moonship.kube.readiness"

local function deploy(spec_replicas, status, extra)
  local obj = {
    apiVersion = "apps/v1", kind = "Deployment",
    metadata = {name = "web", generation = 2},
    spec = {replicas = spec_replicas},
    status = status,
  }
  for k, v in pairs(extra or {}) do obj[k] = v end
  return obj
end

describe("Deployment (kubectl rollout status)", function()
  it("waits until the spec update is observed", function()
    local state, msg = readiness.evaluate(deploy(3, {observedGeneration = 1}))
    assert.equal("progressing", state)
    assert.equal("Waiting for deployment spec update to be observed...", msg)
  end)

  it("counts updated, old and available replicas in kubectl's order", function()
    local cases = {
      {{observedGeneration = 2, replicas = 3, updatedReplicas = 1, availableReplicas = 0},
       'Waiting for deployment "web" rollout to finish: 1 out of 3 new replicas have been updated...'},
      {{observedGeneration = 2, replicas = 4, updatedReplicas = 3, availableReplicas = 3},
       'Waiting for deployment "web" rollout to finish: 1 old replicas are pending termination...'},
      {{observedGeneration = 2, replicas = 3, updatedReplicas = 3, availableReplicas = 2},
       'Waiting for deployment "web" rollout to finish: 2 of 3 updated replicas are available...'},
    }
    for _, case in ipairs(cases) do
      local state, msg, info = readiness.evaluate(deploy(3, case[1]))
      assert.equal("progressing", state)
      assert.equal(case[2], msg)
      assert.equal(3, info.desired)
    end
  end)

  it("is ready when every replica is updated and available", function()
    local state, msg, info = readiness.evaluate(deploy(3, {observedGeneration = 2, replicas = 3,
      updatedReplicas = 3, availableReplicas = 3, readyReplicas = 3}))
    assert.equal("ready", state)
    assert.equal('deployment "web" successfully rolled out', msg)
    assert.same({ready = 3, desired = 3}, info)
  end)

  it("fails on ProgressDeadlineExceeded", function()
    local state, msg, info = readiness.evaluate(deploy(1, {observedGeneration = 2, conditions = {
      {type = "Progressing", status = "False", reason = "ProgressDeadlineExceeded"}}}))
    assert.equal("failed", state)
    assert.equal('deployment "web" exceeded its progress deadline', msg)
    assert.equal("ProgressDeadlineExceeded", info.reason)
  end)
end)

describe("StatefulSet and DaemonSet", function()
  it("reports a partitioned roll out as kubectl does", function()
    local sts = {apiVersion = "apps/v1", kind = "StatefulSet", metadata = {name = "db", generation = 1},
      spec = {replicas = 2, updateStrategy = {type = "RollingUpdate", rollingUpdate = {partition = 0}}},
      status = {observedGeneration = 1, readyReplicas = 2, updatedReplicas = 2}}
    local state, msg = readiness.evaluate(sts)
    assert.equal("ready", state)
    assert.equal("partitioned roll out complete: 2 new pods have been updated...", msg)
    sts.status.readyReplicas = 1
    state, msg = readiness.evaluate(sts)
    assert.equal("Waiting for 1 pods to be ready...", msg)
    sts.spec.updateStrategy.type = "OnDelete"
    assert.equal("failed", (readiness.evaluate(sts)))
  end)

  it("waits for a daemon set's pods", function()
    local ds = {apiVersion = "apps/v1", kind = "DaemonSet", metadata = {name = "agent", generation = 1},
      spec = {}, status = {observedGeneration = 1, desiredNumberScheduled = 3,
      updatedNumberScheduled = 3, numberAvailable = 2}}
    local state, msg = readiness.evaluate(ds)
    assert.equal("progressing", state)
    assert.equal('Waiting for daemon set "agent" rollout to finish: 2 of 3 updated pods are available...', msg)
    ds.status.numberAvailable = 3
    assert.equal("ready", (readiness.evaluate(ds)))
  end)
end)

describe("Job", function()
  local function job(conditions, status)
    status = status or {}
    status.conditions = conditions
    return {apiVersion = "batch/v1", kind = "Job", metadata = {name = "migrate"}, spec = {}, status = status}
  end

  it("is ready on Complete and fails on Failed (case-insensitive, as kubectl wait)", function()
    assert.equal("ready", (readiness.evaluate(job {{type = "complete", status = "TRUE"}})))
    local state, msg, info = readiness.evaluate(job {{type = "Failed", status = "True",
      reason = "BackoffLimitExceeded", message = "Job has reached the specified backoff limit"}})
    assert.equal("failed", state)
    assert.equal("job failed: BackoffLimitExceeded: Job has reached the specified backoff limit", msg)
    assert.equal("BackoffLimitExceeded", info.reason)
  end)

  it("treats FailureTarget as an early failure and reports activity otherwise", function()
    assert.equal("failed", (readiness.evaluate(job {{type = "FailureTarget", status = "True", reason = "DeadlineExceeded"}})))
    local state, msg = readiness.evaluate(job({}, {active = 1, succeeded = 0, failed = 1}))
    assert.equal("progressing", state)
    assert.equal("job running: 1 active, 0 succeeded, 1 failed", msg)
  end)
end)

describe("other kinds", function()
  it("Service: ready at once unless it is a LoadBalancer without an address", function()
    assert.equal("ready", (readiness.evaluate {apiVersion = "v1", kind = "Service", metadata = {name = "s"}, spec = {type = "ClusterIP"}}))
    local lb = {apiVersion = "v1", kind = "Service", metadata = {name = "s"}, spec = {type = "LoadBalancer"}, status = {}}
    assert.equal("progressing", (readiness.evaluate(lb)))
    lb.status.loadBalancer = {ingress = {{ip = "10.0.0.9"}}}
    local state, msg = readiness.evaluate(lb)
    assert.equal("ready", state)
    assert.equal("load balancer at 10.0.0.9", msg)
  end)

  it("a CRD follows its Ready condition, checking observedGeneration", function()
    local cert = {apiVersion = "cert-manager.io/v1", kind = "Certificate", metadata = {name = "c", generation = 3},
      status = {conditions = {{type = "Ready", status = "True", observedGeneration = 2}}}}
    assert.equal("progressing", (readiness.evaluate(cert)))
    cert.status.conditions[1].observedGeneration = 3
    assert.equal("ready", (readiness.evaluate(cert)))
  end)

  it("hook rules win over the built-in ones", function()
    local rules = {["apps/Deployment"] = function() return "failed", "custom says no", {} end}
    local state, msg = readiness.evaluate(deploy(1, {}), rules)
    assert.equal("failed", state)
    assert.equal("custom says no", msg)
  end)
end)

describe("pod_problem", function()
  it("finds the waiting reasons that explain a stuck rollout", function()
    local pod = {status = {containerStatuses = {
      {name = "ok", restartCount = 0, state = {running = {}}},
      {name = "app", restartCount = 4, state = {waiting = {reason = "CrashLoopBackOff", message = "back-off 40s"}}},
    }}}
    assert.same({"CrashLoopBackOff", "back-off 40s", "app", 4}, {readiness.pod_problem(pod)})
    assert.is_nil(readiness.pod_problem {status = {containerStatuses = {{name = "a", state = {running = {}}}}}})
    local unsched = {status = {conditions = {{type = "PodScheduled", status = "False", reason = "Unschedulable", message = "0/3 nodes"}}}}
    assert.equal("Unschedulable", (readiness.pod_problem(unsched)))
  end)
end)
