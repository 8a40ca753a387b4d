-- A shared watch of one kind in one namespace: one list + watch feeds a cache of the objects and
-- every subscriber, so that N waiters cost one stream, not N polls.
local sched = require "moonship.sched"

local M = {}

local Informer = {}
Informer.__index = Informer

function M.new(client, api_version, kind, namespace)
  return setmetatable({
    client = client, api_version = api_version, kind = kind, namespace = namespace,
    cache = {},          -- name -> object
    by_name = {},        -- name -> {fn = true}: subscribers of one object
    by_owner = {},       -- owner uid -> {fn = true}: subscribers of the objects it owns
    owned = {},          -- owner uid -> {name -> object}: the cache indexed by ownerReferences
    all = {},            -- fn -> true: subscribers of every event
    synced = false,
  }, Informer)
end

-- What a cached object keeps. Pods and ReplicaSets are read only for diagnostics and
-- ownership, never by readiness rules (which may be a user's), so the cache keeps just that:
-- at 2,000 tasks their specs would be most of moonship's memory. Other kinds are kept whole
-- (less managedFields, which nobody here reads, as client-go's informers drop it: see DROP).
local function keep_fields(src, names)
  if type(src) ~= "table" then return nil end
  local out = {}
  for _, k in ipairs(names) do out[k] = src[k] end
  return out
end

local META = {"name", "namespace", "uid", "generation", "resourceVersion", "ownerReferences",
              "creationTimestamp", "deletionTimestamp"}
local REVISION = "deployment.kubernetes.io/revision"

local PROJECTIONS = {
  Pod = function(obj)
    return {apiVersion = obj.apiVersion, kind = obj.kind, metadata = keep_fields(obj.metadata, META),
            status = keep_fields(obj.status, {"phase", "reason", "message", "conditions",
                                              "containerStatuses", "initContainerStatuses"})}
  end,
  ReplicaSet = function(obj)
    local md = keep_fields(obj.metadata, META)
    local ann = obj.metadata.annotations
    if ann and ann[REVISION] then md.annotations = {[REVISION] = ann[REVISION]} end
    return {apiVersion = obj.apiVersion, kind = obj.kind, metadata = md,
            spec = keep_fields(obj.spec, {"replicas"}), status = obj.status}
  end,
}

-- What is not even decoded: every kind's managedFields (nearly half the bytes of a watch
-- event), what the projections leave out anyway (a Pod's spec, labels and annotations, a
-- ReplicaSet's pod template and labels), and the pod template of the workload kinds, which no
-- readiness rule reads (kubectl's and Argo CD's read the replicas, the strategy and the status).
local MANAGED = "metadata.managedFields"
local DROP = {
  Pod = {MANAGED, "spec", "metadata.labels", "metadata.annotations"},
  ReplicaSet = {MANAGED, "spec.template", "metadata.labels"},
  Deployment = {MANAGED, "spec.template"},
  StatefulSet = {MANAGED, "spec.template"},
  DaemonSet = {MANAGED, "spec.template"},
  Job = {MANAGED, "spec.template"},
}
local DROP_DEFAULT = {MANAGED}

function M.project(obj)
  local projection = PROJECTIONS[obj.kind]
  if projection then return projection(obj) end
  return obj
end

local function owner_uids(obj)
  local refs = obj and obj.metadata.ownerReferences
  if not refs then return nil end
  local uids = {}
  for i, ref in ipairs(refs) do uids[i] = ref.uid end
  return uids
end

-- Keeps self.owned in step with self.cache (old: the cached version being replaced, or nil).
local function index(self, name, old, new)
  for _, uid in ipairs(owner_uids(old) or {}) do
    local set = self.owned[uid]
    if set then
      set[name] = nil
      if next(set) == nil then self.owned[uid] = nil end
    end
  end
  for _, uid in ipairs(owner_uids(new) or {}) do
    local set = self.owned[uid]
    if not set then
      set = {}
      self.owned[uid] = set
    end
    set[name] = new
  end
end

local function notify(set, ev_type, obj)
  -- Subscribers must not yield (they wake tasks); copy first so they may unsubscribe.
  local fns = {}
  for fn in pairs(set) do fns[#fns + 1] = fn end
  for _, fn in ipairs(fns) do fn(ev_type, obj) end
end

function Informer:run()
  for ev in self.client:watch(self.api_version, self.kind,
                              {namespace = self.namespace, sync_events = true, project = M.project,
                               drop = DROP[self.kind] or DROP_DEFAULT}) do
    if ev.type == "SYNCED" then
      self.synced = true
      notify(self.all, "SYNCED", nil)
      for name in pairs(self.by_name) do notify(self.by_name[name], "SYNCED", self.cache[name]) end
      for uid in pairs(self.by_owner) do notify(self.by_owner[uid], "SYNCED", nil) end
    else
      local obj = ev.object
      local name = obj.metadata.name
      local old = self.cache[name]
      if ev.type == "DELETED" then self.cache[name] = nil else self.cache[name] = obj end
      index(self, name, old, self.cache[name])
      if self.by_name[name] then notify(self.by_name[name], ev.type, obj) end
      for _, uid in ipairs(owner_uids(obj) or {}) do
        if self.by_owner[uid] then notify(self.by_owner[uid], ev.type, obj) end
      end
      notify(self.all, ev.type, obj)
    end
  end
end

function Informer:start()
  if not self.task then
    self.task = sched.spawn(function()
      local ok, err = pcall(self.run, self)
      if not ok and not sched.is_cancelled(err) then
        self.error = err
        notify(self.all, "ERROR", err)
        for name in pairs(self.by_name) do notify(self.by_name[name], "ERROR", err) end
        for uid in pairs(self.by_owner) do notify(self.by_owner[uid], "ERROR", err) end
      end
    end)
  end
  return self
end

-- inf:subscribe(name | nil, fn(event_type, obj)) -> an unsubscribe function. name nil: every
-- object of the kind. fn runs inside the informer's task and must not wait.
function Informer:subscribe(name, fn)
  self:start()
  local set
  if name then
    set = self.by_name[name]
    if not set then
      set = {}
      self.by_name[name] = set
    end
  else
    set = self.all
  end
  set[fn] = true
  return function()
    set[fn] = nil
    if name and next(set) == nil and self.by_name[name] == set then self.by_name[name] = nil end
  end
end

-- inf:subscribe_owned(uid, fn(event_type, obj)) -> an unsubscribe function: events of the
-- objects that uid owns (any ownerReference), so a wait hears its own pods, not every pod.
function Informer:subscribe_owned(uid, fn)
  self:start()
  local set = self.by_owner[uid]
  if not set then
    set = {}
    self.by_owner[uid] = set
  end
  set[fn] = true
  return function()
    set[fn] = nil
    if next(set) == nil and self.by_owner[uid] == set then self.by_owner[uid] = nil end
  end
end

function Informer:get(name) return self.cache[name] end

-- The cached objects that uid owns (any ownerReference), from the index: no scan of the cache.
function Informer:owned_by(uid)
  local out = {}
  for _, obj in pairs(self.owned[uid] or {}) do out[#out + 1] = obj end
  return out
end

-- Every cached object for which pred(obj) is true.
function Informer:select(pred)
  local out = {}
  for _, obj in pairs(self.cache) do
    if pred(obj) then out[#out + 1] = obj end
  end
  return out
end

function Informer:stop()
  if self.task then self.task:cancel("informer stopped") end
  self.task = nil
end

return M
