-- Running `moonship deploy -o json` from a spec and reading its events: the run's JSON Lines
-- decoded, and the questions the workflow specs ask of them.
local json = require "moonship.json"
local proc = require "support.proc"

local M = {}

-- Decodes the JSON lines of text (other lines are ignored).
function M.decode(text)
  local events = {}
  for line in text:gmatch("[^\n]+") do
    if line:sub(1, 1) == "{" then
      local ev = json.decode(line)
      if type(ev) == "table" and ev.event then events[#events + 1] = ev end
    end
  end
  return events
end

-- deploy(sim, {args...}, env) -> exit code, events, stderr: the binary with -o json against sim.
function M.deploy(sim, args, env)
  local argv = {proc.moonship, "deploy"}
  for _, a in ipairs(args) do argv[#argv + 1] = a end
  for _, a in ipairs {"-o", "json", "--kubeconfig", sim.kubeconfig} do argv[#argv + 1] = a end
  argv.env = env
  local r = proc.run(argv)
  return r.code, M.decode(r.stdout), r.stderr, r.stdout
end

-- The first event with all the given fields, and its index.
function M.find(events, fields)
  for i, ev in ipairs(events) do
    local ok = true
    for k, v in pairs(fields) do if ev[k] ~= v then ok = false break end end
    if ok then return ev, i end
  end
end

function M.index_of(events, fields)
  local _, i = M.find(events, fields)
  return i
end

-- A task's last reported final state.
function M.final_state(events, task)
  local state
  for _, ev in ipairs(events) do
    if ev.event == "task_finished" and ev.task == task then state = ev.state end
  end
  return state
end

-- Every task's last final state, by task id.
function M.final_states(events)
  local states = {}
  for _, ev in ipairs(events) do
    if ev.event == "task_finished" then states[ev.task] = ev.state end
  end
  return states
end

-- The events of a run that pruned two objects after its one step (the engine's prune step), for
-- the views' specs: a fresh list each call.
function M.pruned_run()
  return {
    {event = "run_started", t = 0, run = "R3", workflow = "setup", app = "shop", namespace = "default", steps = 2,
     tasks = {"services.web", "prune"},
     plan = {{step = "apps", tasks = {"services.web"}}, {step = "prune", tasks = {"prune"}}}},
    {event = "step_started", t = 0, step = "apps", index = 1, tasks = {"services.web"}},
    {event = "task_started", t = 0, task = "services.web", step = "apps", attempt = 1},
    {event = "task_finished", t = 1, task = "services.web", step = "apps", state = "succeeded", attempt = 1},
    {event = "step_finished", t = 1, step = "apps", index = 1, state = "succeeded"},
    {event = "step_started", t = 1, step = "prune", index = 2, tasks = {"prune"}},
    {event = "task_started", t = 1, task = "prune", step = "prune", attempt = 1},
    {event = "task_progress", t = 1.5, task = "prune", step = "prune", phase = "deleted", message = "deleted deployment/worker",
     objects = {{kind = "Deployment", apiVersion = "apps/v1", name = "worker", namespace = "default", uid = "u1"}}},
    {event = "task_progress", t = 1.6, task = "prune", step = "prune", phase = "deleted", message = "deleted service/worker",
     objects = {{kind = "Service", apiVersion = "v1", name = "worker", namespace = "default", uid = "u2"}}},
    {event = "task_finished", t = 1.7, task = "prune", step = "prune", state = "succeeded", attempt = 1,
     message = "deleted 2 objects"},
    {event = "step_finished", t = 1.7, step = "prune", index = 2, state = "succeeded"},
    {event = "run_finished", t = 1.8, state = "succeeded", exit_code = 0, failed = 0},
  }
end

return M
