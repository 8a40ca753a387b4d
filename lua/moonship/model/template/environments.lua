-- environment_templates: ReleaseHub's per-environment overrides (ephemeral vs permanent). Every
-- template is checked; the one named by --env is merged into the template's own keys before
-- anything else reads them, so each merged value is read by the usual readers and reported
-- where the environment template wrote it.
local diag = require "moonship.model.template.diag"
local fields = require "moonship.model.template.fields"

local M = {}

-- The top-level keys an environment template may override (the rest are the application's, or
-- belong to no single environment).
M.SCHEMA = {
  known = fields.set {"name", "resources", "services", "jobs", "hostnames", "rules", "ingress",
    "shared_volumes", "cron_jobs", "service_accounts", "charts", "parameters", "domain"},
  unsupported = fields.set {"datasets", "app_imports", "infrastructure", "builds", "workflows",
    "node_selector", "s3_volumes", "sidecars", "notifications", "development_environment"},
}

-- Lists whose entries are merged by a key instead of replaced as a whole.
local MERGE_BY = {
  services = "name", jobs = "name", shared_volumes = "name", cron_jobs = "name",
  service_accounts = "name", charts = "name", parameters = "name", envs = "key",
}

local function is_map(v) return fields.is_map(v) end

local merge

-- Merges the entries of a list by their `by` field: an entry with the name of one of the
-- template's is merged into it, any other is added.
local function merge_list(base, over, by)
  local index = {}
  for i, entry in ipairs(base) do
    if is_map(entry) and entry[by] ~= nil then index[entry[by]] = i end
  end
  for j, entry in ipairs(over) do
    local i = is_map(entry) and entry[by] ~= nil and index[entry[by]]
    if i and is_map(base[i]) then
      merge(base[i], entry, nil, by)
    else
      base[#base + 1] = entry
      diag.move(base, #base, over, j)
    end
  end
end

-- Merges over into base in place: mappings key by key, lists of named entries by name (envs
-- by key), anything else replaced. `same` is the key that matched an entry to the template's
-- (kept where the template wrote it, so the entry is reported there).
function merge(base, over, parent_key, same)
  for k, v in pairs(over) do
    local old = base[k]
    if k == same then goto continue end
    local by = MERGE_BY[k]
    if by and fields.is_list(old) and fields.is_list(v) then
      merge_list(old, v, by)
    elseif is_map(old) and is_map(v) and k ~= "hostnames" and parent_key ~= "hostnames" then
      merge(old, v, k)
    else
      base[k] = v
      diag.move(base, k, over, k)
    end
    ::continue::
  end
end

-- Checks every environment template; returns the one named env (or nil).
local function find(d, doc, env)
  local list = fields.list(d, doc, "environment_templates")
  local chosen
  local seen = {}
  for i, t in ipairs(list or {}) do
    if not is_map(t) then
      d:error(diag.pos(list, i), "an environment template must be a mapping {name, ...} (got %s)",
        fields.describe(t))
    else
      local name = fields.string(d, t, "name", true)
      if not name and not fields.present(t, "name") then
        d:error(diag.pos(t), "environment template %d has no 'name'", i)
      end
      fields.check_keys(d, t, M.SCHEMA, name and (" in environment template '" .. name .. "'")
        or " in an environment template")
      if name and seen[name] then
        d:error(diag.pos(t, "name"), "duplicate environment template '%s' (first at %s)", name,
          diag.short_at(seen[name], diag.pos(t, "name")))
      elseif name then
        seen[name] = diag.pos(t, "name")
        if name == env then chosen = t end
      end
    end
  end
  return chosen
end

-- Checks the environment templates and merges the one named env into doc (in place).
-- Returns its name, or nil when env names none.
function M.apply(d, doc, env)
  local chosen = find(d, doc, env)
  if not chosen then return nil end
  local over = {}
  for k, v in pairs(chosen) do
    if k ~= "name" and M.SCHEMA.known[k] then over[k] = v; diag.move(over, k, chosen, k) end
  end
  merge(doc, over)
  return chosen.name
end

return M
