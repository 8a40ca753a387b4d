-- Environment variables of a template: the ReleaseHub environment_variables.yaml beside it
-- (defaults, per-service lists, mapping), the template's own envs, and the ${...} substitution.
local yaml = require "moonship.yaml"
local fs = require "moonship.fs"
local diag = require "moonship.model.template.diag"
local fields = require "moonship.model.template.fields"

local M = {}

M.FILENAME = "environment_variables.yaml"

local FILE_SCHEMA = {known = fields.set {"defaults", "services", "mapping"}}
local PAIR_SCHEMA = {known = fields.set {"key", "value"}, quiet = fields.set {"secret"}}

-- Kubernetes accepts these names for environment variables.
local function valid_name(name)
  return name:match("^[%-%._%a][%-%._%w]*$") ~= nil
end

-- Reads a list of {key, value} entries into {{name=, value=, pos=, secret=}}; check_names for env
-- vars. secret: the entry says `secret: true` (ReleaseHub's mark of a secret value).
local function read_pairs(d, list, what, check_names)
  local out = {}
  for i, entry in ipairs(list) do
    if not fields.is_map(entry) then
      d:error(diag.pos(list, i), "%s: each entry must be a mapping {key, value} (got %s)", what,
        fields.describe(entry))
    else
      fields.check_keys(d, entry, PAIR_SCHEMA, " in " .. what)
      local name = fields.string(d, entry, "key")
      if not name and not fields.present(entry, "key") then
        d:error(diag.pos(entry), "%s: entry has no 'key'", what)
      end
      local value = entry.value
      local text = fields.scalar_text(value)
      if value ~= nil and text == nil then
        fields.type_error(d, entry, "value", "a string")
      end
      if name and check_names and not valid_name(name) then
        d:error(diag.pos(entry, "key"), "%s: '%s' is not a valid environment variable name", what, name)
      elseif name then
        out[#out + 1] = {name = name, value = text or "", pos = diag.pos(entry, "value"),
                         secret = entry.secret == true or nil}
      end
    end
  end
  return out
end
M.read_pairs = read_pairs

-- Reads `env: {NAME: value}` (our extension) into {{name=, value=, pos=}}.
function M.read_map(d, map, what, check_names)
  -- In the order written: each key's position is looked up once, not at every comparison
  -- (keys of a table that was not loaded from YAML come last, by name).
  local names, rank = {}, {}
  for k in pairs(map) do
    names[#names + 1] = k
    local _, line, col = diag.where(map, k)
    rank[k] = line and line * 2 ^ 32 + col or math.huge
  end
  table.sort(names, function(a, b)
    if rank[a] ~= rank[b] then return rank[a] < rank[b] end
    return a < b
  end)
  local out = {}
  for _, name in ipairs(names) do
    local text = fields.scalar_text(map[name])
    if check_names and not valid_name(name) then
      d:error(diag.pos(map, name), "%s: '%s' is not a valid environment variable name", what, name)
    elseif text == nil then
      d:error(diag.pos(map, name), "%s: '%s' must be a string (got %s)", what, name,
        fields.describe(map[name]))
    else
      out[#out + 1] = {name = name, value = text, pos = diag.pos(map, name)}
    end
  end
  return out
end

-- Reads environment_variables.yaml: nil when there is none, else
-- {defaults = {...}, services = {name -> {...}}, services_pos = {name -> pos}, mapping = {...}}.
function M.read_file(d, path, display_path)
  local text = fs.read(path)
  if not text then return nil end
  local docs = d:load_yaml(text, display_path)
  if not docs then return nil end
  local result = {defaults = {}, services = {}, services_pos = {}, mapping = {}, file = display_path}
  local doc = docs[#docs]
  if doc == nil or doc == yaml.null then return result end
  if not fields.is_map(doc) then
    d:error(diag.pos(doc, nil, display_path), "the environment variables file must be a mapping")
    return result
  end
  fields.check_keys(d, doc, FILE_SCHEMA, " in the environment variables file")
  local defaults = fields.list(d, doc, "defaults")
  if defaults then result.defaults = read_pairs(d, defaults, "defaults", true) end
  local services = fields.map(d, doc, "services")
  if services then
    for name, list in pairs(services) do
      if list ~= yaml.null then
        if not fields.is_list(list) then
          d:error(diag.pos(services, name), "services.%s: must be a list of {key, value} (got %s)",
            name, fields.describe(list))
        else
          result.services[name] = read_pairs(d, list, "services." .. name, true)
        end
      end
      result.services_pos[name] = diag.pos(services, name)
    end
  end
  local mapping = fields.map(d, doc, "mapping")
  if mapping then
    for _, entry in ipairs(M.read_map(d, mapping, "mapping", true)) do
      result.mapping[#result.mapping + 1] = {name = entry.name, ref = entry.value, pos = entry.pos}
    end
  end
  return result
end

-- Replaces ${name} for the names in vars (env_id, domain, app, namespace, parameters.x);
-- any other ${...} is left alone, since ReleaseHub and shells give those meanings at run time.
function M.substitute(s, vars)
  if type(s) ~= "string" or not s:find("${", 1, true) then return s end
  return (s:gsub("%${([%w_%.%-]+)}", function(name)
    local v = vars[name]
    if v ~= nil then return v end
  end))
end

-- Resolves a mapping value against lookup(name) -> value|nil. ReleaseHub accepts a bare name
-- (RELEASE_ENV_ID), $NAME, ${NAME} and ${NAME:-default}, alone or inside text.
-- Returns the value, or nil and the first name that could not be resolved.
function M.resolve_reference(ref, lookup)
  if ref:match("^[%a_][%w_]*$") then
    local v = lookup(ref)
    if v == nil then return nil, ref end
    return v
  end
  local missing
  local out = ref:gsub("%$(%b{})", function(braced)
    local inner = braced:sub(2, -2)
    local name, default = inner:match("^([%a_][%w_]*):%-(.*)$")
    if name then
      local v = lookup(name)
      if v == nil or v == "" then return default end
      return v
    end
    if inner:match("^[%a_][%w_]*$") then
      local v = lookup(inner)
      if v == nil then missing = missing or inner; return "" end
      return v
    end
  end)
  out = out:gsub("%$([%a_][%w_]*)", function(name)
    local v = lookup(name)
    if v == nil then missing = missing or name; return "" end
    return v
  end)
  if missing then return nil, missing end
  return out
end

-- Each env list's name -> entry index, so that building a list of n variables takes linear
-- time (a scan per variable made a template with 20,000 of them take seconds). Weak: the
-- index goes with its list. Env lists are changed only through M.set.
local index_of = setmetatable({}, {__mode = "k"})

-- Sets name=value in an ordered env list, replacing an earlier definition in place. A variable
-- once marked secret stays secret when a later definition replaces its value.
function M.set(list, name, value, pos, secret)
  local index = index_of[list]
  if not index then
    index = {}
    for _, e in ipairs(list) do index[e.name] = index[e.name] or e end
    index_of[list] = index
  end
  local e = index[name]
  if e then
    e.value, e.pos, e.secret = value, pos, e.secret or secret or nil
    return
  end
  e = {name = name, value = value, pos = pos, secret = secret or nil}
  list[#list + 1] = e
  index[name] = e
end

function M.copy(list)
  local out = {}
  for i, e in ipairs(list) do out[i] = {name = e.name, value = e.value, pos = e.pos, secret = e.secret} end
  return out
end

return M
