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

-- plan.schedule(workflow, durations) -> {steps = {{name, start, finish, background, halt,
-- tasks = {{id, start, finish, seconds, estimated}}}}, makespan=, critical_path={ids}}
-- Steps start when the previous foreground step finished (a background step only delays the
-- next by its tasks' start); tasks of a step start together (max_parallel is not modelled).
function M.schedule(workflow, durations)
  durations = durations or {}
  local out = {steps = {}, makespan = 0}
  local t = 0
  local critical, ends = {}, {}
  for i, step in ipairs(workflow.steps) do
    local s = {name = step.name, index = i, start = t, background = step.wait_for_finish == false,
               halt = step.halt_on_error or false, tasks = {}}
    local finish, longest = t, nil
    for _, task in ipairs(step.tasks) do
      local seconds = durations[task.id]
      local estimated = seconds == nil
      seconds = seconds or M.DEFAULT_SECONDS[task.kind] or M.DEFAULT_SECONDS.custom
      local tk = {id = task.id, start = t, finish = t + seconds, seconds = seconds, estimated = estimated,
                  halt = task.halt_on_error or false}
      s.tasks[#s.tasks + 1] = tk
      if tk.finish >= finish then finish, longest = tk.finish, tk end
    end
    s.finish = finish
    out.steps[#out.steps + 1] = s
    if longest then ends[#ends + 1] = {finish = finish, chain = {table.unpack(critical)}, last = longest.id, background = s.background} end
    if not s.background then
      if longest then critical[#critical + 1] = longest.id end
      t = finish
    end
  end
  -- The run ends when the last task ends, background ones included.
  local best = {finish = t, chain = critical}
  for _, e in ipairs(ends) do
    if e.finish > best.finish then
      local chain = e.chain
      chain[#chain + 1] = e.last
      best = {finish = e.finish, chain = chain}
    end
  end
  out.makespan = best.finish
  out.critical_path = best.chain
  return out
end

local function secs(x)
  if x >= 60 then return fmt("%dm%02ds", x // 60, math.floor(x % 60 + 0.5)) end
  return fmt("%gs", math.floor(x * 10 + 0.5) / 10)
end
M.format_seconds = secs

-- Text: one block per step, tasks side by side as a tree, background lanes and halts marked.
function M.text(workflow, sched_)
  local lines = {fmt("workflow %s: %d steps, predicted %s", workflow.name, #workflow.steps, secs(sched_.makespan))}
  local on_path = {}
  for _, id in ipairs(sched_.critical_path) do on_path[id] = true end
  for i, s in ipairs(sched_.steps) do
    local marks = {}
    if s.background then marks[#marks + 1] = "background: later steps start once its tasks have started" end
    if s.halt then marks[#marks + 1] = "halt on error" end
    lines[#lines + 1] = fmt("%d. step %s  %s-%s%s", i, s.name, secs(s.start), secs(s.finish),
      #marks > 0 and ("  [" .. table.concat(marks, "; ") .. "]") or "")
    for j, tk in ipairs(s.tasks) do
      local branch = j == #s.tasks and "└─" or "├─"
      lines[#lines + 1] = fmt("   %s %-36s %8s%s%s%s", branch, tk.id, (tk.estimated and "~" or "") .. secs(tk.seconds),
        tk.halt and "  halt on error" or "", on_path[tk.id] and "  *critical" or "",
        s.background and "  ↷ runs on" or "")
    end
  end
  lines[#lines + 1] = fmt("critical path: %s", table.concat(sched_.critical_path, " → "))
  return table.concat(lines, "\n") .. "\n"
end

function M.json(workflow, sched_)
  local steps = {}
  for i, s in ipairs(sched_.steps) do
    local tasks = {}
    for j, tk in ipairs(s.tasks) do tasks[j] = tk end
    steps[i] = {name = s.name, start = s.start, finish = s.finish, background = s.background, halt_on_error = s.halt,
                tasks = json.array(tasks)}
  end
  return json.encode({workflow = workflow.name, makespan = sched_.makespan,
                      critical_path = json.array(sched_.critical_path), steps = json.array(steps)},
                     {sort_keys = true, indent = 2}) .. "\n"
end

-- plan.build(path, {workflow=, env=, durations=}) -> schedule, workflow, model or nil, errors
function M.build(path, opts)
  local template = require "moonship.template"
  local model, problems = template.load(path, {env = opts.env, custom_kinds = opts.custom_kinds})
  if not model then return nil, problems end
  local wf, err = template.workflow(model, opts.workflow)
  if not wf then return nil, {err} end
  return M.schedule(wf, opts.durations), wf, model
end

return M
