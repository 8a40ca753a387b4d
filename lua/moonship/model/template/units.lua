-- Services and jobs of a template: their fields read and checked into the model's shape
-- (ports, probes, resources with the template's defaults, volumes, node selector).
local yaml = require "moonship.yaml"
local diag = require "moonship.model.template.diag"
local fields = require "moonship.model.template.fields"
local envs = require "moonship.model.template.env"

local fmt, tonumber = string.format, tonumber
local NULL = yaml.null

local M = {}

M.SERVICE_SCHEMA = {
  known = fields.set {"name", "image", "command", "args", "envs", "env", "ports", "readiness_probe",
    "liveness_probe", "cpu", "memory", "replicas", "depends_on", "volumes", "node_selector", "static",
    "build", "service_account_name"},
  -- has_repo says the image is built from the app's repository: nothing to deploy differently.
  quiet = fields.set {"has_repo"},
  unsupported = fields.set {"configmap", "sidecars", "init", "storage", "max_replicas",
    "min_replicas", "startup_probe", "ingress", "cron", "registry",
    "build_base", "build_output_directory", "build_package_install_command", "build_command",
    "instance_type", "tty", "stdin"},
}
-- A static service (a site ReleaseHub builds and serves from a CDN) carries its build keys.
local STATIC_KEYS = fields.set {"build_base", "build_output_directory",
  "build_package_install_command", "build_command", "build"}

M.JOB_SCHEMA = {
  known = fields.set {"name", "image", "from_services", "command", "args", "envs", "env", "cpu",
    "memory", "completed_timeout", "halt_on_error", "backoff_limit", "node_selector",
    "service_account_name"},
  quiet = fields.set {"has_repo"},
  unsupported = fields.set {"build", "parallelism", "completions", "volumes", "configmap",
    "cron", "schedule"},
}
-- A cron job is a job on a schedule; halt_on_error has no meaning for it.
M.CRON_JOB_SCHEMA = {
  known = fields.set {"name", "image", "from_services", "command", "args", "envs", "env", "cpu",
    "memory", "completed_timeout", "backoff_limit", "node_selector", "service_account_name",
    "schedule", "concurrency_policy"},
  quiet = fields.set {"has_repo"},
  unsupported = fields.set {"build", "parallelism", "completions", "volumes", "configmap"},
}
local BUILD_SCHEMA = {known = fields.set {"context", "dockerfile", "args", "target"},
  quiet = fields.set {"cache_from", "no_cache"}}

M.RESOURCES_SCHEMA = {known = fields.set {"cpu", "memory", "replicas"},
  unsupported = fields.set {"storage", "gpu"}}
local LIMITS_SCHEMA = {known = fields.set {"limits", "requests"}}
local PORT_SCHEMA = {known = fields.set {"type", "port", "target_port", "loadbalancer"}}
local PROBE_SCHEMA = {known = fields.set {"exec", "http_get", "tcp_socket", "period_seconds",
  "timeout_seconds", "failure_threshold", "initial_delay_seconds", "success_threshold"}}
local VOLUME_SCHEMA = {known = fields.set {"name", "type", "size", "mount_path", "claim"},
  quiet = fields.set {"read_only"}}
local PORT_TYPES = fields.set {"container_port", "node_port"}
local VOLUME_TYPES = fields.set {"shmem", "empty_dir"}
M.CONCURRENCY_POLICIES = {allow = "Allow", forbid = "Forbid", replace = "Replace"}

-- ---- quantities ---------------------------------------------------------------------------

local QUANTITY_SUFFIX = {
  [""] = 1, n = 1e-9, u = 1e-6, m = 1e-3, k = 1e3, M = 1e6, G = 1e9, T = 1e12, P = 1e15, E = 1e18,
  Ki = 2 ^ 10, Mi = 2 ^ 20, Gi = 2 ^ 30, Ti = 2 ^ 40, Pi = 2 ^ 50, Ei = 2 ^ 60,
}

-- The value of a Kubernetes quantity ("100m", "1Gi", "2"), or nil when it is not one.
function M.quantity_value(text)
  local num, suffix = text:match("^(%d+%.?%d*)(%a*)$")
  if not num then num, suffix = text:match("^(%.%d+)(%a*)$") end
  local scale = suffix and QUANTITY_SUFFIX[suffix]
  if not scale then return nil end
  return tonumber(num) * scale
end

-- {limits=, requests=} of quantities (as text).
local function read_limits(d, tbl, key)
  local m = fields.map(d, tbl, key)
  if not m then return nil end
  fields.check_keys(d, m, LIMITS_SCHEMA, " in " .. key)
  local out = {}
  for _, k in ipairs {"limits", "requests"} do
    local text = fields.string(d, m, k, true)
    if text then
      if M.quantity_value(text) then
        out[k] = text
      else
        d:error(diag.pos(m, k), "%s.%s: '%s' is not a Kubernetes quantity (like 500m, 1, 256Mi, 1Gi)",
          key, k, text)
      end
    end
  end
  return out
end

function M.read_resources(d, doc)
  local res = fields.map(d, doc, "resources")
  if not res then return {} end
  fields.check_keys(d, res, M.RESOURCES_SCHEMA, " in resources")
  return {
    cpu = read_limits(d, res, "cpu"),
    memory = read_limits(d, res, "memory"),
    replicas = fields.integer(d, res, "replicas", 0),
  }
end

-- A unit's cpu or memory merged field by field over the defaults; requests above the limit
-- (a default request over a unit's own small limit) are lowered to the limit, as Kubernetes
-- rejects the pod otherwise.
local function merge_limits(d, own, default, key, pos, unit_what)
  if not own and not default then return nil end
  own, default = own or {}, default or {}
  local out = {limits = own.limits or default.limits, requests = own.requests or default.requests}
  if out.limits and out.requests
      and M.quantity_value(out.requests) > M.quantity_value(out.limits) then
    d:warning(pos, "%s: %s requests %s (from resources) exceed its limit %s; requests lowered to %s",
      unit_what, key, out.requests, out.limits, out.limits)
    out.requests = out.limits
  end
  if not out.limits and not out.requests then return nil end
  return out
end

-- ---- names --------------------------------------------------------------------------------

local function dns_label(name, max_len)
  return #name <= max_len and name:match("^[a-z][a-z0-9%-]*$") ~= nil and name:sub(-1) ~= "-"
end

-- The Kubernetes name of a service or job. Uppercase letters (ReleaseHub allows them) are
-- lowered with a warning; anything else invalid is an error.
function M.k8s_name(d, name, pos, what, max_len)
  if dns_label(name, max_len) then return name end
  local lower = name:lower()
  if dns_label(lower, max_len) then
    d:warning(pos, "%s name '%s' is not a valid Kubernetes name; its objects are named '%s'",
      what, name, lower)
    return lower
  end
  d:error(pos, "%s name '%s' is not a valid Kubernetes name (lowercase letters, digits and '-', starting with a letter, at most %d characters)",
    what, name, max_len)
  return nil
end

-- ---- service fields -----------------------------------------------------------------------

local function read_ports(d, svc, what)
  local list = fields.list(d, svc, "ports")
  if not list then return {} end
  local ports, seen = {}, {}
  for i, p in ipairs(list) do
    if not fields.is_map(p) then
      d:error(diag.pos(list, i), "%s: a port must be a mapping {type, port, target_port} (got %s)",
        what, fields.describe(p))
    else
      fields.check_keys(d, p, PORT_SCHEMA, " in a port")
      local ptype = fields.string(d, p, "type")
      if ptype and not PORT_TYPES[ptype] then
        local hint = diag.did_you_mean(ptype, {"container_port", "node_port"})
        d:error(diag.pos(p, "type"), "unknown port type '%s'%s", ptype,
          hint ~= "" and hint or " (container_port or node_port)")
        ptype = nil
      elseif not ptype and not fields.present(p, "type") then
        ptype = "container_port"
      end
      local port = fields.integer(d, p, "port", 1, 65535)
      local target = fields.integer(d, p, "target_port", 1, 65535)
      local lb = fields.boolean(d, p, "loadbalancer") or false
      if not port and not fields.present(p, "port") then
        d:error(diag.pos(p), "%s: a port needs 'port'", what)
      end
      if port and seen[port] then
        d:error(diag.pos(p, "port"), "%s: duplicate port %d (first at %s)", what, port,
          diag.short_at(seen[port], diag.pos(p, "port")))
      elseif port and ptype then
        seen[port] = diag.pos(p, "port")
        ports[#ports + 1] = {type = ptype, port = port, target_port = target or port, loadbalancer = lb}
      end
    end
  end
  return ports
end

-- A probe port: a number, or a named container port.
local function probe_port(d, tbl)
  local v = tbl.port
  if type(v) == "string" and not v:match("^%d+$") then return v end
  local n = fields.integer(d, tbl, "port", 1, 65535)
  if not n and v == nil then d:error(diag.pos(tbl), "probe: 'port' is missing") end
  return n
end

local function read_probe(d, svc, key)
  local p = fields.map(d, svc, key)
  if not p then return nil end
  fields.check_keys(d, p, PROBE_SCHEMA, " in " .. key)
  local probe = {}
  local kinds = 0
  if fields.present(p, "exec") then
    kinds = kinds + 1
    local e = fields.map(d, p, "exec")
    if e then
      fields.check_keys(d, e, {known = fields.set {"command"}}, " in exec")
      local cmd = fields.string_list(d, e, "command")
      if not cmd and not fields.present(e, "command") then
        d:error(diag.pos(p, "exec"), "%s.exec needs 'command'", key)
      end
      probe.exec = {command = cmd}
    end
  end
  if fields.present(p, "http_get") then
    kinds = kinds + 1
    local h = fields.map(d, p, "http_get")
    if h then
      fields.check_keys(d, h, {known = fields.set {"path", "port", "scheme"},
        unsupported = fields.set {"http_headers", "host"}}, " in http_get")
      probe.http_get = {path = fields.string(d, h, "path") or "/", port = probe_port(d, h),
        scheme = fields.string(d, h, "scheme")}
    end
  end
  if fields.present(p, "tcp_socket") then
    kinds = kinds + 1
    local t = fields.map(d, p, "tcp_socket")
    if t then
      fields.check_keys(d, t, {known = fields.set {"port"}}, " in tcp_socket")
      probe.tcp_socket = {port = probe_port(d, t)}
    end
  end
  if kinds ~= 1 then
    d:error(diag.pos(svc, key), "%s needs exactly one of exec, http_get or tcp_socket (found %d)",
      key, kinds)
    return nil
  end
  for _, k in ipairs {"period_seconds", "timeout_seconds", "failure_threshold",
      "initial_delay_seconds", "success_threshold"} do
    probe[k] = fields.integer(d, p, k, k == "initial_delay_seconds" and 0 or 1)
  end
  return probe
end

-- volumes: shmem and empty_dir in the pod; a shared volume (shared_volumes, by `claim` or by
-- the `name` of a `type: persistent` volume) or another claim in the namespace by `claim`.
local function read_volumes(d, svc, what, shared)
  local list = fields.list(d, svc, "volumes")
  if not list then return {} end
  local out = {}
  for i, v in ipairs(list) do
    if not fields.is_map(v) then
      d:error(diag.pos(list, i), "%s: a volume must be a mapping (got %s)", what, fields.describe(v))
    else
      fields.check_keys(d, v, VOLUME_SCHEMA, " in a volume")
      local vol = {
        name = fields.string(d, v, "name"), type = fields.string(d, v, "type"),
        size = fields.string(d, v, "size", true), mount_path = fields.string(d, v, "mount_path"),
        claim = fields.string(d, v, "claim"), pos = diag.pos(v),
      }
      local ref = vol.claim or (vol.type == "persistent" and vol.name)
      if not vol.mount_path then
        if not fields.present(v, "mount_path") then
          d:error(diag.pos(v), "%s: a volume needs 'mount_path'", what)
        end
      elseif ref and shared[ref] then
        vol.type, vol.claim, vol.shared = "claim", shared[ref].k8s_name, shared[ref]
        vol.name = vol.name or ref
        out[#out + 1] = vol
      elseif vol.claim then
        d:warning(diag.pos(v, "claim"), "%s: volume claim '%s' is no shared volume of the template: it must exist in the namespace",
          what, vol.claim)
        vol.type = "claim"
        vol.name = vol.name or vol.claim
        out[#out + 1] = vol
      elseif vol.type == "persistent" then
        local names = {}
        for n in pairs(shared) do names[#names + 1] = n end
        table.sort(names)
        if not vol.name then
          d:error(diag.pos(v), "%s: a persistent volume needs 'name' (the shared volume it mounts)", what)
        else
          d:error(diag.pos(v, "name"), "%s: persistent volume '%s' is no entry of shared_volumes%s", what,
            vol.name, diag.did_you_mean(vol.name, names))
        end
      elseif vol.type and VOLUME_TYPES[vol.type] then
        if not vol.name then
          d:error(diag.pos(v), "%s: a volume needs 'name'", what)
        else
          out[#out + 1] = vol
        end
      else
        d:warning(diag.pos(v, vol.type and "type" or nil),
          "%s: volume type '%s' is unsupported (shmem, empty_dir, persistent or claim), ignored", what,
          tostring(vol.type))
      end
    end
  end
  return out
end

-- service_account_name: a service account of the template (applied with the unit) or one that
-- must exist in the namespace.
local function read_account(d, unit, what, accounts)
  local name = fields.string(d, unit, "service_account_name")
  if not name then return nil end
  local account = accounts[name]
  if account then return account.k8s_name, account end
  d:warning(diag.pos(unit, "service_account_name"), "%s: service account '%s' is not in service_accounts: it must exist in the namespace",
    what, name)
  return name, nil
end

-- node_selector: ReleaseHub's [{key, value}] or a mapping.
local function read_node_selector(d, unit, what)
  local v = unit.node_selector
  if v == nil or v == NULL then return nil end
  local out = {}
  if fields.is_list(v) then
    for _, e in ipairs(envs.read_pairs(d, v, what .. " node_selector")) do out[e.name] = e.value end
  elseif fields.is_map(v) then
    for _, e in ipairs(envs.read_map(d, v, what .. " node_selector")) do out[e.name] = e.value end
  else
    fields.type_error(d, unit, "node_selector", "a list of {key, value} or a mapping")
    return nil
  end
  return out
end

-- The unit's own env: `envs: [{key, value}]` (ReleaseHub) and `env: {NAME: value}` (ext).
local function read_own_env(d, unit, what)
  local out = {}
  local list = fields.list(d, unit, "envs")
  if list then
    for _, e in ipairs(envs.read_pairs(d, list, what .. " envs", true)) do out[#out + 1] = e end
  end
  local map = fields.map(d, unit, "env")
  if map then
    for _, e in ipairs(envs.read_map(d, map, what .. " env", true)) do out[#out + 1] = e end
  end
  return out
end

-- build: {context, dockerfile, ...}: ReleaseHub builds the image; its context names it.
local function read_build(d, entry)
  local b = fields.map(d, entry, "build")
  if not b then return nil end
  fields.check_keys(d, b, BUILD_SCHEMA, " in build")
  return fields.string(d, b, "context") or "."
end

-- A service entry -> a service of the model, "static" for a static site, or nil on errors.
-- ctx = {resources=, images = {name -> ref} (--image), shared = {name -> shared volume},
-- accounts = {name -> service account}}
function M.read_service(d, entry, ctx)
  local name = fields.string(d, entry, "name", true)
  local pos = diag.pos(entry, "name")
  if not name then
    if not fields.present(entry, "name") then d:error(diag.pos(entry), "service has no 'name'") end
    return nil
  end
  local what = fmt("service '%s'", name)
  local static = fields.boolean(d, entry, "static")
  if static then
    local schema = {known = M.SERVICE_SCHEMA.known, quiet = STATIC_KEYS,
      unsupported = M.SERVICE_SCHEMA.unsupported}
    fields.check_keys(d, entry, schema, " in " .. what)
    d:warning(diag.pos(entry, "static"), "%s is a static site (static: true): unsupported, its tasks are skipped", what)
    return "static", name, pos
  end
  fields.check_keys(d, entry, M.SERVICE_SCHEMA, " in " .. what)
  local svc = {
    name = name, pos = pos, image = ctx.images[name] or fields.string(d, entry, "image"),
    command = fields.string_list(d, entry, "command") or {},
    args = fields.string_list(d, entry, "args") or {},
    own_env = read_own_env(d, entry, what),
    ports = read_ports(d, entry, what),
    readiness_probe = read_probe(d, entry, "readiness_probe"),
    liveness_probe = read_probe(d, entry, "liveness_probe"),
    depends_on = fields.string_list(d, entry, "depends_on") or {},
    depends_on_list = fields.is_list(entry.depends_on) and entry.depends_on or nil,
    volumes = read_volumes(d, entry, what, ctx.shared),
    node_selector = read_node_selector(d, entry, what),
  }
  svc.service_account, svc.account = read_account(d, entry, what, ctx.accounts)
  svc.k8s_name = M.k8s_name(d, name, pos, "service", 63)
  local build = read_build(d, entry)
  if not svc.image and not fields.present(entry, "image") then
    if build then
      -- ReleaseHub builds it; elsewhere a CI builds it and says where with --image. Only a
      -- deploy that needs this service stops (template.undeployable).
      svc.needs_image = fmt("service '%s' is built from '%s' by ReleaseHub: pass --image %s=REF",
        name, build, name)
      d:warning(pos, "%s", svc.needs_image)
    else
      d:error(pos, "%s has no 'image'", what)
    end
  end
  local res = ctx.resources
  svc.own_cpu, svc.own_memory = read_limits(d, entry, "cpu"), read_limits(d, entry, "memory")
  svc.cpu = merge_limits(d, svc.own_cpu, res.cpu, "cpu", pos, what)
  svc.memory = merge_limits(d, svc.own_memory, res.memory, "memory", pos, what)
  svc.replicas = fields.integer(d, entry, "replicas", 0) or res.replicas or 1
  return svc
end

-- The longest job name: the Job is named <job>-<8-character run id> and its pods carry it
-- in a 63-character label.
M.JOB_NAME_MAX = 54
-- The longest cron job name: the CronJob controller names each Job <name>-<11 digits>.
M.CRON_JOB_NAME_MAX = 52

-- A job entry -> a job of the model, or nil. ctx = {resources=, services=, service_names=,
-- static=, images=, accounts=, cron = true for a cron_jobs entry}
function M.read_job(d, entry, ctx)
  local kind = ctx.cron and "cron job" or "job"
  local name = fields.string(d, entry, "name", true)
  local pos = diag.pos(entry, "name")
  if not name then
    if not fields.present(entry, "name") then d:error(diag.pos(entry), "%s has no 'name'", kind) end
    return nil
  end
  local what = fmt("%s '%s'", kind, name)
  fields.check_keys(d, entry, ctx.cron and M.CRON_JOB_SCHEMA or M.JOB_SCHEMA, " in " .. what)
  local job = {
    name = name, pos = pos, image = not ctx.cron and ctx.images[name] or fields.string(d, entry, "image"),
    from_services = fields.string(d, entry, "from_services"),
    command = fields.string_list(d, entry, "command"),
    args = fields.string_list(d, entry, "args"),
    own_env = read_own_env(d, entry, what),
    completed_timeout = fields.integer(d, entry, "completed_timeout", 1),
    halt_on_error = not ctx.cron and fields.boolean(d, entry, "halt_on_error") or false,
    backoff_limit = fields.integer(d, entry, "backoff_limit", 0),
    node_selector = read_node_selector(d, entry, what),
  }
  job.service_account, job.account = read_account(d, entry, what, ctx.accounts)
  job.k8s_name = M.k8s_name(d, name, pos, kind, ctx.cron and M.CRON_JOB_NAME_MAX or M.JOB_NAME_MAX)
  if ctx.cron then
    job.schedule = fields.string(d, entry, "schedule")
    if job.schedule and not job.schedule:match("^@%a+$") and select(2, job.schedule:gsub("%S+", "")) ~= 5 then
      d:error(diag.pos(entry, "schedule"), "%s: schedule '%s' is not a cron schedule (5 fields, like \"*/5 * * * *\", or @hourly)",
        what, job.schedule)
    elseif not job.schedule and not fields.present(entry, "schedule") then
      d:error(pos, "%s has no 'schedule'", what)
    end
    local policy = fields.string(d, entry, "concurrency_policy")
    if policy then
      job.concurrency_policy = M.CONCURRENCY_POLICIES[policy:lower()]
      if not job.concurrency_policy then
        d:error(diag.pos(entry, "concurrency_policy"), "%s: concurrency_policy '%s' is not allow, forbid or replace", what, policy)
      end
    end
  end
  local cpu, memory = read_limits(d, entry, "cpu"), read_limits(d, entry, "memory")
  local base
  if job.from_services then
    base = ctx.services[job.from_services]
    if not base then
      local names = ctx.service_names
      if ctx.static[job.from_services] then
        d:error(diag.pos(entry, "from_services"), "%s: from_services '%s' is a static site, which has no image",
          what, job.from_services)
      else
        d:error(diag.pos(entry, "from_services"), "%s: unknown service '%s' in from_services%s",
          what, job.from_services, diag.did_you_mean(job.from_services, names))
      end
    end
  end
  job.base = base
  if base then
    job.image = job.image or base.image
    if not job.image then job.needs_image = base.needs_image end
    if not job.command and not job.args then
      job.command, job.args = base.command, base.args
    end
    job.node_selector = job.node_selector or base.node_selector
    if not fields.present(entry, "service_account_name") then
      job.service_account, job.account = base.service_account, base.account
    end
  end
  if not job.image and not job.from_services and not fields.present(entry, "image") then
    d:error(pos, "%s has no image (set 'image' or 'from_services')", what)
  end
  job.command, job.args = job.command or {}, job.args or {}
  local res = ctx.resources
  job.cpu = merge_limits(d, cpu or (base and base.own_cpu), res.cpu, "cpu", pos, what)
  job.memory = merge_limits(d, memory or (base and base.own_memory), res.memory, "memory", pos, what)
  return job
end

return M
