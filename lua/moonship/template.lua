-- Application templates (ReleaseHub-compatible, DESIGN.md §2): loads a template and the
-- environment variables file beside it, checks everything before anything is deployed, and
-- builds the model the engine, `plan` and `render` consume.
--   template.find(dir) -> path | nil, message
--   template.load(path [, opts]) -> model, warnings | nil, errors, warnings
--     opts = {env=, namespace=, domain=, hooks= (path), custom_kinds = {kind=true} | fn(hooks_path)}
--     The hooks file is opts.hooks, else the template's `hooks` key, else hooks.lua beside the
--     template; custom task kinds are the caller's set plus, when the caller named no hooks file,
--     the keys of that file's `tasks`.
--     Defaults: env_id = opts.env or "local"; namespace = opts.namespace, else "<app>-<env>"
--     with --env, else "default"; app = the `app` key, else the directory's name.
--   template.workflow(model, name) -> workflow | nil, message
-- Errors and warnings are lists of {file=, line=, col=, message=, severity=, text=} whose
-- tostring is "file:line:col: message".
local yaml = require "moonship.yaml"
local diag = require "moonship.template.diag"
local fields = require "moonship.template.fields"
local envs = require "moonship.template.env"
local units = require "moonship.template.units"
local workflows = require "moonship.template.workflows"

local fmt, open = string.format, io.open
local NULL = yaml.null

local M = {}

-- Where a template is looked for in a directory, in order.
M.DEFAULT_PATHS = {".release/application_template.yaml", "moonship.yaml"}
-- The hooks file used when neither the caller nor the template names one.
M.DEFAULT_HOOKS = "hooks.lua"

local TOP_SCHEMA = {
  known = fields.set {"app", "domain", "resources", "services", "jobs", "workflows", "hooks",
    "manifests", "parameters", "environment_templates", "context"},
  -- ReleaseHub bookkeeping: how the platform tracks the app, nothing to deploy.
  quiet = fields.set {"auto_deploy", "repo_name", "tracking_branch", "tracking_tag", "mode",
    "git_repo", "repo_id"},
  unsupported = fields.set {"builds", "charts", "infrastructure", "hostnames", "ingress",
    "shared_volumes", "app_imports", "rules", "cron_jobs", "sidecars", "notifications",
    "workspaces", "s3_volumes", "datasets", "routes", "development_environment",
    "execution_type", "service_accounts", "node_selector", "default_instance_type"},
}
-- Top-level sections whose entries a custom task kind of the same name may refer to
-- (charts.amundsen -> charts: [{name: amundsen, ...}]).
local TASK_SECTIONS = {"charts", "infrastructure", "builds"}

local PARAMETER_SCHEMA = {known = fields.set {"name", "default"},
  quiet = fields.set {"type", "description", "options", "optional"}}
local MANIFEST_SCHEMA = {known = fields.set {"name", "path"}}

-- ---- paths --------------------------------------------------------------------------------

local function exists(path)
  local f = open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

local function dirname(path)
  return path:match("^(.*)/[^/]*$") or "."
end

local cached_cwd
local function cwd()
  if not cached_cwd then
    cached_cwd = os.getenv("PWD")
    if not cached_cwd then
      local p = io.popen("pwd")
      cached_cwd = p and p:read("l") or "."
      if p then p:close() end
    end
  end
  return cached_cwd
end

local function normalize(path)
  local parts = {}
  for part in path:gmatch("[^/]+") do
    if part == ".." and #parts > 0 and parts[#parts] ~= ".." then
      parts[#parts] = nil
    elseif part ~= "." then
      parts[#parts + 1] = part
    end
  end
  return "/" .. table.concat(parts, "/")
end

local function absolute(path)
  if path:sub(1, 1) == "/" then return normalize(path) end
  return normalize(cwd() .. "/" .. path)
end
M.absolute = absolute

-- The path of the template in dir (default "."): .release/application_template.yaml, then
-- moonship.yaml.
function M.find(dir)
  dir = dir or "."
  for _, rel in ipairs(M.DEFAULT_PATHS) do
    local path = (dir == ".") and rel or (dir .. "/" .. rel)
    if exists(path) then return path end
  end
  return nil, fmt("no template in %s (looked for %s)", dir == "." and "the current directory" or dir,
    table.concat(M.DEFAULT_PATHS, ", "))
end

-- ---- names --------------------------------------------------------------------------------

-- A DNS label from any text: the app name when the template has none, and namespaces.
local function dns_label(text)
  local s = text:lower():gsub("[^a-z0-9%-]", "-"):gsub("^[^a-z0-9]+", ""):gsub("%-+$", "")
  if #s > 63 then s = s:sub(1, 63):gsub("%-+$", "") end
  return s ~= "" and s or "app"
end
M.dns_label = dns_label

-- The app name from the directory: the repository holding .release/, or the template's dir.
local function app_from_path(abs_path)
  local dir = dirname(abs_path)
  if dir:match("/%.release$") then dir = dirname(dir) end
  return dns_label(dir:match("([^/]+)$") or "app")
end

local function label_value_ok(v)
  return #v >= 1 and #v <= 63 and v:match("^[A-Za-z0-9_.%-]+$") ~= nil
    and v:match("^[A-Za-z0-9]") ~= nil and v:match("[A-Za-z0-9]$") ~= nil
end

-- ---- reading ------------------------------------------------------------------------------

local function read_text(path)
  local f, err = open(path, "rb")
  if not f then return nil, err end
  local text = f:read("a")
  f:close()
  return text
end

-- A YAML loader error "file:line:col: msg" as a positioned error.
local function yaml_error(d, err, file)
  local efile, line, col, msg = err:match("^(.-):(%d+):(%d+): (.*)$")
  if efile then
    d:error({file = efile, line = tonumber(line), col = tonumber(col)}, "%s", msg)
  else
    d:error({file = file, line = 1, col = 1}, "%s", err)
  end
end

local function read_parameters(d, doc, vars)
  local list = fields.list(d, doc, "parameters")
  for i, p in ipairs(list or {}) do
    if not fields.is_map(p) then
      d:error(diag.pos(list, i), "a parameter must be a mapping {name, default} (got %s)",
        fields.describe(p))
    else
      fields.check_keys(d, p, PARAMETER_SCHEMA, " in a parameter")
      local name = fields.string(d, p, "name")
      local default = fields.scalar_text(p.default)
      if name and default then vars["parameters." .. name] = default end
    end
  end
end

local function check_environment_templates(d, doc)
  local list = fields.list(d, doc, "environment_templates")
  for i, t in ipairs(list or {}) do
    if not fields.is_map(t) then
      d:error(diag.pos(list, i), "an environment template must be a mapping {name, ...} (got %s)",
        fields.describe(t))
    else
      for k in pairs(t) do
        if k ~= "name" then
          d:warning(diag.pos(t, k), "unsupported key '%s' in an environment template (overrides per environment), ignored", k)
        end
      end
    end
  end
end

-- Reads a list section of named entries with reader(entry) -> unit; duplicates are errors.
local function read_named_list(d, doc, key, reader, what)
  local list = fields.list(d, doc, key)
  local out, by_name, first = {}, {}, {}
  for i, entry in ipairs(list or {}) do
    if not fields.is_map(entry) then
      d:error(diag.pos(list, i), "a %s must be a mapping {name, ...} (got %s)", what, fields.describe(entry))
    else
      local unit, static_name, static_pos = reader(entry)
      local name = unit == "static" and static_name or (unit and unit.name)
      local pos = unit == "static" and static_pos or (unit and unit.pos)
      if name then
        if first[name] then
          d:error(pos, "duplicate %s '%s' (first at %s)", what, name, diag.short_at(first[name], pos))
        else
          first[name] = pos
          if unit ~= "static" then
            out[#out + 1] = unit
            by_name[name] = unit
          end
        end
      end
      if unit == "static" then by_name[static_name] = nil end
    end
  end
  return out, by_name, first
end

-- Different names mapping to the same Kubernetes name would overwrite each other.
local function check_k8s_names(d, units_list, what)
  local seen = {}
  for _, u in ipairs(units_list) do
    if u.k8s_name then
      local other = seen[u.k8s_name]
      if other then
        d:error(u.pos, "%s '%s' and '%s' (at %s) both become Kubernetes name '%s'", what, u.name,
          other.name, diag.short_at(other.pos, u.pos), u.k8s_name)
      else
        seen[u.k8s_name] = u
      end
    end
  end
end

-- ---- environment --------------------------------------------------------------------------

-- Warns about ${name} placeholders (lowercase: ReleaseHub's template variables, not env vars)
-- that have no value, once per position: a typo like ${envid} would otherwise reach the cluster.
local function check_placeholders(d, text, pos, vars, warned)
  if type(text) ~= "string" or not text:find("${", 1, true) then return end
  for name in text:gmatch("%${([%l_][%w_%.%-]*)}") do
    local key = diag.at(pos) .. name
    if vars[name] == nil and not warned[key] then
      warned[key] = true
      if name == "domain" then
        d:warning(pos, "placeholder '${domain}' has no value (the template sets no 'domain'), left as is")
      else
        local known = {}
        for k in pairs(vars) do known[#known + 1] = "${" .. k .. "}" end
        table.sort(known)
        d:warning(pos, "unknown placeholder '${%s}'%s, left as is", name,
          diag.did_you_mean("${" .. name .. "}", known))
      end
    end
  end
end

-- Every string under a service or job entry, with its position.
local function check_unit_placeholders(d, tbl, vars, warned)
  for k, v in pairs(tbl) do
    if type(v) == "string" then
      -- its position only when there is a placeholder to speak of
      if v:find("${", 1, true) then check_placeholders(d, v, diag.pos(tbl, k), vars, warned) end
    elseif type(v) == "table" then
      check_unit_placeholders(d, v, vars, warned)
    end
  end
end

-- The Release-provided variables moonship can know; mapping entries may refer to them.
local function release_vars(model)
  return {RELEASE_ENV_ID = model.env_id, RELEASE_APP_NAME = model.app,
    RELEASE_NAMESPACE = model.namespace, RELEASE_DOMAIN = model.domain}
end

-- Builds each unit's env: file defaults, the file's list for the unit, the unit's own envs,
-- then the file's mapping; ${...} substituted in every value.
local function assemble_env(d, model, env_file, vars, services, jobs, placeholder_warned)
  local secret_warned = {}
  local function add_all(list, entries)
    for _, e in ipairs(entries) do
      check_placeholders(d, e.value, e.pos, vars, placeholder_warned)
      local value = envs.substitute(e.value, vars)
      if value:match("^%$secrets%.") and not secret_warned[diag.at(e.pos)] then
        secret_warned[diag.at(e.pos)] = true
        d:warning(e.pos, "secret reference '%s' is unsupported; it is passed as the literal value of %s",
          value, e.name)
      end
      envs.set(list, e.name, value, e.pos)
    end
  end
  local mapping_failed = {}
  local release = release_vars(model)
  local function apply_mapping(list)
    local by_name = {}
    for _, e in ipairs(list) do by_name[e.name] = e.value end
    local function lookup(name) return by_name[name] or release[name] end
    for _, m in ipairs(env_file and env_file.mapping or {}) do
      local value, missing = envs.resolve_reference(envs.substitute(m.ref, vars), lookup)
      if value then
        envs.set(list, m.name, value, m.pos)
      elseif not mapping_failed[m.name] then
        mapping_failed[m.name] = true
        d:warning(m.pos, "mapping '%s': '%s' is set by ReleaseHub at run time, not by moonship; %s is left unset",
          m.name, missing, m.name)
      end
    end
  end
  local defaults = env_file and env_file.defaults or {}
  local per_unit = env_file and env_file.services or {}
  for _, svc in ipairs(services) do
    local list = {}
    add_all(list, defaults)
    add_all(list, per_unit[svc.name] or {})
    add_all(list, svc.own_env)
    svc.base_env = envs.copy(list)
    apply_mapping(list)
    svc.env = list
  end
  for _, job in ipairs(jobs) do
    local list
    if job.base then
      list = envs.copy(job.base.base_env)
    else
      list = {}
      add_all(list, defaults)
      if not model.by_name.services[job.name] then add_all(list, per_unit[job.name] or {}) end
    end
    add_all(list, job.own_env)
    apply_mapping(list)
    job.env = list
  end
end

local function substitute_unit(unit, vars)
  unit.image = unit.image and envs.substitute(unit.image, vars)
  for _, key in ipairs {"command", "args"} do
    local out = {}
    for i, s in ipairs(unit[key] or {}) do out[i] = envs.substitute(s, vars) end
    unit[key] = out
  end
end

-- Strips the loader's working fields and gives env entries the model's {name, value} shape.
local function finish_unit(unit)
  local env = {}
  for i, e in ipairs(unit.env or {}) do env[i] = {name = e.name, value = e.value} end
  unit.env = env
  unit.own_env, unit.base_env, unit.own_cpu, unit.own_memory, unit.base = nil, nil, nil, nil, nil
  unit.depends_on_list = nil
end

-- ---- manifests (ext) ----------------------------------------------------------------------

local function read_manifest_objects(d, display, abs, entry)
  local text, err = read_text(abs)
  if not text then
    d:error(diag.pos(entry, "path"), "manifest '%s': cannot read %s: %s", entry.name, display, err)
    return nil
  end
  local docs, yerr = yaml.load(text, {filename = display})
  if not docs then
    yaml_error(d, yerr, display)
    return nil
  end
  local objects = {}
  for _, obj in ipairs(docs) do
    if obj ~= NULL and obj ~= nil then
      if not fields.is_map(obj) then
        d:error(diag.pos(obj, nil, display), "a Kubernetes object must be a mapping (got %s)",
          fields.describe(obj))
      else
        local ok = true
        for _, k in ipairs {"apiVersion", "kind"} do
          if type(obj[k]) ~= "string" then
            d:error(diag.pos(obj, obj[k] ~= nil and k or nil, display),
              "object has no '%s' string", k)
            ok = false
          end
        end
        local meta = obj.metadata
        if not fields.is_map(meta) or type(meta.name) ~= "string" then
          d:error(diag.pos(obj, meta ~= nil and "metadata" or nil, display),
            "object has no 'metadata.name'")
          ok = false
        end
        if ok then objects[#objects + 1] = obj end
      end
    end
  end
  return objects
end

local function read_manifests(d, doc, model, template_dir_display)
  local function reader(entry)
    fields.check_keys(d, entry, MANIFEST_SCHEMA, " in a manifest")
    local name = fields.string(d, entry, "name")
    local path = fields.string(d, entry, "path")
    local pos = diag.pos(entry, "name")
    if not name then
      if not fields.present(entry, "name") then d:error(diag.pos(entry), "manifest has no 'name'") end
      return nil
    end
    if not name:match("^[%w_%-]+$") then
      d:error(pos, "manifest name '%s' may only have letters, digits, '-' and '_'", name)
      return nil
    end
    if not path then
      if not fields.present(entry, "path") then d:error(pos, "manifest '%s' has no 'path'", name) end
      return nil
    end
    local abs = path:sub(1, 1) == "/" and normalize(path) or normalize(model.dir .. "/" .. path)
    local display = path:sub(1, 1) == "/" and path
      or (template_dir_display == "." and path or template_dir_display .. "/" .. path)
    local objects = read_manifest_objects(d, display, abs, entry)
    if not objects then return nil end
    return {name = name, path = abs, objects = objects, pos = pos}
  end
  return read_named_list(d, doc, "manifests", reader, "manifest")
end

-- ---- hooks --------------------------------------------------------------------------------

-- The task kinds a hooks file defines (the keys of its `tasks`).
local function kinds_in_file(d, hooks_path, hooks_pos)
  local ok, hooks_mod = pcall(require, "moonship.hooks")
  if not ok then return {} end
  local hooks, err = hooks_mod.load(hooks_path)
  if not hooks then
    d:error(hooks_pos, "hooks file: %s", tostring(err))
    return {}
  end
  return hooks:custom_kinds()
end

-- The custom task kinds. opts.custom_kinds (a set, or fn(hooks_path) -> set) describes the
-- caller's hooks file; when the caller gave no hooks file and the template names one, that
-- file's kinds count too.
local function custom_kinds_for(d, opts, hooks_path, hooks_pos, from_template)
  local given = opts.custom_kinds
  if type(given) == "function" then
    if not hooks_path then return {} end
    local kinds, err = given(hooks_path)
    if not kinds then d:error(hooks_pos, "%s", tostring(err)); return {} end
    return kinds
  end
  local kinds = {}
  for k, v in pairs(given or {}) do kinds[k] = v end
  if hooks_path and (from_template or given == nil) then
    for k, v in pairs(kinds_in_file(d, hooks_path, hooks_pos)) do kinds[k] = v end
  end
  return kinds
end

-- ---- load ---------------------------------------------------------------------------------

local function result(d, model)
  local errors = d:sorted_errors()
  local warnings = d:sorted_warnings()
  if #errors > 0 then return nil, errors, warnings end
  return model, warnings
end

function M.load(path, opts)
  assert(type(path) == "string", "template.load: path must be a string")
  opts = opts or {}
  local d = diag.collector()
  local text, err = read_text(path)
  if not text then
    d:error({file = path, line = 1, col = 1}, "cannot read the template: %s", err)
    return result(d)
  end
  local docs, yerr = yaml.load(text, {filename = path})
  if not docs then
    yaml_error(d, yerr, path)
    return result(d)
  end
  local doc
  for _, candidate in ipairs(docs) do
    if candidate ~= NULL then
      if doc then
        d:warning(diag.pos(candidate, nil, path), "the template has more than one YAML document; only the first is read")
        break
      end
      doc = candidate
    end
  end
  if not fields.is_map(doc) then
    d:error(diag.pos(doc, nil, path), "the template must be a mapping of keys (app, services, workflows, ...)")
    return result(d)
  end

  local abs_path = absolute(path)
  local display_dir = dirname(path)
  local model = {file = path, dir = dirname(abs_path), env = opts.env,
    by_name = {services = {}, jobs = {}, manifests = {}}}
  fields.check_keys(d, doc, TOP_SCHEMA, "")
  check_environment_templates(d, doc)

  -- Names and the values ${...} expands to.
  local app = fields.string(d, doc, "app", true)
  if app and not label_value_ok(app) then
    d:error(diag.pos(doc, "app"), "app name '%s' is not a valid Kubernetes label value (letters, digits, '-', '_', '.', at most 63 characters)", app)
  end
  model.app = app or app_from_path(abs_path)
  model.context = fields.string(d, doc, "context")
  model.domain = opts.domain or fields.string(d, doc, "domain")
  model.env_id = opts.env or "local"
  model.namespace = opts.namespace or (opts.env and dns_label(model.app .. "-" .. opts.env)) or "default"
  local vars = {env_id = model.env_id, app = model.app, namespace = model.namespace,
    domain = model.domain}
  read_parameters(d, doc, vars)

  -- Services and jobs.
  local resources = units.read_resources(d, doc)
  local static = {}
  local services, services_by_name = read_named_list(d, doc, "services", function(entry)
    local svc, static_name, pos = units.read_service(d, entry, {resources = resources})
    if svc == "static" then static[static_name] = true end
    return svc, static_name, pos
  end, "service")
  check_k8s_names(d, services, "services")
  local service_names = {}
  for i, s in ipairs(services) do service_names[i] = s.name end
  local jobs, jobs_by_name = read_named_list(d, doc, "jobs", function(entry)
    return units.read_job(d, entry, {resources = resources, services = services_by_name,
      service_names = service_names, static = static})
  end, "job")
  check_k8s_names(d, jobs, "jobs")
  model.services, model.jobs = services, jobs
  model.by_name.services, model.by_name.jobs = services_by_name, jobs_by_name

  -- depends_on names only matter for the order check, so an unknown one is a warning.
  for _, svc in ipairs(services) do
    for i, dep in ipairs(svc.depends_on) do
      if not services_by_name[dep] and not static[dep] then
        d:warning(diag.pos(svc.depends_on_list, i), "service '%s' depends on unknown service '%s'%s",
          svc.name, dep, diag.did_you_mean(dep, service_names))
      end
    end
  end

  -- The environment variables file beside the template.
  local env_display = (display_dir == "." and "" or display_dir .. "/") .. envs.FILENAME
  local env_file = envs.read_file(d, model.dir .. "/" .. envs.FILENAME, env_display)
  if env_file then
    model.env_file = env_display
    local job_names = {}
    for _, j in ipairs(jobs) do job_names[#job_names + 1] = j.name end
    for name, pos in pairs(env_file.services_pos) do
      if not services_by_name[name] and not static[name] and not jobs_by_name[name] then
        d:warning(pos, "environment variables for unknown service '%s'%s", name,
          diag.did_you_mean(name, service_names))
      end
    end
  end
  local placeholder_warned = {}
  for _, key in ipairs {"services", "jobs"} do
    if fields.is_list(doc[key]) then check_unit_placeholders(d, doc[key], vars, placeholder_warned) end
  end
  assemble_env(d, model, env_file, vars, services, jobs, placeholder_warned)
  for _, u in ipairs(services) do substitute_unit(u, vars) end
  for _, u in ipairs(jobs) do substitute_unit(u, vars) end

  -- Raw manifests (ext).
  local manifests, manifests_by_name = read_manifests(d, doc, model, display_dir)
  model.manifests, model.by_name.manifests = manifests, manifests_by_name

  -- The hooks file: the caller's, else the template's `hooks` (relative to the template),
  -- else hooks.lua beside the template when there is one.
  local hooks_pos = {file = path, line = 1, col = 1}
  local hooks_rel = fields.string(d, doc, "hooks")
  if opts.hooks then
    model.hooks_path = absolute(opts.hooks)
  elseif hooks_rel then
    hooks_pos = diag.pos(doc, "hooks")
    model.hooks_path = hooks_rel:sub(1, 1) == "/" and normalize(hooks_rel)
      or normalize(model.dir .. "/" .. hooks_rel)
  elseif exists(model.dir .. "/" .. M.DEFAULT_HOOKS) then
    model.hooks_path = model.dir .. "/" .. M.DEFAULT_HOOKS
    hooks_pos = {file = model.hooks_path, line = 1, col = 1}
  end
  if model.hooks_path and not exists(model.hooks_path) then
    d:error(hooks_pos, "hooks file '%s' not found", opts.hooks or hooks_rel)
    model.hooks_path = nil
  end
  local custom_kinds = custom_kinds_for(d, opts, model.hooks_path, hooks_pos, opts.hooks == nil)

  -- Workflows.
  local sections = {}
  for _, kind in ipairs(TASK_SECTIONS) do
    if fields.is_list(doc[kind]) then
      local by = {}
      for _, entry in ipairs(doc[kind]) do
        if fields.is_map(entry) and type(entry.name) == "string" then by[entry.name] = entry end
      end
      sections[kind] = by
    end
  end
  local skipped = {}
  for name in pairs(static) do skipped["services." .. name] = "service '" .. name .. "' is a static site (unsupported)" end
  local job_names, manifest_names = {}, {}
  for i, j in ipairs(jobs) do job_names[i] = j.name end
  for i, m in ipairs(manifests) do manifest_names[i] = m.name end
  local wf_list = fields.list(d, doc, "workflows")
  if not fields.present(doc, "workflows") then
    d:warning(diag.pos(doc, nil, path), "the template has no workflows")
  end
  model.workflows, model.workflow_by_name = workflows.build(d, wf_list or {}, {
    services = services_by_name, jobs = jobs_by_name, manifests = manifests_by_name,
    service_names = service_names, job_names = job_names, manifest_names = manifest_names,
    skipped = skipped, custom_kinds = custom_kinds, sections = sections,
  })

  for _, u in ipairs(services) do finish_unit(u) end
  for _, u in ipairs(jobs) do finish_unit(u) end
  return result(d, model)
end

-- The workflow of that name, or nil and "unknown workflow 'x' (did you mean 'y'?)".
M.workflow = workflows.find

-- "file:line:col: warning: message" / "...: error: message" for a CLI.
function M.format_message(m)
  return fmt("%s:%d:%d: %s: %s", m.file, m.line, m.col, m.severity, m.message)
end

return M
