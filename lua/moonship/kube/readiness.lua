-- Readiness rules: pure functions from a live object to its state, by the rules of
-- `kubectl rollout status` (Deployment, StatefulSet, DaemonSet), `kubectl wait` for Jobs, and the
-- conventional status rules for Pods, Services, PVCs, Ingresses and Ready/Available conditions.
--
-- Every rule returns state, message, info:
--   state   "ready" | "progressing" | "failed"
--   message what a person reads ("2 of 3 updated replicas are available...")
--   info    {ready=, desired=, reason=} when known (for progress lines)
local M = {}

local function condition(obj, ctype)
  local status = obj.status
  local conds = type(status) == "table" and status.conditions
  if type(conds) ~= "table" then return nil end
  for _, c in ipairs(conds) do
    if type(c) == "table" and type(c.type) == "string" and c.type:lower() == ctype:lower() then
      return c
    end
  end
end
M.condition = condition

local function num(v) return math.type(v) and v or 0 end

-- Whether the controller has seen the object's latest spec (status.observedGeneration).
local function generation_observed(obj)
  local gen = num(obj.metadata and obj.metadata.generation)
  local observed = num(obj.status and obj.status.observedGeneration)
  return gen <= observed
end
M.generation_observed = generation_observed

function M.deployment(obj)
  local name, spec, st = obj.metadata.name, obj.spec or {}, obj.status or {}
  local desired = math.type(spec.replicas) and spec.replicas or 1
  local info = {ready = num(st.availableReplicas), desired = desired}
  if not generation_observed(obj) then
    return "progressing", "Waiting for deployment spec update to be observed...", info
  end
  local progressing = condition(obj, "Progressing")
  if progressing and progressing.reason == "ProgressDeadlineExceeded" then
    info.reason = "ProgressDeadlineExceeded"
    return "failed", string.format('deployment "%s" exceeded its progress deadline', name), info
  end
  local updated, replicas, available = num(st.updatedReplicas), num(st.replicas), num(st.availableReplicas)
  if math.type(spec.replicas) and updated < spec.replicas then
    return "progressing", string.format("Waiting for deployment %q rollout to finish: %d out of %d new replicas have been updated...",
      name, updated, spec.replicas), info
  end
  if replicas > updated then
    return "progressing", string.format("Waiting for deployment %q rollout to finish: %d old replicas are pending termination...",
      name, replicas - updated), info
  end
  if available < updated then
    return "progressing", string.format("Waiting for deployment %q rollout to finish: %d of %d updated replicas are available...",
      name, available, updated), info
  end
  return "ready", string.format('deployment "%s" successfully rolled out', name), info
end

function M.statefulset(obj)
  local spec, st = obj.spec or {}, obj.status or {}
  local strategy = spec.updateStrategy or {}
  local desired = math.type(spec.replicas) and spec.replicas or 1
  local info = {ready = num(st.readyReplicas), desired = desired}
  if strategy.type ~= nil and strategy.type ~= "RollingUpdate" then
    return "failed", "rollout status is only available for RollingUpdate strategy type", info
  end
  if num(st.observedGeneration) == 0 or not generation_observed(obj) then
    return "progressing", "Waiting for statefulset spec update to be observed...", info
  end
  if math.type(spec.replicas) and num(st.readyReplicas) < spec.replicas then
    return "progressing", string.format("Waiting for %d pods to be ready...", spec.replicas - num(st.readyReplicas)), info
  end
  local ru = strategy.rollingUpdate
  if type(ru) == "table" and math.type(ru.partition) and math.type(spec.replicas) then
    if num(st.updatedReplicas) < spec.replicas - ru.partition then
      return "progressing", string.format("Waiting for partitioned roll out to finish: %d out of %d new pods have been updated...",
        num(st.updatedReplicas), spec.replicas - ru.partition), info
    end
    return "ready", string.format("partitioned roll out complete: %d new pods have been updated...", num(st.updatedReplicas)), info
  end
  if st.updateRevision ~= st.currentRevision then
    return "progressing", string.format("waiting for statefulset rolling update to complete %d pods at revision %s...",
      num(st.updatedReplicas), tostring(st.updateRevision)), info
  end
  return "ready", string.format("statefulset rolling update complete %d pods at revision %s...",
    num(st.currentReplicas), tostring(st.currentRevision)), info
end

function M.daemonset(obj)
  local name, spec, st = obj.metadata.name, obj.spec or {}, obj.status or {}
  local strategy = spec.updateStrategy or {}
  local desired = num(st.desiredNumberScheduled)
  local info = {ready = num(st.numberAvailable), desired = desired}
  if strategy.type ~= nil and strategy.type ~= "RollingUpdate" then
    return "failed", "rollout status is only available for RollingUpdate strategy type", info
  end
  if not generation_observed(obj) then
    return "progressing", "Waiting for daemon set spec update to be observed...", info
  end
  if num(st.updatedNumberScheduled) < desired then
    return "progressing", string.format("Waiting for daemon set %q rollout to finish: %d out of %d new pods have been updated...",
      name, num(st.updatedNumberScheduled), desired), info
  end
  if num(st.numberAvailable) < desired then
    return "progressing", string.format("Waiting for daemon set %q rollout to finish: %d of %d updated pods are available...",
      name, num(st.numberAvailable), desired), info
  end
  return "ready", string.format('daemon set "%s" successfully rolled out', name), info
end

local function is_true(c) return c and type(c.status) == "string" and c.status:lower() == "true" end

function M.job(obj)
  local spec, st = obj.spec or {}, obj.status or {}
  local completions = math.type(spec.completions) and spec.completions or 1
  local info = {ready = num(st.succeeded), desired = completions}
  local complete, failed = condition(obj, "Complete"), condition(obj, "Failed")
  if is_true(complete) then return "ready", "job completed", info end
  if is_true(failed) then
    info.reason = failed.reason or "Failed"
    return "failed", string.format("job failed: %s%s", failed.reason or "Failed",
      failed.message and (": " .. failed.message) or ""), info
  end
  local target = condition(obj, "FailureTarget")
  if is_true(target) then
    info.reason = target.reason or "FailureTarget"
    return "failed", string.format("job failed: %s%s", target.reason or "FailureTarget",
      target.message and (": " .. target.message) or ""), info
  end
  if num(st.active) > 0 then
    info.phase = "job_running"
    return "progressing", string.format("job running: %d active, %d succeeded, %d failed",
      num(st.active), num(st.succeeded), num(st.failed)), info
  end
  info.phase = "job_pending"
  return "progressing", "job pending", info
end

function M.pod(obj)
  local st = obj.status or {}
  local info = {}
  if st.phase == "Succeeded" then return "ready", "pod succeeded", info end
  if st.phase == "Failed" then
    info.reason = st.reason or "Failed"
    return "failed", "pod failed" .. (st.message and (": " .. st.message) or ""), info
  end
  if is_true(condition(obj, "Ready")) then return "ready", "pod ready", info end
  return "progressing", "pod " .. tostring(st.phase or "Pending"), info
end

function M.service(obj)
  local spec, st = obj.spec or {}, obj.status or {}
  if spec.type == "LoadBalancer" then
    local ingress = st.loadBalancer and st.loadBalancer.ingress
    if type(ingress) == "table" and #ingress > 0 then
      local first = ingress[1]
      return "ready", "load balancer at " .. tostring(first.ip or first.hostname), {}
    end
    return "progressing", "waiting for a load balancer address", {}
  end
  return "ready", "service ready", {}
end

function M.pvc(obj)
  local phase = obj.status and obj.status.phase
  if phase == "Bound" then return "ready", "claim bound", {} end
  if phase == "Lost" then return "failed", "claim lost", {reason = "Lost"} end
  return "progressing", "claim " .. tostring(phase or "Pending"), {}
end

function M.ingress(obj)
  local lb = obj.status and obj.status.loadBalancer
  if type(lb) == "table" and type(lb.ingress) == "table" and #lb.ingress > 0 then
    return "ready", "ingress has an address", {}
  end
  return "progressing", "waiting for an ingress address", {}
end

-- Any other kind: a Ready or Available condition decides when present (with its
-- observedGeneration checked as kubectl wait does); without conditions the object is ready
-- once it exists.
function M.generic(obj)
  for _, ctype in ipairs {"Ready", "Available"} do
    local c = condition(obj, ctype)
    if c then
      local gen = num(obj.metadata and obj.metadata.generation)
      if math.type(c.observedGeneration) and c.observedGeneration < gen then
        return "progressing", ctype .. " condition not yet observed for this generation", {}
      end
      if is_true(c) then return "ready", c.message or (ctype .. "=True"), {} end
      if c.status == "False" and c.reason and c.reason:match("Failed") then
        return "failed", (c.reason .. (c.message and (": " .. c.message) or "")), {reason = c.reason}
      end
      return "progressing", c.message or (ctype .. "=" .. tostring(c.status)), {reason = c.reason}
    end
  end
  return "ready", "exists", {}
end

local BY_KIND = {
  ["apps/Deployment"] = M.deployment,
  ["apps/StatefulSet"] = M.statefulset,
  ["apps/DaemonSet"] = M.daemonset,
  ["batch/Job"] = M.job,
  ["/Pod"] = M.pod,
  ["/Service"] = M.service,
  ["/PersistentVolumeClaim"] = M.pvc,
  ["networking.k8s.io/Ingress"] = M.ingress,
}

-- "apps/v1" -> "apps", "v1" -> ""
function M.group_of(api_version)
  return api_version:match("^(.-)/[^/]+$") or ""
end

-- The rule for an object: extra[ "<group>/<Kind>" ] (hooks) first, then the built-in ones.
function M.rule_for(obj, extra)
  local key = M.group_of(obj.apiVersion or "") .. "/" .. tostring(obj.kind)
  return (extra and extra[key]) or BY_KIND[key] or M.generic
end

function M.evaluate(obj, extra)
  return M.rule_for(obj, extra)(obj)
end

-- Why a pod is stuck, from its container statuses: returns reason, message, container, restarts
-- for the waiting reasons kubectl calls out, or nil.
local STUCK = {
  ImagePullBackOff = true, ErrImagePull = true, CrashLoopBackOff = true,
  CreateContainerConfigError = true, CreateContainerError = true, InvalidImageName = true,
}
function M.pod_problem(pod)
  local st = pod.status or {}
  for _, list in ipairs {st.initContainerStatuses or {}, st.containerStatuses or {}} do
    for _, cs in ipairs(list) do
      local waiting = cs.state and cs.state.waiting
      if waiting and STUCK[waiting.reason] then
        return waiting.reason, waiting.message, cs.name, num(cs.restartCount)
      end
    end
  end
  local scheduled = condition(pod, "PodScheduled")
  if scheduled and scheduled.status == "False" and scheduled.reason == "Unschedulable" then
    return "Unschedulable", scheduled.message, nil, 0
  end
end

return M
