-- The plan of a workflow: its steps, the tasks of each side by side, background steps running
-- on beside later ones, halt points, and a predicted timeline from estimated durations (the
-- last runs' journal where there is one, else defaults), with the makespan and critical path.
local json = require "moonship.json"

local fmt = string.format

local M = {}

-- Default estimates in seconds when no earlier run says better.
M.DEFAULT_SECONDS = {services = 30, jobs = 20, manifests = 5, release = 15, custom = 10}

-- Task durations from an earlier run's snapshot (journal.load_last): id -> seconds.
function M.durations_from(snapshot)
  local d = {}
  for _, t in ipairs(snapshot and snapshot.tasks or {}) do
    if t.started and t.finished and (t.state == "succeeded" or t.state == "recovered") then
      d[t.id] = t.finished - t.started
    end
  end
  return d
end

local function estimate(task, durations)
  return durations[task.id] or M.DEFAULT_SECONDS[task.kind] or M.DEFAULT_SECONDS.custom
end

-- The order the tasks of a step start in (the engine's and the prediction's): longest first by
-- their expected durations, so that when starts are bounded (max_parallel, --concurrency) or
-- the API server takes a burst of requests one by one, the task that decides when the step
-- ends goes first. A task with no recorded duration gets its kind's estimate; a step with none
-- recorded keeps the template's order, as do ties.
function M.start_order(tasks, durations)
  local known = false
  for _, task in ipairs(tasks) do known = known or durations[task.id] ~= nil end
  if not known then return tasks end
  local order = {}
  for i, task in ipairs(tasks) do order[i] = {task = task, i = i, d = estimate(task, durations)} end
  table.sort(order, function(a, b)
    if a.d ~= b.d then return a.d > b.d end
    return a.i < b.i
  end)
  for i, o in ipairs(order) do order[i] = o.task end
  return order
end

-- plan.schedule(workflow, durations [, {concurrency=}]) -> {steps = {{name, index, start, done,
-- finish, background, halt, max_parallel, tasks = {{id, step, start, finish, seconds, estimated,
-- halt, after}}}}, makespan=, critical_path={ids}}
-- The engine's rules (DESIGN.md §3): a step starts when the one before it is done: a foreground
-- step once all its tasks finished, a background step once all its tasks started. The tasks of
-- a step start together, or in start_order through max_parallel (else --concurrency) slots; a
-- step timeout cuts its tasks short. `after` names the task whose finish let a task start (nil:
-- the run's start), so the critical path is the chain of `after` links back from the last finish.
function M.schedule(workflow, durations, opts)
  durations, opts = durations or {}, opts or {}
  local out = {steps = {}, makespan = 0}
  local by_id = {}
  local t, gate = 0, nil   -- when the next step may start, and which task's finish decides it
  for i, step in ipairs(workflow.steps) do
    local limit = step.max_parallel or opts.concurrency
    local s = {name = step.name, index = i, start = t, background = step.wait_for_finish == false,
               halt = step.halt_on_error or false, max_parallel = limit, timeout = step.timeout, tasks = {}}
    local slots = {}   -- with a limit: {free_at=, by=} per slot
    local last_start, last_start_after, last_finish, last_finish_id = t, gate, t, gate
    local planned = {}  -- id -> task entry, made in start order, listed in the template's
    for _, task in ipairs(M.start_order(step.tasks, durations)) do
      local estimated = durations[task.id] == nil
      local seconds = estimate(task, durations)
      local start, after, slot = t, gate, nil
      if limit then
        if #slots < limit then
          slot = #slots + 1
          slots[slot] = {free_at = t, by = gate}
        else
          slot = 1
          for k = 2, #slots do
            if slots[k].free_at < slots[slot].free_at then slot = k end
          end
        end
        start, after = slots[slot].free_at, slots[slot].by
      end
      local finish, timed_out = start + seconds, nil
      if step.timeout and finish > t + step.timeout then
        finish, timed_out = math.max(start, t + step.timeout), true
      end
      local tk = {id = task.id, step = step.name, start = start, finish = finish, seconds = finish - start,
                  estimated = estimated, halt = task.halt_on_error or false, after = after, timed_out = timed_out}
      if slot then slots[slot] = {free_at = finish, by = tk.id} end
      planned[tk.id] = tk
    end
    for _, task in ipairs(step.tasks) do
      local tk = planned[task.id]
      s.tasks[#s.tasks + 1] = tk
      by_id[tk.id] = tk
      if tk.start > last_start then last_start, last_start_after = tk.start, tk.after end
      if tk.finish > last_finish or #s.tasks == 1 then last_finish, last_finish_id = tk.finish, tk.id end
    end
    s.finish = last_finish
    if s.background then
      s.done, t, gate = last_start, last_start, last_start_after
    else
      s.done, t, gate = last_finish, last_finish, last_finish_id
    end
    out.steps[#out.steps + 1] = s
  end
  -- The run ends when the last task ends, background ones included; of equal finishes the
  -- first in file order is the path's end.
  local last
  out.makespan = t
  for _, s in ipairs(out.steps) do
    for _, tk in ipairs(s.tasks) do
      if tk.finish > out.makespan or (last == nil and tk.finish == out.makespan) then
        out.makespan, last = tk.finish, tk
      end
    end
  end
  local chain = {}
  while last do
    table.insert(chain, 1, last.id)
    last = last.after and by_id[last.after]
  end
  out.critical_path = chain
  return out
end

-- Marks each task of a schedule with its state against the cluster (plan --diff): marks is
-- task id -> "new" | "changed" | "unchanged" | "not_compared" | "error", set as tk.diff.
function M.mark(sched_, marks)
  for _, s in ipairs(sched_.steps) do
    for _, tk in ipairs(s.tasks) do tk.diff = marks[tk.id] end
  end
  return sched_
end

local plan_text = require "moonship.output.plan_text"

M.format_seconds = plan_text.format_seconds

-- The formats of `moonship plan`: format(workflow, schedule, opts) -> text.
function M.text(workflow, sched_, opts) return plan_text.render(workflow, sched_, opts) end
function M.mermaid(workflow, sched_, opts) return require("moonship.output.mermaid").render(workflow, sched_, opts) end
function M.dot(workflow, sched_, opts) return require("moonship.output.dot").render(workflow, sched_, opts) end

-- The line that says where a plan's durations come from (opts.durations_from = {run=,
-- time_scale=}: the last run's, a --sim run's with its kubesim time scale), or nil.
function M.durations_note(opts)
  local from = opts and opts.durations_from
  if not (from and from.run) then return nil end
  if from.time_scale then
    return ("durations from a simulated run at time scale %g (run %s)"):format(from.time_scale, from.run)
  end
  return "durations from run " .. from.run
end

function M.json(workflow, sched_, opts)
  local steps = {}
  for i, s in ipairs(sched_.steps) do
    local tasks = {}
    for j, tk in ipairs(s.tasks) do tasks[j] = tk end
    steps[i] = {name = s.name, start = s.start, finish = s.finish, background = s.background, halt_on_error = s.halt,
                tasks = json.array(tasks)}
  end
  local from = opts and opts.durations_from
  return json.encode({workflow = workflow.name, makespan = sched_.makespan,
                      critical_path = json.array(sched_.critical_path), steps = json.array(steps),
                      durations_from = from and from.run and {run = from.run, time_scale = from.time_scale} or nil},
                     {sort_keys = true, indent = 2}) .. "\n"
end

-- plan.build(path, {workflow=, env=, durations=, concurrency=}) -> schedule, workflow, model or nil, errors
function M.build(path, opts)
  local template = require "moonship.model.template"
  local model, problems = template.load(path, {env = opts.env, custom_kinds = opts.custom_kinds})
  if not model then return nil, problems end
  local wf, err = template.workflow(model, opts.workflow)
  if not wf then return nil, {err} end
  return M.schedule(wf, opts.durations, {concurrency = opts.concurrency}), wf, model
end

return M
