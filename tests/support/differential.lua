-- Differential testing of kubesim against kube-apiserver: the same request goes to both, and
-- what a client reads back is normalised (what legitimately differs between two servers:
-- uids, resourceVersions, times, generated names, IPs) and compared path by path.
--
--   local differential = require "support.differential"
--   local side = differential.side(server, "kubesim")    -- server: support.kubesim or .realcluster
--   local code, body, headers = side:request("GET", "/api/v1/namespaces/x/configmaps")
--   side:name("web-6d4cf56db6", "web-<hash>")              -- a generated name and its stand-in
--   local view = side:view {code = code, body = body}      -- normalised
--   local found = differential.compare(view_a, view_b)     -- {["body.metadata.generation"] = "1 | (absent)"}
--   local new, gone = differential.unexpected(found, {["resources.*.storageVersionHash"] = "why"})
local json = require "dkjson"

local M = {}

-- Members whose value differs from server to server by nature; their presence still counts.
local VOLATILE = {
  uid = "<uid>", resourceVersion = "<rv>", creationTimestamp = "<time>", deletionTimestamp = "<time>",
  lastTransitionTime = "<time>", lastUpdateTime = "<time>", lastProbeTime = "<time>",
  lastHeartbeatTime = "<time>", startTime = "<time>", completionTime = "<time>",
  firstTimestamp = "<time>", lastTimestamp = "<time>", eventTime = "<time>", startedAt = "<time>",
  finishedAt = "<time>", clusterIP = "<ip>", clusterIPs = "<ip>", podIP = "<ip>", podIPs = "<ip>",
  hostIP = "<ip>", hostIPs = "<ip>", containerID = "<id>", imageID = "<id>",
  ["continue"] = "<continue>",
}

local UUID = "%x%x%x%x%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x"
local RFC3339 = "%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%dZ"

local function is_array(t)
  local mt = getmetatable(t)
  if mt and mt.__jsontype then return mt.__jsontype == "array" end
  return #t > 0 or next(t) == nil
end

function M.decode(text)
  if not text or text == "" then return nil end
  local v = json.decode(text, 1, json.null)
  return v
end

local Side = {}
Side.__index = Side

-- One server under comparison: its generated names are replaced by stand-ins before compare,
-- and managers (field owners) by the names they stand for (managers = {name = stand_in}).
function M.side(server, label, managers)
  return setmetatable({server = server, label = label, names = {}, order = {}, managers = managers or {}}, Side)
end

function Side:name(value, stand_in)
  if value and value ~= "" and not self.names[value] then
    self.names[value] = stand_in
    self.order[#self.order + 1] = value
    -- the longest first, so a pod's name is replaced before its ReplicaSet's prefix of it
    table.sort(self.order, function(a, b) return #a > #b end)
  end
end

-- code, decoded body (or the raw text when it is not JSON), raw headers
function Side:request(method, path, opts)
  opts = opts or {}
  local headers = {}
  for k, v in pairs(opts.headers or {}) do headers[k] = v end
  local body = opts.body
  if type(body) == "table" then
    body = json.encode(body)
    headers["Content-Type"] = headers["Content-Type"] or "application/json"
  end
  local code, text, raw = self.server:request(method, path, {body = body, headers = headers})
  local ok, decoded = pcall(M.decode, text)
  return code, (ok and decoded ~= nil) and decoded or text, raw
end

-- The content type of an answer, from its raw headers.
function M.content_type(raw)
  local last
  for v in (raw or ""):gmatch("\n[Cc]ontent%-[Tt]ype: *([^\r\n]*)") do last = v end
  return last
end

local function normal_string(side, s)
  for _, value in ipairs(side.order) do
    local i = 1
    while true do
      local a, b = s:find(value, i, true)
      if not a then break end
      s = s:sub(1, a - 1) .. side.names[value] .. s:sub(b + 1)
      i = a + #side.names[value]
    end
  end
  return (s:gsub(UUID, "<uid>"):gsub(RFC3339, "<time>"))
end

-- The owners of an object's fields: who, how and through which version (the field sets
-- themselves are compared by behaviour: conflicts, force, removal). Sorted: the apiserver
-- orders them by the second each was written, and the two servers' seconds differ.
local function owners(side, list)
  local out = setmetatable({}, {__jsontype = "array"})
  for _, e in ipairs(list) do
    out[#out + 1] = {manager = side.managers[e.manager] or e.manager, operation = e.operation,
                     apiVersion = e.apiVersion, fieldsType = e.fieldsType, subresource = e.subresource}
  end
  local function key(e)
    return table.concat({e.operation or "", e.manager or "", e.apiVersion or "", e.subresource or ""}, "\0")
  end
  table.sort(out, function(a, b) return key(a) < key(b) end)
  return out
end

local function normal(side, v, key)
  if type(v) == "string" then
    if VOLATILE[key] then return VOLATILE[key] end
    return normal_string(side, v)
  elseif type(v) ~= "table" or v == json.null then
    if VOLATILE[key] and v ~= json.null then return VOLATILE[key] end
    return v
  end
  if VOLATILE[key] then return VOLATILE[key] end
  if key == "managedFields" then return owners(side, v) end
  local out = setmetatable({}, getmetatable(v))
  for k, x in pairs(v) do
    local nk = type(k) == "string" and normal_string(side, k) or k
    out[nk] = normal(side, x, k)
  end
  return out
end

function Side:view(v)
  return normal(self, v, nil)
end

local function show(v)
  if v == nil then return "(absent)" end
  if type(v) == "table" then return json.encode(v) end
  return tostring(v)
end

-- Every path where a and b differ: {path = "a-value | b-value"}.
function M.compare(a, b, path, out)
  out = out or {}
  path = path or ""
  if type(a) == "table" and type(b) == "table" and a ~= json.null and b ~= json.null then
    if is_array(a) ~= is_array(b) and (next(a) or next(b)) then
      out[path] = show(a) .. " | " .. show(b)
      return out
    end
    local keys = {}
    for k in pairs(a) do keys[k] = true end
    for k in pairs(b) do keys[k] = true end
    for k in pairs(keys) do
      M.compare(a[k], b[k], path == "" and tostring(k) or path .. "." .. tostring(k), out)
    end
  elseif a ~= b then
    out[path] = show(a) .. " | " .. show(b)
  end
  return out
end

-- A known path ("resources.*.storageVersionHash": * is one segment) as a Lua pattern.
local function path_pattern(known)
  return "^" .. known:gsub("[%^%$%(%)%%%.%[%]%+%-%?]", "%%%0"):gsub("%*", "[^.]+") .. "$"
end

-- The differences found that no known path covers ("path: kubesim | kube-apiserver"), and the
-- known paths that matched nothing (a difference that went away), both sorted.
function M.unexpected(found, known)
  local new, gone, used = {}, {}, {}
  for path, values in pairs(found) do
    local covered = false
    for k in pairs(known) do
      if path:match(path_pattern(k)) then covered, used[k] = true, true end
    end
    if not covered then new[#new + 1] = path .. ": " .. values end
  end
  for k in pairs(known) do
    if not used[k] then gone[#gone + 1] = k end
  end
  table.sort(new)
  table.sort(gone)
  return new, gone
end

return M
