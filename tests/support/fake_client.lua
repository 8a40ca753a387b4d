-- A scripted stand-in for moonship.kube's client, for the engine's specs: the handful of
-- methods the engine calls, each answering on the scheduler as a script says, and a record of
-- what was asked. Objects are scripted by name (a Job's per-run name by its prefix):
--
--   local client = fake_client.new {
--     web = {ready_after = 0.02},                       -- wait_ready: ready after 20 ms
--     api = {fail_after = 0.01, reason = "CrashLoopBackOff", settle = "ready"},
--     ["migrate-"] = {fail_after = 0.01, reason = "BackoffLimitExceeded", attempts_failing = 1},
--   }
--   client.applied                                     -- {"deployment/web", ...} in order
--   client.parents                                     -- the ApplySet parents applied, in order
--   client.waiting, client.max_waiting                 -- waits in flight now / at most
--   client.secrets                                     -- name -> Secret: what the run history
--                                                      -- created (POST), listed, read, deleted
local sched = require "moonship.sched"

local M = {}
local Client = {}
Client.__index = Client

function M.new(script)
  return setmetatable({script = script or {}, applied = {}, parents = {}, waiting = 0, max_waiting = 0, attempts = {},
                       namespace = "default", counters = {requests = 0, retries = 0}, secrets = {}}, Client)
end

function Client:entry(name)
  if self.script[name] then return self.script[name] end
  for prefix, entry in pairs(self.script) do
    if prefix:sub(-1) == "-" and name:sub(1, #prefix) == prefix then return entry end
  end
  return {ready_after = 0}
end

local uid = 0
function Client:apply(obj, opts)
  self.counters.requests = self.counters.requests + 1
  local labels = obj.metadata.labels or {}
  if labels["applyset.kubernetes.io/id"] then
    self.parents[#self.parents + 1] = obj
  elseif obj.kind ~= "ConfigMap" then
    self.applied[#self.applied + 1] = obj.kind:lower() .. "/" .. obj.metadata.name
  end
  uid = uid + 1
  local live = {apiVersion = obj.apiVersion, kind = obj.kind, spec = obj.spec,
                metadata = {name = obj.metadata.name, namespace = obj.metadata.namespace or self.namespace,
                            uid = "uid-" .. uid, resourceVersion = tostring(uid), generation = 1}}
  return live
end

-- wait_ready(obj, opts): the script's answer after its delay. A wait with crashloop_restarts =
-- math.huge is the settle check: it answers the entry's `settle` ("ready" or "failed").
function Client:wait_ready(obj, opts)
  local entry = self:entry(obj.metadata.name)
  self.waiting = self.waiting + 1
  self.max_waiting = math.max(self.max_waiting, self.waiting)
  local _ <close> = setmetatable({}, {__close = function() self.waiting = self.waiting - 1 end})
  local settling = opts and opts.crashloop_restarts == math.huge
  local n = (self.attempts[obj.metadata.name] or 0) + (settling and 0 or 1)
  self.attempts[obj.metadata.name] = n
  if settling then
    sched.sleep(entry.settle_after or 0)
    if entry.settle == "ready" then return true end
    return nil, "timeout", {message = "still failing"}
  end
  local failing = entry.fail_after and (entry.attempts_failing == nil or n <= entry.attempts_failing)
  if failing then
    sched.sleep(entry.fail_after)
    return nil, entry.reason or "Failed", {message = (entry.reason or "Failed") .. ": scripted failure"}
  end
  sched.sleep(entry.ready_after or 0)
  return true
end

-- The shared watches the engine starts: nothing to watch here.
function Client:informer()
  return {start = function() end}
end

-- ---- Secrets, for the run history ---------------------------------------------------------

function Client:path(api_version, kind, name, namespace)
  assert(api_version == "v1" and kind == "Secret", "fake client: only Secrets have paths")
  return "/api/v1/namespaces/" .. namespace .. "/secrets" .. (name and ("/" .. name) or "")
end

-- POST of a Secret to its collection: 201, or 409 when the name is taken.
function Client:request(method, path, body)
  assert(method == "POST" and path:match("/secrets$"), "fake client: only a Secret's create")
  local name = body.metadata.name
  if self.secrets[name] then return nil, "secrets \"" .. name .. "\" already exists", "conflict" end
  self.secrets[name] = body
  return {status = 201, body = body}
end

-- Equality label selectors only ("a=b,c=d"), as the history asks.
local function selected(obj, selector)
  for k, v in (selector or ""):gmatch("([^,=]+)=([^,]*)") do
    if ((obj.metadata or {}).labels or {})[k] ~= v then return false end
  end
  return true
end

function Client:list(api_version, kind, opts)
  local items = {}
  if kind == "Secret" then
    for _, s in pairs(self.secrets) do
      if selected(s, opts.label_selector) then items[#items + 1] = s end
    end
  end
  return {items = items, metadata = {}}
end

function Client:get(api_version, kind, name)
  if kind == "Secret" and self.secrets[name] then return self.secrets[name] end
  return nil, "not found", "not_found"
end

function Client:delete(api_version, kind, name)
  if kind == "Secret" then self.secrets[name] = nil end
  return true
end

function Client:close() end

return M
