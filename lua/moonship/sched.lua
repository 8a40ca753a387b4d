-- The scheduler: cooperative tasks on one libuv loop. The C core gives run, spawn, sleep,
-- park/unpark, now and task objects; this module builds the combinators on them.
local core = require("moonship.core").sched

local spawn, park, current = core.spawn, core.park, core.current
local pack, unpack = table.pack, table.unpack
local error, pcall = error, pcall

local M = {
  spawn = spawn,
  sleep = core.sleep,
  now = core.now,
  park = park,
  current = current,
  stats = core.stats,
  interrupted = core.interrupted,
  guard = core.guard,
}

-- sched.run(fn, ...) -> fn's results, or its error raised. Outside the scheduler (a stock
-- lua5.4) it runs fn as the root task and drives the loop until fn returns; inside a task (a
-- `moonship run` script, a hook) the loop already runs, so fn runs as a task of its own and is
-- waited for. A script wrapped in sched.run therefore runs unchanged under both.
function M.run(fn, ...)
  if not current() then return core.run(fn, ...) end
  if type(fn) ~= "function" then error("sched.run: a function expected", 2) end
  local task = spawn(fn, ...)
  -- The caller cancelled (a signal, a halt): its inner run ends with it.
  local _ <close> = setmetatable({}, {__close = function() task:cancel() end})
  local r = pack(task:join())
  if not r[1] then error(r[2], 0) end
  return unpack(r, 2, r.n)
end

-- The value a cancelled task's waits raise (one table; tostring gives "cancelled"), and
-- whether an error is it. A handler that adds a traceback (xpcall with debug.traceback)
-- leaves it as it is, since it is not a string.
M.cancelled = core.cancelled

function M.is_cancelled(err)
  return rawequal(err, core.cancelled)
end

local function need_task(what)
  local me = current()
  if not me then error(what .. " must be called inside a task (use sched.run)", 3) end
  return me
end

-- Runs fns concurrently and waits for all of them. Returns the first result of each, in order.
-- If one raises, the others are cancelled and the error is raised again.
function M.all(fns)
  local me = need_task("sched.all")
  local n, left, failed = #fns, #fns, nil
  local results, tasks = {}, {}
  if n == 0 then return end
  for i = 1, n do
    tasks[i] = spawn(function()
      local r = pack(pcall(fns[i]))
      if r[1] then results[i] = r[2] elseif not failed then failed = r[2] end
      left = left - 1
      if left == 0 or failed then me:unpark() end
    end)
  end
  local ok, err = pcall(park)
  if not ok or failed then
    for i = 1, n do tasks[i]:cancel() end
    for i = 1, n do tasks[i]:join() end
    error(failed or err, 0)
  end
  return unpack(results, 1, n)
end

-- Runs fns concurrently; the first to finish wins and the rest are cancelled (and waited for).
-- Returns the winner's index and results; raises if the winner raised.
function M.any(fns)
  local me = need_task("sched.any")
  if #fns == 0 then error("sched.any: no functions given", 2) end
  local winner, outcome
  local tasks = {}
  for i = 1, #fns do
    tasks[i] = spawn(function()
      local r = pack(pcall(fns[i]))
      if not winner then
        winner, outcome = i, r
        me:unpark()
      end
    end)
  end
  local ok, err = pcall(park)
  for i = 1, #fns do
    if i ~= winner then tasks[i]:cancel() end
  end
  for i = 1, #fns do tasks[i]:join() end
  if not ok then error(err, 0) end
  if not outcome[1] then error(outcome[2], 0) end
  return winner, unpack(outcome, 2, outcome.n)
end

-- Calls fn(...) in a child task with a time limit: its results, or nil, "timeout", "timeout"
-- after the body was cancelled (and its cleanups ran). Raises if the body raises.
function M.timeout(seconds, fn, ...)
  local me = need_task("sched.timeout")
  local outcome
  local child = spawn(function(...)
    outcome = pack(pcall(fn, ...))
    me:unpark()
  end, ...)
  local ok, a, b = pcall(park, seconds)
  if not ok or (a == nil and b == "timeout" and not outcome) then
    child:cancel(ok and "timeout" or a)
    child:join()
    if not ok then error(a, 0) end
    return nil, "timeout", "timeout"
  end
  if not outcome[1] then error(outcome[2], 0) end
  return unpack(outcome, 2, outcome.n)
end

-- A counting semaphore: s:acquire() waits for a permit, s:release() returns one,
-- s:with(fn, ...) holds a permit while fn runs.
local Semaphore = {}
Semaphore.__index = Semaphore

function M.semaphore(n)
  assert(math.type(n) == "integer" and n >= 1, "sched.semaphore: n must be a positive integer")
  return setmetatable({permits = n, waiters = {}, head = 1, tail = 0}, Semaphore)
end

function Semaphore:acquire()
  if self.permits > 0 and self.head > self.tail then
    self.permits = self.permits - 1
    return
  end
  local me = need_task("semaphore:acquire")
  self.tail = self.tail + 1
  local slot = self.tail
  self.waiters[slot] = me
  local ok, err = pcall(park)
  if not ok then
    if self.waiters[slot] == me then
      self.waiters[slot] = false -- cancelled while queued: skip this slot
    else
      self:release() -- handed a permit just as we were cancelled: give it back
    end
    error(err, 0)
  end
end

function Semaphore:release()
  while self.head <= self.tail do
    local waiter = self.waiters[self.head]
    self.waiters[self.head] = nil
    self.head = self.head + 1
    if waiter and waiter:unpark() then return end
  end
  self.permits = self.permits + 1
end

function Semaphore:with(fn, ...)
  self:acquire()
  local r = pack(pcall(fn, ...))
  self:release()
  if not r[1] then error(r[2], 0) end
  return unpack(r, 2, r.n)
end

-- A one-shot event: e:set() wakes every waiter and every later e:wait() returns at once.
local Event = {}
Event.__index = Event

function M.event()
  return setmetatable({set_ = false, waiters = {}}, Event)
end

function Event:is_set() return self.set_ end

function Event:set()
  if self.set_ then return end
  self.set_ = true
  local waiters = self.waiters
  self.waiters = {}
  for _, t in ipairs(waiters) do t:unpark() end
end

-- Waits until set (or for at most `timeout` seconds: then returns false).
function Event:wait(timeout)
  if self.set_ then return true end
  local me = need_task("event:wait")
  self.waiters[#self.waiters + 1] = me
  local deadline = timeout and (M.now() + timeout)
  while not self.set_ do
    local remaining = deadline and (deadline - M.now())
    if remaining and remaining <= 0 then break end
    local ok, err = pcall(park, remaining)
    if not ok then
      for i, t in ipairs(self.waiters) do
        if t == me then table.remove(self.waiters, i) break end
      end
      error(err, 0)
    end
  end
  if not self.set_ then
    for i, t in ipairs(self.waiters) do
      if t == me then table.remove(self.waiters, i) break end
    end
  end
  return self.set_
end

-- A task group: g:spawn(fn, ...) adds a member, g:cancel(reason) cancels every member still
-- running, g:wait() waits for every member (including ones spawned meanwhile) and returns
-- the list of their outcomes {ok, results...}.
local Group = {}
Group.__index = Group

function M.group()
  return setmetatable({tasks = {}, cancelled = false}, Group)
end

function Group:spawn(fn, ...)
  local t = spawn(fn, ...)
  self.tasks[#self.tasks + 1] = t
  if self.cancelled then t:cancel(self.cancelled) end
  return t
end

function Group:cancel(reason)
  self.cancelled = reason or "cancelled"
  for _, t in ipairs(self.tasks) do t:cancel(self.cancelled) end
end

function Group:wait()
  local outcomes, i = {}, 1
  while i <= #self.tasks do
    outcomes[i] = pack(self.tasks[i]:join())
    i = i + 1
  end
  return outcomes
end

function Group:size() return #self.tasks end

return M
