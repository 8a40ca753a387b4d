-- Typed reads of template fields: each reader reports a wrong type as a positioned error and
-- returns nil, so the loader goes on and reports every problem of a file in one pass.
local yaml = require "moonship.yaml"
local json = require "moonship.json"
local diag = require "moonship.model.template.diag"
local duration = require "moonship.duration"

local fmt, tointeger, mtype = string.format, math.tointeger, math.type
local is_array = json.is_array
local NULL = yaml.null

local M = {}

local function is_list(v) return type(v) == "table" and is_array(v) end
local function is_map(v) return type(v) == "table" and not is_array(v) end
M.is_list, M.is_map = is_list, is_map

-- A short description of a YAML value for "(got ...)".
function M.describe(v)
  if v == NULL then return "null" end
  local t = type(v)
  if t == "string" then return fmt("%q", v) end
  if t == "table" then return is_array(v) and "a list" or "a mapping" end
  return tostring(v)
end
local describe = M.describe

-- Whether tbl[key] is present (a null counts as absent: `key:` with no value).
function M.present(tbl, key)
  local v = tbl[key]
  return v ~= nil and v ~= NULL
end

local function type_error(d, tbl, key, what)
  d:error(diag.pos(tbl, key), "'%s' must be %s (got %s)", key, what, describe(tbl[key]))
end
M.type_error = type_error

-- A string; numbers and booleans are accepted as their text when opts.coerce.
function M.string(d, tbl, key, coerce)
  local v = tbl[key]
  if v == nil or v == NULL then return nil end
  if type(v) == "string" then return v end
  if coerce and (type(v) == "number" or type(v) == "boolean") then
    if mtype(v) == "float" and tointeger(v) then return tostring(tointeger(v)) end
    return tostring(v)
  end
  type_error(d, tbl, key, "a string")
  return nil
end

-- A scalar as text, for list items and env values.
function M.scalar_text(v)
  if type(v) == "string" then return v end
  if mtype(v) == "float" and tointeger(v) then return tostring(tointeger(v)) end
  if type(v) == "number" or type(v) == "boolean" then return tostring(v) end
  if v == NULL then return "" end
  return nil
end

-- An integer (ReleaseHub writes many as strings: port: '8080'), within [lo, hi] when given.
function M.integer(d, tbl, key, lo, hi)
  local v = tbl[key]
  if v == nil or v == NULL then return nil end
  local n
  if mtype(v) == "integer" then n = v
  elseif mtype(v) == "float" then n = tointeger(v)
  elseif type(v) == "string" and v:match("^%s*%d+%s*$") then n = tointeger(tonumber(v)) end
  if not n then
    type_error(d, tbl, key, "an integer")
    return nil
  end
  if (lo and n < lo) or (hi and n > hi) then
    if hi then
      d:error(diag.pos(tbl, key), "'%s' must be between %d and %d (got %d)", key, lo, hi, n)
    else
      d:error(diag.pos(tbl, key), "'%s' must be at least %d (got %d)", key, lo, n)
    end
    return nil
  end
  return n
end

function M.boolean(d, tbl, key)
  local v = tbl[key]
  if v == nil or v == NULL then return nil end
  if type(v) == "boolean" then return v end
  type_error(d, tbl, key, "true or false")
  return nil
end

function M.list(d, tbl, key)
  local v = tbl[key]
  if v == nil or v == NULL then return nil end
  if is_list(v) then return v end
  type_error(d, tbl, key, "a list")
  return nil
end

function M.map(d, tbl, key)
  local v = tbl[key]
  if v == nil or v == NULL then return nil end
  if is_map(v) then return v end
  type_error(d, tbl, key, "a mapping")
  return nil
end

-- A list of scalars as strings (command, args, depends_on).
function M.string_list(d, tbl, key)
  local list = M.list(d, tbl, key)
  if not list then return nil end
  local out = {}
  for i, item in ipairs(list) do
    local s = (type(item) ~= "table") and item ~= NULL and M.scalar_text(item)
    if s then
      out[#out + 1] = s
    else
      d:error(diag.pos(list, i), "'%s' must be a list of strings (item %d is %s)", key, i,
        describe(item))
    end
  end
  return out
end

-- A duration in seconds, by the grammar the command line's --timeout reads too
-- (moonship.duration): a number of seconds, or text like "90", "90s", "5m", "1h30m", "1.5h".
function M.duration(d, tbl, key)
  local v = tbl[key]
  if v == nil or v == NULL then return nil end
  if type(v) == "number" or type(v) == "string" then
    local seconds = duration.parse(v)
    if seconds then return math.tointeger(seconds) or seconds end
  end
  type_error(d, tbl, key, "a duration (seconds, or text like \"90s\", \"5m\", \"1h30m\")")
  return nil
end

-- Reports the keys of tbl that the schema does not use. schema = {known = {key=true},
-- unsupported = {key=true}, quiet = {key=true}, strict = bool}: known keys are read by the
-- caller, unsupported ones are warned "unsupported, ignored", quiet ones are ReleaseHub
-- bookkeeping with no meaning for a deploy; anything else is an unknown key: a warning with a
-- suggestion, or an error when the schema is strict (where a misspelt key would silently
-- change what the deployment does).
function M.check_keys(d, tbl, schema, where_text)
  local keys = {}
  for k in pairs(tbl) do
    if not schema.known[k] and not (schema.quiet and schema.quiet[k]) then keys[#keys + 1] = k end
  end
  if #keys == 0 then return end -- the usual case: nothing to sort, nothing to suggest
  local names = {}
  for k in pairs(schema.known) do names[#names + 1] = k end
  table.sort(names)
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  for _, k in ipairs(keys) do
    local pos = diag.pos(tbl, k)
    if schema.unsupported and schema.unsupported[k] then
      d:warning(pos, "unsupported key '%s'%s, ignored", k, where_text)
    elseif schema.strict then
      d:error(pos, "unknown key '%s'%s%s", tostring(k), where_text,
        diag.did_you_mean(tostring(k), names))
    else
      d:warning(pos, "unknown key '%s'%s, ignored%s", tostring(k), where_text,
        diag.did_you_mean(tostring(k), names))
    end
  end
end

-- A set from a list of names.
function M.set(list)
  local s = {}
  for _, k in ipairs(list) do s[k] = true end
  return s
end

return M
