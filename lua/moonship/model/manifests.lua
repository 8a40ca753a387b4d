-- Kubernetes objects for the tasks of a template model: a service is a Deployment (plus a
-- Service for its ports, an Ingress for its hostnames, and the ServiceAccount and shared
-- volumes' PersistentVolumeClaims it uses), a job a Job with a per-run name, a cron job a
-- CronJob, a `manifests` entry its own objects.
-- Objects are fresh Lua tables, ready for server-side apply.
--   manifests.for_task(model, task, {run_id=, namespace=, attempt=}) -> {object...}
--   manifests.all(model, opts) / manifests.for_workflow(model, workflow, opts) -> {object...}
--   manifests.by_task(model, workflow, opts) -> {{task=, objects={object...}}...}
local json = require "moonship.json"

local fmt, byte, concat = string.format, string.byte, table.concat
local json_array = json.array

local M = {}

M.MANAGED_BY = "moonship"
M.RUN_ANNOTATION = "moonship.dev/run"
M.JOB_LABEL = "moonship.dev/job"
M.MANIFEST_LABEL = "moonship.dev/manifest"
-- A finished Job stays an hour for its logs and status, then Kubernetes deletes it.
M.JOB_TTL_SECONDS = 3600
-- A ReleaseHub job runs once: a failed migration should fail the task, not run six more times
-- (Kubernetes' default); retries are the retry hook's decision. backoff_limit (ext) overrides.
M.DEFAULT_BACKOFF_LIMIT = 0
M.SHORT_RUN_ID_LEN = 8

-- Kinds that live outside namespaces: their objects get no metadata.namespace.
local CLUSTER_SCOPED = {}
for _, k in ipairs {"Namespace", "Node", "PersistentVolume", "StorageClass", "ClusterRole",
    "ClusterRoleBinding", "CustomResourceDefinition", "PriorityClass", "IngressClass",
    "RuntimeClass", "CSIDriver", "CSINode", "APIService", "ValidatingWebhookConfiguration",
    "MutatingWebhookConfiguration", "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding", "VolumeAttachment", "CertificateSigningRequest"} do
  CLUSTER_SCOPED[k] = true
end
M.CLUSTER_SCOPED = CLUSTER_SCOPED

-- The run id as a DNS-safe suffix of at most 8 characters: the id itself when it already is
-- one, else its FNV-1a hash in hex (stable, so a resumed run finds its Jobs).
function M.short_run_id(run_id)
  assert(type(run_id) == "string" and run_id ~= "", "manifests: run_id must be a non-empty string")
  local lower = run_id:lower()
  if #lower <= M.SHORT_RUN_ID_LEN and lower:match("^[a-z0-9]+$") then return lower end
  local h = 2166136261
  for i = 1, #run_id do
    h = ((h ~ byte(run_id, i)) * 16777619) & 0xffffffff
  end
  return fmt("%08x", h)
end

-- component is "service" or "job": a job may share its service's name (from_services), and
-- the service's selector must not pick up the job's pods.
function M.labels(model, name, component)
  return {
    ["app.kubernetes.io/name"] = name,
    ["app.kubernetes.io/part-of"] = model.app,
    ["app.kubernetes.io/managed-by"] = M.MANAGED_BY,
    ["app.kubernetes.io/component"] = component,
  }
end

-- What a service's Deployment and Service select: never changes for the life of the service.
function M.selector(model, name)
  return {["app.kubernetes.io/name"] = name, ["app.kubernetes.io/part-of"] = model.app,
    ["app.kubernetes.io/component"] = "service"}
end

local function metadata(model, name, opts, labels)
  local meta = {name = name, namespace = opts.namespace or model.namespace, labels = labels}
  if opts.run_id then meta.annotations = {[M.RUN_ANNOTATION] = opts.run_id} end
  return meta
end

local function list_or_nil(list)
  if not list or #list == 0 then return nil end
  return json_array(table.move(list, 1, #list, 1, {}))
end

local function resources(unit)
  local limits, requests = {}, {}
  for _, key in ipairs {"cpu", "memory"} do
    local r = unit[key]
    if r then
      limits[key], requests[key] = r.limits, r.requests
    end
  end
  local out = {limits = next(limits) and limits or nil, requests = next(requests) and requests or nil}
  return next(out) and out or nil
end

local function probe(p)
  if not p then return nil end
  local out = {
    periodSeconds = p.period_seconds, timeoutSeconds = p.timeout_seconds,
    failureThreshold = p.failure_threshold, initialDelaySeconds = p.initial_delay_seconds,
    successThreshold = p.success_threshold,
  }
  if p.exec then
    out.exec = {command = list_or_nil(p.exec.command)}
  elseif p.http_get then
    out.httpGet = {path = p.http_get.path, port = p.http_get.port, scheme = p.http_get.scheme}
  elseif p.tcp_socket then
    out.tcpSocket = {port = p.tcp_socket.port}
  end
  return out
end

local function env_list(env)
  local out = {}
  for i, e in ipairs(env or {}) do out[i] = {name = e.name, value = e.value} end
  return list_or_nil(out)
end

local function volume_name(name)
  local s = name:lower():gsub("[^a-z0-9%-]", "-"):gsub("^%-+", ""):gsub("%-+$", "")
  return s ~= "" and s:sub(1, 63) or "volume"
end

local function volumes(unit)
  local vols, mounts = {}, {}
  for _, v in ipairs(unit.volumes or {}) do
    local name = volume_name(v.name)
    local vol = {name = name}
    if v.type == "shmem" then
      vol.emptyDir = {medium = "Memory", sizeLimit = v.size}
    elseif v.type == "empty_dir" then
      vol.emptyDir = {sizeLimit = v.size}
    elseif v.type == "claim" then
      vol.persistentVolumeClaim = {claimName = v.claim}
    end
    vols[#vols + 1] = vol
    mounts[#mounts + 1] = {name = name, mountPath = v.mount_path}
  end
  return list_or_nil(vols), list_or_nil(mounts)
end

local function pod_account(unit)
  return unit.service_account
end

local function container(unit, name)
  local vols, mounts = volumes(unit)
  local c = {
    name = name, image = unit.image,
    command = list_or_nil(unit.command), args = list_or_nil(unit.args),
    env = env_list(unit.env), resources = resources(unit),
    readinessProbe = probe(unit.readiness_probe), livenessProbe = probe(unit.liveness_probe),
    volumeMounts = mounts,
  }
  local ports, seen = {}, {}
  for _, p in ipairs(unit.ports or {}) do
    if not seen[p.target_port] then
      seen[p.target_port] = true
      ports[#ports + 1] = {containerPort = p.target_port}
    end
  end
  c.ports = list_or_nil(ports)
  return c, vols
end

local function node_selector(unit)
  if not unit.node_selector or next(unit.node_selector) == nil then return nil end
  local out = {}
  for k, v in pairs(unit.node_selector) do out[k] = v end
  return out
end

-- NodePorts Kubernetes accepts by default; other node_port numbers get an assigned one.
local NODE_PORT_MIN, NODE_PORT_MAX = 30000, 32767

local function service_object(model, svc, name, opts)
  local ports, any_lb, any_node = {}, false, false
  for _, p in ipairs(svc.ports) do
    local port = {name = "port-" .. p.port, port = p.port, targetPort = p.target_port,
      protocol = "TCP"}
    if p.type == "node_port" then
      any_node = true
      if p.port >= NODE_PORT_MIN and p.port <= NODE_PORT_MAX then port.nodePort = p.port end
    end
    any_lb = any_lb or p.loadbalancer
    ports[#ports + 1] = port
  end
  local stype = any_lb and "LoadBalancer" or any_node and "NodePort" or "ClusterIP"
  return {
    apiVersion = "v1", kind = "Service",
    metadata = metadata(model, name, opts, M.labels(model, name, "service")),
    spec = {type = stype, selector = M.selector(model, name), ports = json_array(ports)},
  }
end

-- A service: its Deployment, and a Service when it has ports.
function M.service_objects(model, svc, opts)
  opts = opts or {}
  local name = svc.k8s_name or svc.name
  local labels = M.labels(model, name, "service")
  local c, vols = container(svc, name)
  local deployment = {
    apiVersion = "apps/v1", kind = "Deployment",
    metadata = metadata(model, name, opts, labels),
    spec = {
      replicas = svc.replicas or 1,
      selector = {matchLabels = M.selector(model, name)},
      -- No run id here: a label that changes every run would roll the pods every run.
      template = {
        metadata = {labels = M.labels(model, name, "service")},
        spec = {containers = json_array {c}, nodeSelector = node_selector(svc), volumes = vols,
          serviceAccountName = pod_account(svc)},
      },
    },
  }
  -- What the pods use comes first: a pod whose claim or account is missing does not start.
  local objects = {}
  if svc.account then objects[#objects + 1] = M.account_object(model, svc.account, opts) end
  local claimed = {}
  for _, v in ipairs(svc.volumes or {}) do
    if v.shared and not claimed[v.shared.name] then
      claimed[v.shared.name] = true
      objects[#objects + 1] = M.claim_object(model, v.shared, opts)
    end
  end
  objects[#objects + 1] = deployment
  if svc.ports and #svc.ports > 0 then objects[#objects + 1] = service_object(model, svc, name, opts) end
  if svc.hostnames and #svc.hostnames > 0 then objects[#objects + 1] = M.ingress_object(model, svc, opts) end
  return objects
end

-- A path Kubernetes takes as a Prefix; anything else (a regular expression of ReleaseHub's
-- rules) is left to the ingress controller.
local function path_type(path)
  return path:match("^/[%w%-%._~/]*$") and "Prefix" or "ImplementationSpecific"
end

-- A service's Ingress: one rule per host, its paths to the service's first port.
function M.ingress_object(model, svc, opts)
  opts = opts or {}
  local name = svc.k8s_name or svc.name
  local meta = metadata(model, name, opts, M.labels(model, name, "service"))
  for k, v in pairs(model.ingress_annotations or {}) do
    meta.annotations = meta.annotations or {}
    meta.annotations[k] = v
  end
  local rules, by_host = {}, {}
  for _, route in ipairs(svc.hostnames) do
    local rule = by_host[route.host]
    if not rule then
      rule = {host = route.host, http = {paths = json_array {}}}
      by_host[route.host] = rule
      rules[#rules + 1] = rule
    end
    local paths = rule.http.paths
    paths[#paths + 1] = {path = route.path, pathType = path_type(route.path),
      backend = {service = {name = name, port = {number = svc.ports[1].port}}}}
  end
  return {apiVersion = "networking.k8s.io/v1", kind = "Ingress", metadata = meta,
    spec = {rules = json_array(rules)}}
end

-- A shared volume's PersistentVolumeClaim.
function M.claim_object(model, vol, opts)
  opts = opts or {}
  local name = vol.k8s_name or vol.name
  return {
    apiVersion = "v1", kind = "PersistentVolumeClaim",
    metadata = metadata(model, name, opts, M.labels(model, name, "volume")),
    spec = {accessModes = json_array {vol.access_mode or "ReadWriteOnce"},
      resources = {requests = {storage = vol.size}}, storageClassName = vol.storage_class},
  }
end

-- A service account, annotated with its cloud role for EKS or GKE.
function M.account_object(model, account, opts)
  opts = opts or {}
  local name = account.k8s_name or account.name
  local meta = metadata(model, name, opts, M.labels(model, name, "service-account"))
  if account.annotation then
    meta.annotations = meta.annotations or {}
    meta.annotations[account.annotation] = account.cloud_role
  end
  return {apiVersion = "v1", kind = "ServiceAccount", metadata = meta}
end

-- The name of a job's Job in a run: <job>-<short run id>, and -<attempt> from the second
-- attempt on (a retry needs a new Job: a finished one never runs again).
function M.job_name(job, run_id, attempt)
  local name = (job.k8s_name or job.name) .. "-" .. M.short_run_id(run_id)
  if attempt and attempt > 1 then name = name .. "-" .. attempt end
  return name
end

function M.job_object(model, job, opts)
  opts = opts or {}
  assert(opts.run_id, "manifests: a job needs opts.run_id (its Job is named per run)")
  local base = job.k8s_name or job.name
  local name = M.job_name(job, opts.run_id, opts.attempt)
  local labels = M.labels(model, base, "job")
  labels[M.JOB_LABEL] = base
  local pod_labels = M.labels(model, base, "job")
  pod_labels[M.JOB_LABEL] = base
  local c = container(job, base)
  return {
    apiVersion = "batch/v1", kind = "Job",
    metadata = metadata(model, name, opts, labels),
    spec = {
      backoffLimit = job.backoff_limit or M.DEFAULT_BACKOFF_LIMIT,
      activeDeadlineSeconds = job.completed_timeout,
      ttlSecondsAfterFinished = M.JOB_TTL_SECONDS,
      template = {
        metadata = {labels = pod_labels},
        spec = {restartPolicy = "Never", containers = json_array {c}, nodeSelector = node_selector(job),
          serviceAccountName = pod_account(job)},
      },
    },
  }
end

-- A cron job's CronJob: its Jobs as a job's (backoffLimit 0 unless backoff_limit).
function M.cron_job_object(model, cron, opts)
  opts = opts or {}
  local name = cron.k8s_name or cron.name
  local c = container(cron, name)
  return {
    apiVersion = "batch/v1", kind = "CronJob",
    metadata = metadata(model, name, opts, M.labels(model, name, "cron-job")),
    spec = {
      schedule = cron.schedule, concurrencyPolicy = cron.concurrency_policy,
      jobTemplate = {
        metadata = {labels = M.labels(model, name, "cron-job")},
        spec = {
          backoffLimit = cron.backoff_limit or M.DEFAULT_BACKOFF_LIMIT,
          activeDeadlineSeconds = cron.completed_timeout,
          template = {
            metadata = {labels = M.labels(model, name, "cron-job")},
            spec = {restartPolicy = "Never", containers = json_array {c}, nodeSelector = node_selector(cron),
              serviceAccountName = pod_account(cron)},
          },
        },
      },
    },
  }
end

-- A job or cron job's objects: its ServiceAccount first, when the template defines it.
local function with_account(model, unit, obj, opts)
  if unit.account then return {M.account_object(model, unit.account, opts), obj} end
  return {obj}
end

-- A copy that keeps the JSON marks of loaded YAML (so [] and {} stay apart).
local function deep_copy(v)
  if type(v) ~= "table" then return v end
  local out = {}
  for k, x in pairs(v) do out[k] = deep_copy(x) end
  return setmetatable(out, getmetatable(v))
end
M.deep_copy = deep_copy

-- A raw manifest's objects: namespaced into the environment unless they name a namespace or
-- are cluster-scoped, with our labels added where the author set none.
function M.manifest_objects(model, manifest, opts)
  opts = opts or {}
  local out = {}
  for i, obj in ipairs(manifest.objects) do
    local o = deep_copy(obj)
    local meta = o.metadata
    if not CLUSTER_SCOPED[o.kind] and meta.namespace == nil then
      meta.namespace = opts.namespace or model.namespace
    end
    local labels = type(meta.labels) == "table" and meta.labels or {}
    meta.labels = labels
    labels["app.kubernetes.io/part-of"] = labels["app.kubernetes.io/part-of"] or model.app
    labels["app.kubernetes.io/managed-by"] = labels["app.kubernetes.io/managed-by"] or M.MANAGED_BY
    labels[M.MANIFEST_LABEL] = manifest.name
    if opts.run_id then
      local ann = type(meta.annotations) == "table" and meta.annotations or {}
      ann[M.RUN_ANNOTATION] = opts.run_id
      meta.annotations = ann
    end
    out[i] = o
  end
  return out
end

-- The task kinds whose objects a task applies and waits for.
M.APPLIED_KINDS = {services = true, jobs = true, cron_jobs = true, manifests = true}

-- The objects a task applies; tasks that apply nothing (release.*, charts, custom kinds) give {}.
function M.for_task(model, task, opts)
  local kind, name = task.kind, task.name
  if kind == "services" then
    local svc = model.by_name.services[name]
    assert(svc, "manifests: unknown service " .. tostring(name))
    return M.service_objects(model, svc, opts)
  elseif kind == "jobs" then
    local job = model.by_name.jobs[name]
    assert(job, "manifests: unknown job " .. tostring(name))
    return with_account(model, job, M.job_object(model, job, opts), opts)
  elseif kind == "cron_jobs" then
    local cron = model.by_name.cron_jobs[name]
    assert(cron, "manifests: unknown cron job " .. tostring(name))
    return with_account(model, cron, M.cron_job_object(model, cron, opts), opts)
  elseif kind == "manifests" then
    local m = model.by_name.manifests[name]
    assert(m, "manifests: unknown manifest " .. tostring(name))
    return M.manifest_objects(model, m, opts)
  end
  return {}
end

local function append(list, objects)
  for _, o in ipairs(objects) do list[#list + 1] = o end
end

-- Every object of the template: services, then jobs, cron jobs, then raw manifests, in file
-- order; a shared volume or a service account used by several appears once.
function M.all(model, opts)
  local out, seen = {}, {}
  local function add(objects)
    for _, o in ipairs(objects) do
      local key = o.kind .. "/" .. o.metadata.name
      if not seen[key] then seen[key] = true; out[#out + 1] = o end
    end
  end
  for _, svc in ipairs(model.services) do add(M.service_objects(model, svc, opts)) end
  for _, job in ipairs(model.jobs) do add(with_account(model, job, M.job_object(model, job, opts), opts)) end
  for _, cron in ipairs(model.cron_jobs or {}) do
    add(with_account(model, cron, M.cron_job_object(model, cron, opts), opts))
  end
  for _, m in ipairs(model.manifests) do append(out, M.manifest_objects(model, m, opts)) end
  return out
end

-- Each task of a workflow with its objects, in step and task order: {{task=, objects=}...},
-- a shared object once, with the task that first applies it.
function M.by_task(model, workflow, opts)
  local out, seen = {}, {}
  for _, step in ipairs(workflow.steps) do
    for _, task in ipairs(step.tasks) do
      local objects = {}
      for _, o in ipairs(M.for_task(model, task, opts)) do
        local key = o.kind .. "/" .. (o.metadata.namespace or "") .. "/" .. o.metadata.name
        if not seen[key] then seen[key] = true; objects[#objects + 1] = o end
      end
      out[#out + 1] = {task = task, objects = objects}
    end
  end
  return out
end

-- The objects of a workflow's tasks, in step and task order (a shared one once, where it is
-- first applied).
function M.for_workflow(model, workflow, opts)
  local out = {}
  for _, entry in ipairs(M.by_task(model, workflow, opts)) do append(out, entry.objects) end
  return out
end

-- "kind/name" for messages.
function M.describe(obj)
  return concat({obj.kind:lower(), obj.metadata.name}, "/")
end

return M
