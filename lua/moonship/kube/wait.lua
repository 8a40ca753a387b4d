-- Waiting for an applied object to be ready: readiness by kubectl's rules, evaluated on every
-- event of the shared watches; an early failure when the new pods show a persistent problem,
-- with the pod's last log lines; progress reported to a callback.
local sched = require "moonship.sched"
local readiness = require "moonship.kube.readiness"

local fmt = string.format

local M = {}

local WAIT_OPTIONS = {timeout = true, on_progress = true, crashloop_restarts = true,
                      logs_tail = true, health = true}

-- Pod problems that no amount of waiting fixes by itself.
local FATAL = {ImagePullBackOff = true, ErrImagePull = true, CreateContainerConfigError = true,
               InvalidImageName = true, CreateContainerError = true}

-- The pods of the current rollout: of the Deployment's newest ReplicaSet, or of the Job.
-- The informers index their objects by owner, so this costs what the workload owns, not what
-- the namespace holds.
local function current_pods(client, live, ns)
  local kind = live.kind
  if kind == "Deployment" then
    local rs_inf = client:informer("apps/v1", "ReplicaSet", ns)
    local uid = live.metadata.uid
    local revision = (live.metadata.annotations or {})["deployment.kubernetes.io/revision"]
    local newest
    for _, rs in ipairs(rs_inf:owned_by(uid)) do
      local rev = (rs.metadata.annotations or {})["deployment.kubernetes.io/revision"]
      if revision and rev == revision then newest = rs break end
      if not revision and (not newest
          or tostring(rs.metadata.creationTimestamp) > tostring(newest.metadata.creationTimestamp)) then
        newest = rs
      end
    end
    -- No ReplicaSet of the Deployment's revision yet: the ReplicaSets' watch is behind the
    -- Deployments' (after a rollback the controller gives an old ReplicaSet the new revision).
    -- Another ReplicaSet's pods are not this rollout's: none are known until it catches up.
    if not newest then return {} end
    return client:informer("v1", "Pod", ns):owned_by(newest.metadata.uid)
  elseif kind == "Job" or kind == "StatefulSet" or kind == "DaemonSet" then
    return client:informer("v1", "Pod", ns):owned_by(live.metadata.uid)
  end
  return {}
end

local POD_KINDS = {Deployment = true, Job = true, StatefulSet = true, DaemonSet = true}

-- The first persistent problem among pods: reason, message, pod, container, restarts.
local function pod_failure(pods, crashloop_restarts)
  table.sort(pods, function(a, b) return a.metadata.name < b.metadata.name end)
  for _, pod in ipairs(pods) do
    local reason, message, container, restarts = readiness.pod_problem(pod)
    if reason and (FATAL[reason] or (reason == "CrashLoopBackOff" and restarts >= crashloop_restarts)) then
      return reason, message, pod, container, restarts
    end
  end
end

local function last_logs(client, pod, container, previous, tail)
  local text = client:logs(pod.metadata.name, pod.metadata.namespace, {
    container = container, tail_lines = tail, previous = previous,
  })
  if not text then return {} end
  local lines = {}
  for line in text:gmatch("[^\n]+") do lines[#lines + 1] = line end
  return lines
end

-- Subscribes wake to what can change obj's readiness: obj itself (inf) and, for kinds with
-- pods, its own pods (and a Deployment's ReplicaSets). Only the events of this workload's own
-- pods wake this wait: a step of N waits then costs O(N) per event, not O(N) wake-ups of
-- O(namespace) scans. Without a uid (a dry run's object) every pod event does. Returns a
-- to-be-closed value that unsubscribes all.
local function subscribe(client, inf, obj, ns, wake)
  local name, uid = obj.metadata.name, obj.metadata.uid
  local unsubs = {inf:subscribe(name, wake)}
  local closer = setmetatable({}, {__close = function()
    for _, unsub in ipairs(unsubs) do unsub() end
  end})
  if not POD_KINDS[obj.kind] then return closer end
  local pods_inf = client:informer("v1", "Pod", ns)
  local pod_owners = {}
  local function watch_pods_of(owner_uid)
    if owner_uid and not pod_owners[owner_uid] then
      pod_owners[owner_uid] = true
      unsubs[#unsubs + 1] = pods_inf:subscribe_owned(owner_uid, wake)
    end
  end
  if not uid then
    unsubs[#unsubs + 1] = pods_inf:subscribe(nil, wake)
    if obj.kind == "Deployment" then
      unsubs[#unsubs + 1] = client:informer("apps/v1", "ReplicaSet", ns):subscribe(nil, wake)
    end
  elseif obj.kind == "Deployment" then
    local rs_inf = client:informer("apps/v1", "ReplicaSet", ns)
    unsubs[#unsubs + 1] = rs_inf:subscribe_owned(uid, function(_, rs)
      if rs then watch_pods_of(rs.metadata.uid) end
      wake()
    end)
    for _, rs in ipairs(rs_inf:owned_by(uid)) do watch_pods_of(rs.metadata.uid) end
  else
    watch_pods_of(uid)
  end
  return closer
end

-- The readiness of obj as the watch has it now: state, message, info (readiness.evaluate's),
-- the live object, and whether that is older than the version applied (stale).
local function evaluate(inf, obj, health)
  local name, uid, min_generation = obj.metadata.name, obj.metadata.uid, obj.metadata.generation
  local live = inf:get(name)
  if not live and uid then
    -- Applied by this run, not yet seen by the shared watch: nothing to report (it is there).
    return "progressing", nil, {}, nil
  elseif not live then
    return "progressing", fmt("%s %s not found yet", obj.kind, name), {}, nil
  elseif (uid and live.metadata.uid ~= uid)
      or (math.type(min_generation) and math.type(live.metadata.generation)
          and live.metadata.generation < min_generation) then
    return "progressing", "waiting for the applied version to be observed", {}, live, true
  end
  local state, message, info = readiness.evaluate(live, health)
  return state, message, info, live
end

-- The details of a failed object: its newest pod's last log lines, for kinds with pods.
local function failure_details(client, obj, live, ns, message, opts)
  local details = {message = message, object = live}
  if live and POD_KINDS[obj.kind] then
    local pods = current_pods(client, live, ns)
    local pod = pods[#pods]
    if pod then
      details.pod, details.logs = pod.metadata.name, last_logs(client, pod, nil, false, opts.logs_tail or 10)
    end
  end
  return details
end

-- A persistent problem of live's current pods (reason, details), or nil; in passing, info
-- gets what blocks the rollout right now when it is not (yet) persistent.
local function pod_check(client, live, ns, info, opts)
  local pods = current_pods(client, live, ns)
  local reason, pmessage, pod, container, restarts = pod_failure(pods, opts.crashloop_restarts or 2)
  if reason then
    local logs = last_logs(client, pod, container, reason == "CrashLoopBackOff", opts.logs_tail or 10)
    local text = fmt("%s: pod %s%s%s", reason, pod.metadata.name,
      container and (" container " .. container) or "",
      reason == "CrashLoopBackOff" and fmt(" (restart %d)", restarts) or (pmessage and (": " .. pmessage) or ""))
    return reason, {message = text, pod = pod.metadata.name, container = container,
                    restarts = restarts, logs = logs, object = live}
  end
  for _, p in ipairs(pods) do
    local preason, _, _, prestarts = readiness.pod_problem(p)
    if preason then
      info.reason = preason
      info.restarts = preason == "CrashLoopBackOff" and prestarts or nil
      break
    end
  end
end

-- The progress line: "n/m replicas ready" (or the message), and what blocks it.
local function progress_summary(live, message, info)
  local summary = (info.desired and live and live.kind ~= "Job")
    and fmt("%d/%d replicas ready", info.ready or 0, info.desired) or message
  if info.reason then
    summary = summary .. ", " .. info.reason .. (info.restarts and fmt(" (restart %d)", info.restarts) or "")
  end
  return summary
end

-- wait_ready(client, obj, opts) -> "ready" or nil, reason, details
-- details = {message=, pod=, container=, restarts=, logs={lines}, object=live}
function M.wait_ready(client, obj, opts)
  for k in pairs(opts) do
    if not WAIT_OPTIONS[k] then error(fmt("wait_ready: unknown option '%s'", tostring(k)), 3) end
  end
  local me = sched.current()
  if not me then error("wait_ready must be called inside a task (use sched.run)", 3) end
  local ns = obj.metadata.namespace or client.namespace
  local health = opts.health or client.health
  local deadline = opts.timeout and (sched.now() + opts.timeout)

  local inf = client:informer(obj.apiVersion, obj.kind, ns)
  local dirty = true
  local _ <close> = subscribe(client, inf, obj, ns, function()
    dirty = true
    me:unpark()
  end)

  local last_message
  while true do
    if inf.error then return nil, "watch_failed", {message = tostring(inf.error)} end
    if dirty and inf.synced then
      dirty = false
      local state, message, info, live, stale = evaluate(inf, obj, health)
      if state == "ready" then return "ready" end
      if state == "failed" then
        return nil, info.reason or "failed", failure_details(client, obj, live, ns, message, opts)
      end
      -- A Deployment's current pods are known once the watch has the applied version and its
      -- controller has seen it: before that, its revision (and so its newest ReplicaSet) is the
      -- previous rollout's, whose crash-looping pods (a bad release being replaced, or rolled
      -- back) are not this one's.
      if live and not stale and POD_KINDS[obj.kind]
          and (live.kind ~= "Deployment" or readiness.generation_observed(live)) then
        local reason, details = pod_check(client, live, ns, info, opts)
        if reason then return nil, reason, details end
      end
      -- kept without on_progress as well: a timeout says what it was waiting for
      local summary = progress_summary(live, message, info)
      if summary and summary ~= last_message then
        last_message = summary
        if opts.on_progress then
          opts.on_progress(summary, {ready = info.ready, desired = info.desired, reason = info.reason,
                                     restarts = info.restarts, phase = info.phase, message = message})
        end
      end
    end
    local remaining = deadline and (deadline - sched.now())
    if remaining and remaining <= 0 then
      return nil, "timeout", {message = last_message or "timed out"}
    end
    if not (dirty and inf.synced) then
      sched.park(remaining)
    end
  end
end

-- wait_deleted(client, obj, {timeout=}) -> true, or nil, "timeout" | "watch_failed", message.
-- Gone means that the shared watch of its kind no longer holds it (after its DELETED event, or
-- a list without it), or holds another object of that name (a new uid): a foreground deletion
-- is over only once the object's dependents are gone and the garbage collector removed it.
function M.wait_deleted(client, obj, opts)
  for k in pairs(opts) do
    if k ~= "timeout" then error(fmt("wait_deleted: unknown option '%s'", tostring(k)), 3) end
  end
  if not sched.current() then error("wait_deleted must be called inside a task (use sched.run)", 3) end
  local name, uid = obj.metadata.name, obj.metadata.uid
  local inf = client:informer(obj.apiVersion, obj.kind, obj.metadata.namespace or client.namespace)
  local gone = sched.event()
  local function check()
    if inf.error then gone:set() return end
    local live = inf.synced and inf:get(name)
    if inf.synced and (not live or (uid and live.metadata.uid ~= uid)) then gone:set() end
  end
  local unsub = inf:subscribe(name, check)
  local _ <close> = setmetatable({}, {__close = function() unsub() end})
  check()
  local ok = gone:wait(opts.timeout)
  if inf.error then return nil, "watch_failed", tostring(inf.error) end
  if not ok then
    return nil, "timeout", fmt("timed out after %gs waiting for %s/%s to be deleted", opts.timeout, obj.kind:lower(), name)
  end
  return true
end

return M
