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

return M
