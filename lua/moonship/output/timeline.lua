-- The timeline of a real run, from its journal events (README: "The run journal and JSON
-- events"): the steps as lanes, each task's attempts as segments, the halt point, what never
-- started, and the run's critical path. Pure: events in, a table out; the HTML report draws it.
local M = {}

local events = require "moonship.run.events"
local FINAL = events.FINAL
local EPSILON = 0.05   -- seconds: event times that close count as the same moment

-- timeline.build(events) -> run
--   run = {id, app, workflow, namespace, env, state, exit_code, dry_run, duration,
--          steps = {{name, index, background, start, finish, state, halt, tasks = {ids}}}
--            (every step of the plan; one that never started has no start: a halt came first),
--          tasks = {[id] = task}, order = {ids}, halt = {t, task, message} | nil,
--          not_started = {ids}, critical_path = {ids}, critical = {[id] = true}}
--   task = {id, step, state, message, reason, halt, first_start, finish, end_seq, objects = {...},
--           logs = {{text, hook}} (job output; hook: the hook that wrote the line with ctx.log),
--           attempts = {{n, start, finish, state, message}}, recovery = {start, finish}}
--   halt = {t, task, message, cause} (cause: "halt_on_error" | "on_error", when the journal says)
--   rollback = {t, to, revision, workflow, reason, state} when the run re-applied a recorded run
--     (reason "command": `moonship rollback`; "on_error": after the halt, whose steps come after
--     the halted run's; state: the rollback's outcome)
local function open_attempt(t)
  local a = t.attempts[#t.attempts]
  if a and a.finish == nil then return a end
end

-- A timeline being built: the run, its steps by name and the job output already shown.
local Builder = {}
Builder.__index = Builder

function Builder:task(id)
  local run = self.run
  local t = run.tasks[id]
  if not t then
    t = {id = id, attempts = {}, objects = {}, logs = {}, state = "pending"}
    run.tasks[id] = t
    run.order[#run.order + 1] = id
  end
  return t
end

function Builder:step(name, index, background)
  local run = self.run
  local s = self.steps_by_name[name]
  if not s then
    s = {name = name, index = index or (#run.steps + 1), background = background or false, tasks = {}}
    self.steps_by_name[name] = s
    run.steps[#run.steps + 1] = s
  end
  return s
end

-- The lanes of a plan's steps (a run_started's or rollback_started's), numbered after offset;
-- a step laid out already keeps its lane.
function Builder:lay_out(plan, offset)
  for i, p in ipairs(plan or {}) do
    if not self.steps_by_name[p.step] then
      local s = self:step(p.step, offset + i, p.background)
      for _, id in ipairs(p.tasks or {}) do
        self:task(id).step = p.step
        s.tasks[#s.tasks + 1] = id
      end
    end
  end
end

-- What each event does to the timeline: ON[event](builder, ev, now, seq).
local ON = {}

function ON.run_started(b, ev)
  local run = b.run
  run.app, run.namespace, run.env, run.dry_run = ev.app, ev.namespace, ev.env, ev.dry_run
  for _, id in ipairs(ev.tasks or {}) do b:task(id) end
  -- every step of the plan, so that one a halt kept from starting still has its lane
  b:lay_out(ev.plan, 0)
end

function ON.step_started(b, ev, now)
  local s = b:step(ev.step, ev.index, ev.background)
  s.start, s.index, s.background = now, ev.index or s.index, ev.background or false
  if #s.tasks == 0 then
    for _, id in ipairs(ev.tasks or {}) do
      s.tasks[#s.tasks + 1] = id
      b:task(id).step = ev.step
    end
  end
end

function ON.step_finished(b, ev, now)
  local s = b.steps_by_name[ev.step]
  if s then s.finish, s.state, s.halt = now, ev.state, ev.halt end
end

function ON.task_started(b, ev, now)
  if not ev.task then return end
  local t = b:task(ev.task)
  t.step = ev.step or t.step
  t.state = "running"
  t.first_start = t.first_start or now
  local a = open_attempt(t)
  if a then a.finish, a.state = now, a.state or "failed" end
  t.attempts[#t.attempts + 1] = {n = ev.attempt or (#t.attempts + 1), start = now}
end

function ON.task_progress(b, ev, now)
  if not ev.task then return end
  local t = b:task(ev.task)
  for _, o in ipairs(ev.objects or {}) do t.objects[#t.objects + 1] = o end
  if ev.retry then
    -- the attempt failed and another follows after a delay
    local a = open_attempt(t)
    if a then a.finish, a.state, a.message = now, "retried", ev.message end
  elseif ev.phase == "settling" and ev.settling then
    t.recovery = {start = now}
  end
  if ev.message then t.last_progress = ev.message end
end

function ON.task_finished(b, ev, now, seq)
  if not ev.task then return end
  local t = b:task(ev.task)
  t.step = ev.step or t.step
  local state = FINAL[ev.state] and ev.state or "failed"
  t.state, t.finish, t.end_seq = state, now, seq
  t.message, t.reason = ev.message, ev.reason or t.reason
  if ev.halt then t.halt = true end
  for _, line in ipairs(b.shown:unshown(ev)) do t.logs[#t.logs + 1] = {text = line} end
  if state == "recovered" then
    t.recovery = t.recovery or {start = now}
    t.recovery.finish = now
  else
    local a = open_attempt(t)
    if a then a.finish, a.state, a.message = now, state, ev.message end
  end
end

function ON.log(b, ev)
  if not ev.task then return end
  local t = b:task(ev.task)
  -- job output and hook lines as the run showed them
  if #t.logs < 200 then t.logs[#t.logs + 1] = {text = ev.message, hook = ev.hook} end
end

function ON.run_halting(b, ev, now)
  b.run.halt = {t = now, task = ev.task, message = ev.message, cause = ev.cause}
end

function ON.rollback_started(b, ev, now)
  b.run.rollback = {t = now, to = ev.to, revision = ev.revision, workflow = ev.target_workflow, reason = ev.reason}
  -- its steps after those already laid out (the halted run's, when on_error asked for it;
  -- `moonship rollback`'s run_started laid out these very steps)
  b:lay_out(ev.plan, #b.run.steps)
end

function ON.run_finished(b, ev, now)
  local run = b.run
  run.state, run.exit_code, run.finish = ev.state, ev.exit_code, now
  if run.rollback then run.rollback.state = ev.rollback or ev.state end
end

-- What the events leave open once they are all read: a journal cut short (a crash) leaves
-- attempts open (they end where the journal ends) and steps unfinished; tasks of no step (a
-- journal without the plan, cut short before their step started) have not started.
local function close(run)
  for _, id in ipairs(run.order) do
    local t = run.tasks[id]
    local a = open_attempt(t)
    if a then a.finish, a.state = run.duration, "running" end
    if t.recovery and not t.recovery.finish then t.recovery = nil end
  end
  for _, id in ipairs(run.order) do
    local t = run.tasks[id]
    if #t.attempts == 0 and not t.step then run.not_started[#run.not_started + 1] = id end
  end
  for _, s in ipairs(run.steps) do
    if s.start then s.finish = s.finish or run.duration end
    -- the step of the task that halted the run (a journal from before step_finished had halt)
    if run.halt then
      for _, id in ipairs(s.tasks) do if id == run.halt.task then s.halt = true end end
    end
  end
  table.sort(run.steps, function(a, b) return a.index < b.index end)
  run.state = run.state or "unfinished"
end

function M.build(evs)
  local run = {steps = {}, tasks = {}, order = {}, not_started = {}, duration = 0}
  -- shown: a failure's logs repeat the job output streamed before it
  local b = setmetatable({run = run, steps_by_name = {}, shown = events.shown_logs()}, Builder)
  for seq, ev in ipairs(evs) do
    b.shown:fold(ev)
    local now = tonumber(ev.t) or run.duration
    if now > run.duration then run.duration = now end
    run.id = run.id or ev.run
    run.workflow = run.workflow or ev.workflow
    local on = ON[ev.event]
    if on then on(b, ev, now, seq) end
  end
  close(run)
  run.critical_path = M.critical_path(run)
  run.critical = {}
  for _, id in ipairs(run.critical_path) do run.critical[id] = true end
  return run
end

local function task_end(t)
  if t.recovery and t.recovery.finish then return t.recovery.finish end
  local a = t.attempts[#t.attempts]
  return a and a.finish or t.finish
end

-- The chain of tasks that set the run's length: from the task that ended last, back through
-- what let each one start: its own earlier attempt (a retry), else a task of its step that
-- freed a slot just before it (max_parallel), else what let its step start: the last task to
-- finish in the step before, or, when that step ran in the background, what let its last task
-- start.
function M.critical_path(run)
  local by_step, step_index = {}, {}
  for i, s in ipairs(run.steps) do by_step[s.name], step_index[s.name] = s, i end
  -- The run's last finishing task: the latest end, and of equal ends (the journal's times are
  -- in milliseconds) the one the journal finished last.
  local last, last_end, last_seq
  for _, id in ipairs(run.order) do
    local t = run.tasks[id]
    local e = #t.attempts > 0 and task_end(t)
    local seq = t.end_seq or 0
    if e and (last_end == nil or e > last_end + 1e-9 or (e > last_end - 1e-9 and seq > last_seq)) then
      last, last_end, last_seq = t, e, seq
    end
  end
  -- A halted run ends with the failure that halted it.
  if run.halt and run.tasks[run.halt.task] and #run.tasks[run.halt.task].attempts > 0 then
    last = run.tasks[run.halt.task]
  end
  local chain, seen = {}, {}
  local cause_of_step
  -- What let task t (its first attempt) start: a task or nil.
  local function cause_of_task(t)
    local s = by_step[t.step]
    if not s then return nil end
    local start = t.attempts[1].start
    local best, best_end
    for _, id in ipairs(s.tasks) do
      local o = run.tasks[id]
      local e = o ~= t and #o.attempts > 0 and o.attempts[#o.attempts].finish
      if e and e <= start + EPSILON and e > s.start + EPSILON and (best_end == nil or e > best_end) then
        best, best_end = o, e
      end
    end
    if best then return best end
    return cause_of_step(step_index[t.step])
  end
  function cause_of_step(i)
    local prev = run.steps[i - 1]
    if not prev then return nil end
    local pick, pick_t
    for _, id in ipairs(prev.tasks) do
      local o = run.tasks[id]
      if #o.attempts > 0 then
        local v = prev.background and o.attempts[1].start or task_end(o)
        if pick_t == nil or v > pick_t then pick, pick_t = o, v end
      end
    end
    if not pick then return cause_of_step(i - 1) end
    if prev.background then return cause_of_task(pick) end
    return pick
  end
  local t = last
  while t and not seen[t.id] do
    seen[t.id] = true
    table.insert(chain, 1, t.id)
    t = cause_of_task(t)
  end
  return chain
end

M.task_end = task_end

return M
