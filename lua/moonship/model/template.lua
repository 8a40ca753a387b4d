-- Application templates (ReleaseHub-compatible, DESIGN.md §2): loads a template and the
-- environment variables file beside it, checks everything before anything is deployed, and
-- builds the model the engine, `plan` and `render` consume.
--   template.find(dir) -> path | nil, message
--   template.load(path [, opts]) -> model, warnings | nil, errors, warnings
--     opts = {env=, namespace=, domain=, hooks= (path), custom_kinds = {kind=true} | fn(hooks_path),
--             images = {name -> image} (--image)}
--     --env also picks the environment template of that name, merged over the template.
--     The hooks file is opts.hooks, else the template's `hooks` key, else hooks.lua beside the
--     template; custom task kinds are the caller's set plus, when the caller named no hooks file,
--     the keys of that file's `tasks`.
--     Defaults: env_id = opts.env or "local"; namespace = opts.namespace, else "<app>-<env>"
--     with --env, else "default"; app = the `app` key, else the directory's name.
--   template.workflow(model, name) -> workflow | nil, message
--   template.undeployable(model, workflow) -> {message...}: what stops a deploy of it
--   template.parse_images({"NAME=REF", ...}) -> {name -> ref} | nil, message
-- Errors and warnings are lists of {file=, line=, col=, message=, severity=, text=} whose
-- tostring is "file:line:col: message".
local yaml = require "moonship.yaml"
local fs = require "moonship.fs"
local diag = require "moonship.model.template.diag"
local fields = require "moonship.model.template.fields"
local envs = require "moonship.model.template.env"
local units = require "moonship.model.template.units"
local workflows = require "moonship.model.template.workflows"
local environments = require "moonship.model.template.environments"
local ingress = require "moonship.model.template.ingress"
local sections = require "moonship.model.template.sections"

local fmt = string.format
local NULL = yaml.null

local M = {}

-- Where a template is looked for in a directory, in order.
M.DEFAULT_PATHS = {".release/application_template.yaml", "moonship.yaml"}
-- The hooks file used when neither the caller nor the template names one.
M.DEFAULT_HOOKS = "hooks.lua"

local TOP_SCHEMA = {
  known = fields.set {"app", "domain", "resources", "services", "jobs", "workflows", "hooks",
    "manifests", "prune", "parameters", "environment_templates", "context", "hostnames", "ingress", "rules",
    "shared_volumes", "cron_jobs", "service_accounts", "charts", "builds", "infrastructure"},
  -- ReleaseHub bookkeeping: how the platform tracks the app, nothing to deploy.
  quiet = fields.set {"auto_deploy", "repo_name", "tracking_branch", "tracking_tag", "mode",
    "git_repo", "repo_id"},
  unsupported = fields.set {"app_imports", "sidecars", "notifications",
    "workspaces", "s3_volumes", "datasets", "routes", "development_environment",
    "execution_type", "node_selector", "default_instance_type"},
}
-- A YAML file with none of these is not an application template (a docker-compose or a
-- ReleaseHub application export, say).
local TEMPLATE_KEYS = {"services", "jobs", "workflows", "manifests"}
-- Top-level sections whose entries a task of a hooks-defined kind of the same name gets as its
-- spec (infrastructure.vpc -> infrastructure: [{name: vpc, ...}]; charts when the hooks file
-- installs charts its own way).
local TASK_SECTIONS = {"charts", "infrastructure"}

local PARAMETER_SCHEMA = {known = fields.set {"name", "default"},
  quiet = fields.set {"type", "description", "options", "optional"}}
local MANIFEST_SCHEMA = {known = fields.set {"name", "path"}}

-- ---- paths --------------------------------------------------------------------------------

M.absolute = fs.absolute

-- The path of the template in dir (default "."): .release/application_template.yaml, then
-- moonship.yaml.
function M.find(dir)
  dir = dir or "."
  for _, rel in ipairs(M.DEFAULT_PATHS) do
    local path = fs.join(dir, rel)
    if fs.exists(path) then return path end
  end
  return nil, fmt("no template in %s (looked for %s)", dir == "." and "the current directory" or dir,
    table.concat(M.DEFAULT_PATHS, ", "))
end

-- The template a command reads: the path given, the template in a directory given, or the one
-- in the current directory. nil and a message when there is none.
function M.resolve(given)
  if given == nil then return M.find(".") end
  if fs.is_dir(given) then return M.find(given) end
  return given
end

-- ---- names --------------------------------------------------------------------------------

-- A DNS label from any text: the app name when the template has none, and namespaces.
local function dns_label(text)
  local s = text:lower():gsub("[^a-z0-9%-]", "-"):gsub("^[^a-z0-9]+", ""):gsub("%-+$", "")
  if #s > 63 then s = s:sub(1, 63):gsub("%-+$", "") end
  return s ~= "" and s or "app"
end
M.dns_label = dns_label

-- The app name from the template's directory (absolute): the repository holding .release/, or
-- that directory.
local function app_from_dir(dir)
  if dir:match("/%.release$") then dir = fs.dirname(dir) end
  return dns_label(fs.basename(dir))
end

local function label_value_ok(v)
  return #v >= 1 and #v <= 63 and v:match("^[A-Za-z0-9_.%-]+$") ~= nil
    and v:match("^[A-Za-z0-9]") ~= nil and v:match("[A-Za-z0-9]$") ~= nil
end

-- ---- reading ------------------------------------------------------------------------------

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
-- Each service with a hostname gives <SERVICE>_INGRESS_HOST and <SERVICE>_INGRESS_URL, as
-- ReleaseHub sets them.
local function release_vars(model)
  return ingress.release_vars(model, {RELEASE_ENV_ID = model.env_id, RELEASE_APP_NAME = model.app,
    RELEASE_NAMESPACE = model.namespace, RELEASE_DOMAIN = model.domain})
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
      envs.set(list, e.name, value, e.pos, e.secret)
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
  for _, job in ipairs(jobs) do -- jobs, then cron jobs
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

-- Strips the loader's working fields and gives env entries the model's {name, value} shape; the
-- names of the variables marked `secret: true` go to unit.secret_env (a set, nil when none), so
-- that what shows values (moonship diff) can hide theirs.
local function finish_unit(unit)
  local env, secret = {}, nil
  for i, e in ipairs(unit.env or {}) do
    env[i] = {name = e.name, value = e.value}
    if e.secret then
      secret = secret or {}
      secret[e.name] = true
    end
  end
  unit.env, unit.secret_env = env, secret
  unit.own_env, unit.base_env, unit.own_cpu, unit.own_memory, unit.base = nil, nil, nil, nil, nil
  unit.depends_on_list = nil
end

-- ---- manifests (ext) ----------------------------------------------------------------------

local function read_manifest_objects(d, display, abs, entry)
  local text, err = fs.read(abs)
  if not text then
    d:error(diag.pos(entry, "path"), "manifest '%s': cannot read %s: %s", entry.name, display, err)
    return nil
  end
  local docs = d:load_yaml(text, display)
  if not docs then return nil end
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
    local abs = fs.normalize(fs.join(model.dir, path))
    local display = fs.join(template_dir_display, path)
    local objects = read_manifest_objects(d, display, abs, entry)
    if not objects then return nil end
    return {name = name, path = abs, objects = objects, pos = pos}
  end
  return read_named_list(d, doc, "manifests", reader, "manifest")
end

-- ---- hooks --------------------------------------------------------------------------------

-- Each problem of a hooks file that did not load, where the file has it (its own line).
local function hooks_problems(d, hooks_pos, err, problems)
  if not problems then d:error(hooks_pos, "%s", tostring(err)) return end
  for _, p in ipairs(problems) do d:error({file = p.file, line = p.line}, "%s", p.message) end
end

-- The task kinds a hooks file defines (the keys of its `tasks`).
local function kinds_in_file(d, hooks_path, hooks_display, hooks_pos)
  local ok, hooks_mod = pcall(require, "moonship.run.hooks")
  if not ok then return {} end
  local hooks, err, problems = hooks_mod.load(hooks_path, hooks_display)
  if not hooks then
    hooks_problems(d, hooks_pos, err, problems)
    return {}
  end
  return hooks:custom_kinds()
end

-- The custom task kinds. opts.custom_kinds (a set, or fn(hooks_path, display) -> set | nil,
-- message, problems: the caller loads the file the template resolved) describes the caller's
-- hooks file; when the caller gave no hooks file and the template names one, that file's kinds
-- count too.
local function custom_kinds_for(d, opts, hooks_path, hooks_display, hooks_pos, from_template)
  local given = opts.custom_kinds
  if type(given) == "function" then
    if not hooks_path then return {} end
    local kinds, err, problems = given(hooks_path, hooks_display)
    if not kinds then hooks_problems(d, hooks_pos, err, problems); return {} end
    return kinds
  end
  local kinds = {}
  for k, v in pairs(given or {}) do kinds[k] = v end
  if hooks_path and (from_template or given == nil) then
    for k, v in pairs(kinds_in_file(d, hooks_path, hooks_display, hooks_pos)) do kinds[k] = v end
  end
  return kinds
end

-- ---- load: the steps, in order ------------------------------------------------------------

local function names_of(list)
  local out = {}
  for i, u in ipairs(list) do out[i] = u.name end
  return out
end

-- Jobs, then cron jobs: the units that run to completion.
local function jobs_and_cron_jobs(model)
  local all = table.move(model.jobs, 1, #model.jobs, 1, {})
  return table.move(model.cron_jobs, 1, #model.cron_jobs, #all + 1, all)
end

-- The template's first YAML document, which must be a mapping; nil when there is none that
-- can be read (d says why).
local function read_document(d, path)
  local text, err = fs.read(path)
  if not text then
    d:error({file = path, line = 1, col = 1}, "cannot read the template: %s", err)
    return nil
  end
  local docs = d:load_yaml(text, path)
  if not docs then return nil end
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
    return nil
  end
  return doc
end

-- A mapping with none of TEMPLATE_KEYS is some other YAML file: the error lists the keys it
-- has, in the order written.
local function check_is_template(d, doc, path)
  for _, k in ipairs(TEMPLATE_KEYS) do
    if doc[k] ~= nil then return true end
  end
  local keys = diag.keys_in_order(doc)
  d:error(diag.pos(doc, nil, path), "not an application template: it has none of the keys %s (found: %s)",
    table.concat(TEMPLATE_KEYS, ", "), #keys > 0 and table.concat(keys, ", ") or "no keys")
  return false
end

-- The model's names (app, namespace, env_id, ...); returns the values ${...} expands to.
local function read_names(d, doc, model, opts)
  local app = fields.string(d, doc, "app", true)
  if app and not label_value_ok(app) then
    d:error(diag.pos(doc, "app"), "app name '%s' is not a valid Kubernetes label value (letters, digits, '-', '_', '.', at most 63 characters)", app)
  end
  model.app = app or app_from_dir(model.dir)
  model.context = fields.string(d, doc, "context")
  -- prune (ext): every deploy of a workflow prunes after it succeeded, as deploy --prune.
  model.prune = fields.boolean(d, doc, "prune") or false
  model.domain = opts.domain or fields.string(d, doc, "domain")
  model.env_id = opts.env or "local"
  model.namespace = opts.namespace or (opts.env and dns_label(model.app .. "-" .. opts.env)) or "default"
  local vars = {env_id = model.env_id, app = model.app, namespace = model.namespace,
    domain = model.domain}
  read_parameters(d, doc, vars)
  return vars
end

-- Shared volumes and service accounts, which services and jobs name: returns them by name,
-- {shared =, accounts =}.
local function read_volumes_and_accounts(d, doc, model)
  local shared, shared_by_name = read_named_list(d, doc, "shared_volumes", function(entry)
    return sections.read_volume(d, entry)
  end, "shared volume")
  check_k8s_names(d, shared, "shared volumes")
  local accounts, accounts_by_name = read_named_list(d, doc, "service_accounts", function(entry)
    return sections.read_account(d, entry)
  end, "service account")
  check_k8s_names(d, accounts, "service accounts")
  model.shared_volumes, model.service_accounts = shared, accounts
  return {shared = shared_by_name, accounts = accounts_by_name}
end

-- Services, jobs and cron jobs; named = {shared =, accounts =}: the shared volumes and service
-- accounts by name. Returns the static sites among the services (unsupported: read, then left
-- out), as a set and in the order written.
local function read_units(d, doc, model, images, named)
  local resources = units.read_resources(d, doc)
  local static = {}
  local services, services_by_name = read_named_list(d, doc, "services", function(entry)
    local svc, static_name, pos = units.read_service(d, entry, {resources = resources, images = images,
      shared = named.shared, accounts = named.accounts})
    if svc == "static" then static[static_name] = true end
    return svc, static_name, pos
  end, "service")
  check_k8s_names(d, services, "services")
  local static_names = {}
  for _, entry in ipairs(fields.is_list(doc.services) and doc.services or {}) do
    if fields.is_map(entry) and static[entry.name] then static_names[#static_names + 1] = entry.name end
  end
  local unit_ctx = {resources = resources, services = services_by_name, service_names = names_of(services),
    static = static, images = images, accounts = named.accounts}
  local jobs, jobs_by_name = read_named_list(d, doc, "jobs", function(entry)
    return units.read_job(d, entry, unit_ctx)
  end, "job")
  check_k8s_names(d, jobs, "jobs")
  local cron_ctx = setmetatable({cron = true}, {__index = unit_ctx})
  local cron_jobs, cron_by_name = read_named_list(d, doc, "cron_jobs", function(entry)
    return units.read_job(d, entry, cron_ctx)
  end, "cron job")
  check_k8s_names(d, cron_jobs, "cron jobs")
  model.services, model.jobs, model.cron_jobs = services, jobs, cron_jobs
  model.by_name.services, model.by_name.jobs, model.by_name.cron_jobs = services_by_name, jobs_by_name, cron_by_name
  return static, static_names
end

-- --image names a service or a job of the template.
local function check_images(d, doc, model, images)
  local targets = names_of(model.services)
  for _, j in ipairs(model.jobs) do targets[#targets + 1] = j.name end
  local given = {}
  for name in pairs(images) do given[#given + 1] = name end
  table.sort(given)
  for _, name in ipairs(given) do
    if not model.by_name.services[name] and not model.by_name.jobs[name] then
      d:error(diag.pos(doc, fields.is_list(doc.services) and "services" or nil, model.file),
        "--image %s=%s: the template has no service or job '%s'%s", name, images[name], name,
        diag.did_you_mean(name, targets))
    end
  end
end

-- depends_on names only matter for the order check, so an unknown one is a warning.
local function check_depends_on(d, model, static)
  local service_names = names_of(model.services)
  for _, svc in ipairs(model.services) do
    for i, dep in ipairs(svc.depends_on) do
      if not model.by_name.services[dep] and not static[dep] then
        d:warning(diag.pos(svc.depends_on_list, i), "service '%s' depends on unknown service '%s'%s",
          svc.name, dep, diag.did_you_mean(dep, service_names))
      end
    end
  end
end

-- Hostnames, rules and ingress settings: an Ingress per service with routes.
local function read_routes(d, doc, model, vars, static)
  local routes = ingress.read(d, doc, {vars = vars, services = model.by_name.services, static = static,
    service_names = names_of(model.services)})
  model.ingress_annotations = routes.settings
  for _, svc in ipairs(model.services) do svc.hostnames = routes.by_service[svc.name] end
end

-- The environment variables file beside the template, when there is one.
local function read_env_file(d, model, display_dir, static)
  local display = fs.join(display_dir, envs.FILENAME)
  local env_file = envs.read_file(d, fs.join(model.dir, envs.FILENAME), display)
  if not env_file then return nil end
  model.env_file = display
  local by_name = model.by_name
  for name, pos in pairs(env_file.services_pos) do
    if not by_name.services[name] and not static[name] and not by_name.jobs[name] and not by_name.cron_jobs[name] then
      d:warning(pos, "environment variables for unknown service '%s'%s", name,
        diag.did_you_mean(name, names_of(model.services)))
    end
  end
  return env_file
end

-- Each unit's env (from the file, the unit and the mapping), and ${...} in env, image,
-- command and args.
local function expand_units(d, doc, model, vars, env_file)
  local placeholder_warned = {}
  for _, key in ipairs {"services", "jobs", "cron_jobs"} do
    if fields.is_list(doc[key]) then check_unit_placeholders(d, doc[key], vars, placeholder_warned) end
  end
  local all_jobs = jobs_and_cron_jobs(model)
  assemble_env(d, model, env_file, vars, model.services, all_jobs, placeholder_warned)
  for _, u in ipairs(model.services) do substitute_unit(u, vars) end
  for _, u in ipairs(all_jobs) do substitute_unit(u, vars) end
end

-- Charts, installed by the built-in charts task kind. Their directories are relative to the
-- repository: the directory holding .release/, else the template's.
local function read_charts(d, doc, model, display_dir)
  local ctx = {repo_dir = model.dir, repo_display = display_dir}
  if model.dir:match("/%.release$") then
    ctx.repo_dir, ctx.repo_display = fs.dirname(model.dir), fs.dirname(display_dir)
  end
  local charts, charts_by_name = read_named_list(d, doc, "charts", function(entry)
    return sections.read_chart(d, entry, ctx)
  end, "chart")
  model.charts, model.by_name.charts = charts, charts_by_name
  for _, c in ipairs(charts) do
    if c.missing then d:warning(c.pos, "%s", c.missing) end
  end
end

local function warn_builds(d, doc)
  if fields.present(doc, "builds") then
    d:warning(diag.pos(doc, "builds"), "'builds' are ReleaseHub's image builds: moonship builds no image (the services' images are deployed as written; --image NAME=REF names another), ignored")
  end
end

-- The hooks file: the caller's, else the template's `hooks` (relative to the template), else
-- hooks.lua beside the template when there is one. Its messages name it as the user would:
-- as given, or beside the template as given. Returns the custom task kinds.
local function resolve_hooks(d, doc, model, opts, display_dir)
  local hooks_pos = {file = model.file, line = 1, col = 1}
  local hooks_rel = fields.string(d, doc, "hooks")
  if opts.hooks then
    model.hooks_path, model.hooks_display = fs.absolute(opts.hooks), opts.hooks
  elseif hooks_rel then
    hooks_pos = diag.pos(doc, "hooks")
    model.hooks_path = fs.normalize(fs.join(model.dir, hooks_rel))
    model.hooks_display = fs.join(display_dir, hooks_rel)
  elseif fs.exists(fs.join(model.dir, M.DEFAULT_HOOKS)) then
    model.hooks_path, model.hooks_display = fs.join(model.dir, M.DEFAULT_HOOKS), fs.join(display_dir, M.DEFAULT_HOOKS)
    hooks_pos = {file = model.hooks_display, line = 1, col = 1}
  end
  if model.hooks_path and not fs.exists(model.hooks_path) then
    d:error(hooks_pos, "hooks file '%s' not found", opts.hooks or hooks_rel)
    model.hooks_path, model.hooks_display = nil, nil
  end
  return custom_kinds_for(d, opts, model.hooks_path, model.hooks_display, hooks_pos, opts.hooks == nil)
end

-- The entries of TASK_SECTIONS by name: a task of a hooks-defined kind gets its entry as spec.
local function task_sections(doc)
  local out = {}
  for _, kind in ipairs(TASK_SECTIONS) do
    if fields.is_list(doc[kind]) then
      local by = {}
      for _, entry in ipairs(doc[kind]) do
        if fields.is_map(entry) and type(entry.name) == "string" then by[entry.name] = entry end
      end
      out[kind] = by
    end
  end
  return out
end

local function read_workflows(d, doc, model, static, static_names, custom_kinds)
  local skipped = {}
  for name in pairs(static) do skipped["services." .. name] = "service '" .. name .. "' is a static site (unsupported)" end
  local wf_list = fields.list(d, doc, "workflows")
  if not fields.present(doc, "workflows") then
    d:warning(diag.pos(doc, nil, model.file), "the template has no workflows")
  end
  local by_name = model.by_name
  model.workflows, model.workflow_by_name = workflows.build(d, wf_list or {}, {
    services = by_name.services, jobs = by_name.jobs, manifests = by_name.manifests,
    cron_jobs = by_name.cron_jobs, charts = by_name.charts,
    service_names = names_of(model.services), static_names = static_names, job_names = names_of(model.jobs),
    manifest_names = names_of(model.manifests), cron_job_names = names_of(model.cron_jobs),
    chart_names = names_of(model.charts),
    skipped = skipped, custom_kinds = custom_kinds, sections = task_sections(doc),
    has_hooks = model.hooks_path ~= nil,
  })
end

-- A cron job is deployed only by a workflow that names it.
local function check_cron_jobs_named(d, model)
  local named = {}
  for _, wf in ipairs(model.workflows) do
    for _, step in ipairs(wf.steps) do
      for _, t in ipairs(step.tasks) do named[t.id] = true end
    end
  end
  for _, c in ipairs(model.cron_jobs) do
    if not named["cron_jobs." .. c.name] then
      d:warning(c.pos, "cron job '%s' is in no workflow: name 'cron_jobs.%s' (or cron_jobs.all) in a step to deploy it",
        c.name, c.name)
    end
  end
end

-- A volume that pods of more than one service mount must be mountable on several nodes.
local function set_volume_access(d, model)
  local mounted = {}
  for _, svc in ipairs(model.services) do
    local mine = {}
    for _, v in ipairs(svc.volumes) do
      if v.shared and not mine[v.shared.name] then
        mine[v.shared.name] = true
        mounted[v.shared.name] = (mounted[v.shared.name] or 0) + 1
      end
    end
  end
  for _, v in ipairs(model.shared_volumes) do
    if not mounted[v.name] then
      d:warning(v.pos, "shared volume '%s' is mounted by no service, so no claim is made for it", v.name)
    end
    v.access_mode = (mounted[v.name] or 0) > 1 and "ReadWriteMany" or "ReadWriteOnce"
  end
end

local function result(d, model)
  local errors = d:sorted_errors()
  local warnings = d:sorted_warnings()
  if #errors > 0 then return nil, errors, warnings end
  return model, warnings
end

-- ---- load ---------------------------------------------------------------------------------

function M.load(path, opts)
  assert(type(path) == "string", "template.load: path must be a string")
  opts = opts or {}
  local d = diag.collector()
  local doc = read_document(d, path)
  if not doc or not check_is_template(d, doc, path) then return result(d) end

  local model = {file = path, dir = fs.dirname(fs.absolute(path)), env = opts.env,
    by_name = {services = {}, jobs = {}, manifests = {}, cron_jobs = {}, charts = {}}}
  local display_dir = fs.dirname(path) -- the template's directory as the user wrote it
  -- The environment template named by --env, merged over the template before it is read.
  model.environment_template = environments.apply(d, doc, opts.env)
  fields.check_keys(d, doc, TOP_SCHEMA, "")
  local vars = read_names(d, doc, model, opts)

  local images = opts.images or {}
  local named = read_volumes_and_accounts(d, doc, model)
  local static, static_names = read_units(d, doc, model, images, named)
  check_images(d, doc, model, images)
  check_depends_on(d, model, static)
  read_routes(d, doc, model, vars, static)
  local env_file = read_env_file(d, model, display_dir, static)
  expand_units(d, doc, model, vars, env_file)
  model.manifests, model.by_name.manifests = read_manifests(d, doc, model, display_dir) -- (ext)
  read_charts(d, doc, model, display_dir)
  warn_builds(d, doc)

  local custom_kinds = resolve_hooks(d, doc, model, opts, display_dir)
  read_workflows(d, doc, model, static, static_names, custom_kinds)
  check_cron_jobs_named(d, model)
  set_volume_access(d, model)

  for _, u in ipairs(model.services) do finish_unit(u) end
  for _, u in ipairs(jobs_and_cron_jobs(model)) do finish_unit(u) end
  return result(d, model)
end

-- What stops a deploy of workflow: services built by ReleaseHub without --image (and jobs
-- from them), charts whose directory is missing. In task order, {text = "file:line:col:
-- error: <task>: <why>", warning = the load's "file:line:col: warning: <why>"}.
function M.undeployable(model, wf)
  local out = {}
  for _, step in ipairs(wf.steps) do
    for _, task in ipairs(step.tasks) do
      local def = model.by_name[task.kind] and model.by_name[task.kind][task.name]
      local why = def and (def.needs_image or def.missing)
      if why then
        local pos = def.pos
        local text = fmt("%s: %s", task.id, why)
        if task.kind ~= "services" and def.from_services and def.needs_image then
          text = fmt("%s runs service '%s' (from_services): %s", task.id, def.from_services, why)
        end
        local at = fmt("%s:%d:%d", pos.file, pos.line, pos.col)
        out[#out + 1] = {text = fmt("%s: error: %s", at, text), warning = fmt("%s: warning: %s", at, why)}
      end
    end
  end
  return out
end

-- A workflow of one step with every service, job and cron job of the template, for what asks
-- about all of them (render without -w).
function M.every_task(model)
  local tasks = {}
  for _, kind in ipairs {"services", "jobs", "cron_jobs"} do
    for _, u in ipairs(model[kind]) do tasks[#tasks + 1] = {id = kind .. "." .. u.name, kind = kind, name = u.name} end
  end
  return {name = "*", steps = {{name = "*", tasks = tasks}}}
end

-- --image NAME=REF values -> {name -> ref}, or nil and what is wrong.
function M.parse_images(list)
  local out = {}
  for _, item in ipairs(list or {}) do
    local name, ref = item:match("^([^=]+)=(.+)$")
    if not name then return nil, fmt("--image must be NAME=REF, like backend=registry.example/backend:1.2 (got '%s')", item) end
    if out[name] then return nil, fmt("--image %s given twice ('%s' and '%s')", name, out[name], ref) end
    out[name] = ref
  end
  return out
end

-- The workflow of that name, or nil and "unknown workflow 'x' (did you mean 'y'?)".
M.workflow = workflows.find

-- "file:line:col: warning: message" / "...: error: message" for a CLI.
function M.format_message(m)
  return fmt("%s: %s: %s", diag.at(m), m.severity, m.message)
end

return M
