-- A watch that survives faults: a producer task lists, then watches from the list's
-- resourceVersion; after a dropped stream or a server timeout it watches again from the last
-- resourceVersion seen; after 410 Expired it re-lists and emits only the differences, so the
-- consumer's view of the collection stays exact. The consumer iterates events in its own task.
local json = require "moonship.json"
local kube = require "moonship.kube"
local sched = require "moonship.sched"
local watch_core = require("moonship.core").watch

local fmt = string.format

local M = {}

local Watch = {}
Watch.__index = Watch

local WATCH_SECONDS = 300     -- server-side lifetime of one watch request
local BACKOFF, BACKOFF_MAX = 0.1, 5

local function key_of(obj)
  local md = obj.metadata or {}
  return (md.namespace or "") .. "/" .. tostring(md.name)
end

function M.new(client, api_version, kind, opts)
  local w = setmetatable({
    client = client, api_version = api_version, kind = kind, opts = opts,
    namespace = opts.namespace or client.namespace,
    rv = opts.resource_version,
    known = {},               -- key -> last object seen (to diff a re-list)
    queue = {}, head = 1, tail = 0,
    closed = false,
    stats = {lists = 0, watches = 0, expired = 0},
  }, Watch)
  w.next = Watch.take
  return w
end

function Watch:push(ev)
  self.tail = self.tail + 1
  self.queue[self.tail] = ev
  local waiter = self.waiter
  if waiter then
    self.waiter = nil
    waiter:unpark()
  end
end

function Watch:fail(err)
  self.error = err
  self.closed = true
  local waiter = self.waiter
  if waiter then
    self.waiter = nil
    waiter:unpark()
  end
end

-- Applies a fresh list: ADDED for new objects, MODIFIED for changed ones, DELETED for vanished
-- ones (carrying their last known state).
function Watch:sync(items)
  local seen = {}
  local project = self.opts.project
  for _, obj in ipairs(items) do
    if project then obj = project(obj) end
    local key = key_of(obj)
    seen[key] = true
    local old = self.known[key]
    self.known[key] = obj
    if not old then
      self:push {type = "ADDED", object = obj}
    elseif old.metadata.resourceVersion ~= obj.metadata.resourceVersion then
      self:push {type = "MODIFIED", object = obj}
    end
  end
  for key, old in pairs(self.known) do
    if not seen[key] then
      self.known[key] = nil
      self:push {type = "DELETED", object = old}
    end
  end
  if self.opts.sync_events then self:push {type = "SYNCED"} end
end

function Watch:relist()
  local c, opts = self.client, self.opts
  self.stats.lists = self.stats.lists + 1
  local list, err, code = c:list(self.api_version, self.kind, {
    namespace = self.namespace, label_selector = opts.label_selector,
    field_selector = opts.field_selector, drop = opts.drop,
  })
  if not list then return nil, err, code end
  self:sync(list.items)
  self.rv = list.metadata.resourceVersion
  return true
end

-- One watch request from self.rv. Returns "expired" after a 410, else the transport outcome.
function Watch:stream()
  local c, opts = self.client, self.opts
  local path, perr, pcode = c:path(self.api_version, self.kind, nil, self.namespace)
  if not path then return nil, perr, pcode end
  local decoder = watch_core.decoder()
  local drop = kube.drop_under("object", opts.drop)
  local decode_opts = drop and {drop = drop}
  local expired, bad = false, nil
  self.stats.watches = self.stats.watches + 1
  local resp, err, code = c:request("GET", path, nil, {
    query = {
      watch = "true", resourceVersion = self.rv, allowWatchBookmarks = "true",
      labelSelector = opts.label_selector, fieldSelector = opts.field_selector,
      timeoutSeconds = opts.timeout_seconds or WATCH_SECONDS,
    },
    timeout = false,
    on_data = function(chunk)
      local texts, derr = decoder:feed(chunk)
      if not texts then bad = derr return false end
      for _, text in ipairs(texts) do
        local ev = json.decode(text, decode_opts)
        if type(ev) ~= "table" or type(ev.object) ~= "table" then
          bad = "watch stream: not an event: " .. text:sub(1, 80)
          return false
        end
        local obj = ev.object
        if ev.type ~= "ERROR" and ev.type ~= "BOOKMARK" and opts.project then
          obj = opts.project(obj)
          ev.object = obj
        end
        if ev.type == "ERROR" then
          if obj.code == 410 then expired = true else bad = "watch: " .. tostring(obj.message) end
          return false
        end
        local rv = obj.metadata and obj.metadata.resourceVersion
        if rv then self.rv = rv end
        if ev.type ~= "BOOKMARK" then
          local key = key_of(obj)
          if ev.type == "DELETED" then self.known[key] = nil else self.known[key] = obj end
          self:push(ev)
        end
      end
    end,
  })
  decoder:close()
  if expired or code == "expired" then return "expired" end
  if bad then return nil, bad, "decode" end
  if resp then return "ended" end
  return nil, err, code
end

-- The producer: runs until closed or a failure that retrying cannot fix.
function Watch:run()
  local failures = 0
  while not self.closed do
    local ok, err, code
    if self.rv == nil then
      ok, err, code = self:relist()
    else
      ok, err, code = self:stream()
      if ok == "expired" then
        self.stats.expired = self.stats.expired + 1
        self.rv = nil
      end
    end
    if ok then
      failures = 0
    elseif code == "unknown_kind" or code == "forbidden" or code == "unauthorized" or code == "not_found" then
      self:fail(err)
      return
    else
      failures = failures + 1
      sched.sleep(math.min(BACKOFF_MAX, BACKOFF * 2 ^ (failures - 1)) * (0.5 + math.random()))
    end
  end
end

-- The iterator function: the next event, waiting for one; nil after close. Raises when the
-- watch failed for good (unknown kind, forbidden).
function Watch:take()
  if not self.task then
    self.task = sched.spawn(self.run, self)
  end
  while self.head > self.tail do
    if self.closed then
      if self.error then error(fmt("watch %s: %s", self.kind, self.error), 0) end
      return nil
    end
    self.waiter = sched.current()
    local ok, err = pcall(sched.park)
    self.waiter = nil
    if not ok then error(err, 0) end
  end
  local ev = self.queue[self.head]
  self.queue[self.head] = nil
  self.head = self.head + 1
  return ev
end

function Watch:close()
  self.closed = true
  if self.task then self.task:cancel("watch closed") end
end

Watch.__close = Watch.close

return M
