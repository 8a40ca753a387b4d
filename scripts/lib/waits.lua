-- scripts/bench-waits [N] [TIME_SCALE]: how close moonship's readiness waits come to the server.
-- Applies N Deployments at once on a fresh kubesim and waits for each through the shared watches;
-- an observer process of its own (this script with --observe) watches the server and records when
-- it first reported each one fully available. Prints the last server report, the last wait's
-- return, and how long after the server's report each wait returned (p50, max): the client, not
-- the simulator's own lag. Both sides read the same monotonic clock (uv_hrtime).
local fs = require "moonship.fs"
local kube = require "moonship.kube"
local process = require "moonship.process"
local sched = require "moonship.sched"
local sim_mod = require "moonship.kube.sim"

local function available(d)
  local st = d.status or {}
  return st.availableReplicas == 2 and st.updatedReplicas == 2 and st.replicas == 2
    and (st.observedGeneration or 0) >= (d.metadata.generation or 0)
end

if arg[1] == "--observe" then -- the observer: "synced", then "NAME SECONDS" per Deployment
  local observer = assert(kube.connect {kubeconfig = arg[2]})
  local want, seen, done = math.tointeger(tonumber(arg[3])), 0, {}
  io.stdout:setvbuf("line")
  for ev in observer:watch("apps/v1", "Deployment", {namespace = "default", sync_events = true}) do
    if ev.type == "SYNCED" then
      print("synced")
    elseif not done[ev.object.metadata.name] and available(ev.object) then
      done[ev.object.metadata.name] = true
      print(ev.object.metadata.name, string.format("%.6f", sched.now()))
      seen = seen + 1
      if seen == want then break end
    end
  end
  observer:close()
  return
end

local N = math.tointeger(tonumber(arg[1] or "200")) or 200
local SCALE = tonumber(arg[2] or "0.05")
local dir = assert(fs.mkdtemp("moonship-waits-"))
local scenario = dir .. "/scenario.yaml"
assert(fs.write(scenario, "defaults: {start_delay: 2, ready_delay: 18}\n"))

local sim = assert(sim_mod.start {scenario = scenario, time_scale = SCALE, dir = dir})
local _ <close> = setmetatable({}, {__close = function() sim:stop() end})
local client = assert(kube.connect {kubeconfig = sim.kubeconfig})
local observer = assert(process.spawn {
  argv = {os.getenv("MOONSHIP_BIN") or "build/moonship", "run", arg[0], "--observe", sim.kubeconfig, tostring(N)},
  stdout = "pipe", stderr = "inherit", kill_on_close = "TERM",
})
assert(observer:read_line() == "synced", "the observer did not start")
local available_at, ready_at = {}, {}
local t0 = sched.now()
local reader = sched.spawn(function()
  for _ = 1, N do
    local line = observer:read_line()
    if not line then break end
    local name, t = line:match("^(%S+)%s+(%S+)$")
    available_at[name] = tonumber(t) - t0
  end
end)
local group = sched.group()
for i = 1, N do
  group:spawn(function()
    local name = "d" .. i
    local live = assert(client:apply {
      apiVersion = "apps/v1", kind = "Deployment", metadata = {name = name, namespace = "default"},
      spec = {replicas = 2, selector = {matchLabels = {app = name}},
              template = {metadata = {labels = {app = name}}, spec = {containers = {{name = "main", image = "nginx"}}}}},
    })
    assert(client:wait_ready(live, {timeout = 600}))
    ready_at[name] = sched.now() - t0
  end)
end
for _, outcome in ipairs(group:wait()) do assert(outcome[1], outcome[2]) end
reader:join()
observer:wait()
observer:close()
local lags, last_available, last_ready = {}, 0, 0
for i = 1, N do
  local name = "d" .. i
  lags[i] = ready_at[name] - available_at[name]
  last_available = math.max(last_available, available_at[name])
  last_ready = math.max(last_ready, ready_at[name])
end
table.sort(lags)
print(string.format("%d Deployments, rollout %.2f s real: server reported the last available at %.3f s, " ..
  "the last wait returned at %.3f s (x%.3f); a wait returned after the server's report by p50 %.1f ms, max %.1f ms; " ..
  "%d requests (%.2f per Deployment)",
  N, 20 * SCALE, last_available, last_ready, last_ready / last_available, lags[(N + 1) // 2] * 1000, lags[N] * 1000,
  client.counters.requests, client.counters.requests / N))
client:close()
