-- Shared by scripts/bench, scripts/soak and scripts/interrupt-resume (run by `moonship run`):
-- the generated workloads (template + kubesim scenario + the durations they simulate), a kubesim
-- per run, the moonship child with its events and rusage, and small statistics.
local json = require "moonship.json"
local fs = require "moonship.fs"
local sched = require "moonship.sched"
local process = require "moonship.process"
local http = require "moonship.http"
local plan = require "moonship.model.plan"

local fmt = string.format

local H = {}

H.source_dir = os.getenv("MOONSHIP_SOURCE_DIR") or "."
H.moonship = os.getenv("MOONSHIP_BIN") or (H.source_dir .. "/build/moonship")
H.kubesim = os.getenv("MOONSHIP_KUBESIM") or (H.source_dir .. "/build/moonship-kubesim")
H.time = "/usr/bin/time"

local q = process.quote
H.quote = q

H.exists = fs.exists

-- A binary of scripts/real-cluster --build-only: in the build directory, else in build/ (where
-- the script puts it unless told otherwise, e.g. beside an ASan build in build-asan/).
function H.realcluster_binary(name)
  local path = (os.getenv("MOONSHIP_BUILD_DIR") or (H.source_dir .. "/build")) .. "/realcluster/" .. name
  if not H.exists(path) and H.exists(H.source_dir .. "/build/realcluster/" .. name) then
    path = H.source_dir .. "/build/realcluster/" .. name
  end
  return path
end

-- The peer's kubectl: the real control plane's release
H.kubectl = os.getenv("MOONSHIP_KUBECTL")
if not H.kubectl or H.kubectl == "" then H.kubectl = H.realcluster_binary("kubectl") end

function H.write(path, text)
  assert(fs.write(path, text))
  return path
end

H.read = fs.read -- text | nil, message

function H.sh(cmd)
  local ok = os.execute(cmd)
  return ok
end

function H.tmpdir(prefix)
  local p = assert(io.popen("mktemp -d /tmp/" .. (prefix or "moonship-bench") .. "-XXXXXX"))
  local d = p:read("l")
  p:close()
  return assert(d)
end

function H.rmdir(dir)
  if dir and dir:match("^/tmp/") then os.execute("rm -rf " .. q(dir)) end
end

---------------------------------------------------------------------------------------------
-- Workloads. Each is {name, dir, template, scenario, workflow, app, tasks = {ids in order},
-- durations = {id -> simulated seconds}, jobs = {id -> job name prefix}, objects = count}.
-- Durations are exact (jitter 0), so the critical-path bound is exact for the scenario.

local function round2(x) return math.floor(x * 100 + 0.5) / 100 end

-- The shop example (examples/shop) at realistic durations.
function H.seed_workload(dir)
  local text = assert(H.read(H.source_dir .. "/examples/shop/moonship.yaml"))
  H.write(dir .. "/moonship.yaml", text)
  H.write(dir .. "/scenario.yaml", [[
# the shop at realistic durations (simulated seconds), no jitter: the bound is exact
defaults: {start_delay: 1, ready_delay: 1, jitter: 0}
workloads:
  frontend: {start_delay: 5, ready_delay: 35}
  backend: {start_delay: 5, ready_delay: 25}
  "migrate-*": {start_delay: 1, duration: 14, logs: ["migrating schema to v42", "migration done"]}
  "scrub-*": {start_delay: 1, duration: 4, logs: ["scrubbing test data", "scrubbed 1,204 rows"]}
]])
  return {
    name = "seed", dir = dir, app = "shop", workflow = "deploy",
    template = dir .. "/moonship.yaml", scenario = dir .. "/scenario.yaml",
    tasks = {"services.frontend", "jobs.migrate", "jobs.scrub", "services.backend"},
    durations = {["services.frontend"] = 40, ["jobs.migrate"] = 15, ["jobs.scrub"] = 5, ["services.backend"] = 30},
    jobs = {["jobs.migrate"] = "migrate", ["jobs.scrub"] = "scrub"},
  }
end

-- services in steps of `per_step`, rollout durations uniform in [lo, hi] (seeded), step
-- `background` (default 1) with wait_for_finish: false; every `job_every`-th task a job.
function H.generated_workload(dir, o)
  local rng_seed = o.seed or 1
  math.randomseed(rng_seed)
  local lo, hi = o.lo or 1, o.hi or 3
  local w = {name = o.name, dir = dir, app = o.app or o.name, workflow = "deploy",
             template = dir .. "/moonship.yaml", scenario = dir .. "/scenario.yaml",
             tasks = {}, durations = {}, jobs = {}}
  local svc, jobs, steps, sc = {}, {}, {}, {}
  local n = 0
  for s = 1, o.steps do
    local tasks = {}
    for _ = 1, o.per_step do
      n = n + 1
      local d = round2(lo + (hi - lo) * math.random())
      if o.job_every and n % o.job_every == 0 then
        local name = fmt("job%04d", n)
        jobs[#jobs + 1] = fmt("- name: %s\n  image: example/task:1\n  command: [\"/bin/task\"]\n  completed_timeout: 600\n", name)
        sc[#sc + 1] = fmt("  \"%s-*\": {start_delay: %s, duration: %s}", name, round2(d * 0.2), round2(d - round2(d * 0.2)))
        local id = "jobs." .. name
        tasks[#tasks + 1] = id
        w.durations[id], w.jobs[id] = d, name
      else
        local name = fmt("svc%04d", n)
        svc[#svc + 1] = fmt("- name: %s\n  image: example/%s:1\n  ports:\n  - type: container_port\n    port: 8080\n", name, name)
        sc[#sc + 1] = fmt("  %s: {start_delay: %s, ready_delay: %s}", name, round2(d * 0.3), round2(d - round2(d * 0.3)))
        local id = "services." .. name
        tasks[#tasks + 1] = id
        w.durations[id] = d
      end
      w.tasks[#w.tasks + 1] = tasks[#tasks]
    end
    local bg = s == (o.background or 1) and "  wait_for_finish: false\n" or ""
    steps[#steps + 1] = fmt("- step: s%02d\n%s  tasks:\n%s", s, bg,
      table.concat((function()
        local t = {}
        for i, id in ipairs(tasks) do t[i] = "  - " .. id end
        return t
      end)(), "\n") .. "\n")
  end
  local out = {fmt("# generated by scripts/lib/harness.lua: %d tasks in %d steps\napp: %s\n", n, o.steps, w.app),
               "resources:\n  replicas: 1\n", "services:\n", table.concat(svc)}
  if #jobs > 0 then out[#out + 1] = "jobs:\n" .. table.concat(jobs) end
  out[#out + 1] = "workflows:\n- name: deploy\n  parallelize:\n" ..
    table.concat(steps):gsub("([^\n]+)", "  %1")
  H.write(w.template, table.concat(out))
  local scenario = {"# generated: exact durations (simulated seconds)", "defaults: {start_delay: 0.5, ready_delay: 0.5, jitter: 0}"}
  if o.faults then scenario[#scenario + 1] = o.faults end
  scenario[#scenario + 1] = "workloads:"
  for _, l in ipairs(sc) do scenario[#scenario + 1] = l end
  H.write(w.scenario, table.concat(scenario, "\n") .. "\n")
  return w
end

-- The critical-path bound and the serial sum of a workload, in simulated seconds.
function H.bounds(w)
  local sched_, _, err = plan.build(w.template, {workflow = w.workflow, durations = w.durations})
  if not sched_ then error("plan " .. w.template .. ": " .. json.encode(err)) end
  local serial = 0
  for _, id in ipairs(w.tasks) do serial = serial + w.durations[id] end
  return sched_.makespan, serial, sched_.critical_path
end

---------------------------------------------------------------------------------------------
-- kubesim, one per run.

local Sim = {}
Sim.__index = Sim

-- H.start_sim{dir=, scenario=, time_scale=, seed=} -> sim (url, kubeconfig, pid)
function H.start_sim(o)
  os.execute("mkdir -p " .. q(o.dir))
  local kc = o.dir .. "/kubeconfig"
  local log = o.dir .. "/kubesim.log"
  local argv = {"sh", "-c", 'exec "$@" 2>>' .. q(log), "sh", H.kubesim, "--listen", "127.0.0.1:0",
                "--kubeconfig-out", kc, "--time-scale", tostring(o.time_scale), "--seed", tostring(o.seed or 1)}
  if o.scenario then argv[#argv + 1] = "--scenario" argv[#argv + 1] = o.scenario end
  local p = assert(process.spawn {argv = argv, stdout = "pipe", stderr = "inherit", kill_on_close = "TERM"})
  local line = sched.timeout(20, function() return p:read_line() end)
  local url = line and line:match("listening on (%S+)")
  if not url then
    p:kill("KILL")
    p:wait()
    error("kubesim did not start: " .. tostring(line) .. " " .. (H.read(log) or ""))
  end
  local self = setmetatable({proc = p, url = url, kubeconfig = kc, dir = o.dir, pid = p:pid(), log = log}, Sim)
  -- kubesim prints nothing more on stdout without -v; drain it anyway so it never blocks
  self.drain = sched.spawn(function() while p:read_line() do end end)
  return self
end

function Sim:get(path)
  local r, err = http.request {method = "GET", url = self.url .. path, timeout = 30}
  if not r then return nil, err end
  if r.status ~= 200 then return nil, fmt("GET %s: %d", path, r.status) end
  return json.decode(r.body)
end

function Sim:stats() return assert(self:get("/kubesim/stats")) end

function Sim:stop()
  if not self.proc then return end
  self.proc:kill("TERM")
  sched.timeout(10, function() self.proc:wait() end)
  if not self.proc:exited() then self.proc:kill("KILL") self.proc:wait() end
  self.proc:close()
  self.proc = nil
end

---------------------------------------------------------------------------------------------
-- The real control plane (tests/realcluster, docs/realcluster.md), one per run: etcd,
-- kube-apiserver, the controller manager, the scheduler and the simulated nodes, all in one
-- process. H.realcluster is its binary: $MOONSHIP_REALCLUSTER, else the build directory's
-- (scripts/real-cluster --build-only), else build/'s.

H.realcluster = os.getenv("MOONSHIP_REALCLUSTER")
if not H.realcluster or H.realcluster == "" then H.realcluster = H.realcluster_binary("realcluster") end

local clock_ticks
-- CPU seconds (user + system, all threads) of process pid so far, from /proc/PID/stat.
function H.proc_cpu_s(pid)
  if not clock_ticks then
    local p = io.popen("getconf CLK_TCK 2>/dev/null")
    clock_ticks = tonumber(p and p:read("l") or "") or 100
    if p then p:close() end
  end
  local stat = H.read("/proc/" .. pid .. "/stat")
  if not stat then return nil end
  -- the fields after "(comm)": state is field 3, utime 14, stime 15
  local f = {}
  for x in stat:match("%) (.*)$"):gmatch("%S+") do f[#f + 1] = x end
  return (tonumber(f[12]) + tonumber(f[13])) / clock_ticks
end

local Cluster = setmetatable({}, {__index = Sim})
Cluster.__index = Cluster

-- H.start_cluster{dir=, scenario=, time_scale=, seed=, max_pods=, binary=} -> cluster (url,
-- kubeconfig, pid); a Sim otherwise (stop). Its parent is this process: it dies with it.
function H.start_cluster(o)
  os.execute("mkdir -p " .. q(o.dir))
  local kc = o.dir .. "/kubeconfig"
  local log = o.dir .. "/realcluster.log"
  local argv = {"sh", "-c", 'exec "$@" 2>>' .. q(log), "sh", o.binary or H.realcluster, "--kubeconfig-out", kc,
                "--time-scale", tostring(o.time_scale), "--seed", tostring(o.seed or 1),
                "--max-pods", tostring(o.max_pods or 250)}
  if o.scenario then argv[#argv + 1] = "--scenario" argv[#argv + 1] = o.scenario end
  if o.controller_qps then argv[#argv + 1] = "--controller-qps" argv[#argv + 1] = tostring(o.controller_qps) end
  local p = assert(process.spawn {argv = argv, stdout = "pipe", stderr = "inherit", kill_on_close = "TERM"})
  local line = sched.timeout(120, function() return p:read_line() end)
  local url = line and line:match("listening on (%S+)")
  if not url then
    p:kill("KILL")
    p:wait()
    error("realcluster did not start: " .. tostring(line) .. " " .. (H.read(log) or ""):sub(-2000))
  end
  local self = setmetatable({proc = p, url = url, kubeconfig = kc, dir = o.dir, pid = p:pid(), log = log}, Cluster)
  self.drain = sched.spawn(function() while p:read_line() do end end)
  -- /metrics is read as the admin of the kubeconfig's client-certificate context: the bench's
  -- own requests never go through the bearer-token authenticator, whose cache counts the tool's
  self.admin = assert(require("moonship.kube").connect {kubeconfig = kc, context = "realcluster-cert", qps = 0})
  return self
end

function Cluster:cpu_s() return H.proc_cpu_s(self.pid) end

-- The counters of kube-apiserver's /metrics that the bench reads: requests_total (the sum of
-- apiserver_request_total: every request the server counted, whoever made it), by_verb, and
-- token_requests (authentication_token_cache_request_total, hit + miss: one per request that
-- authenticated with a bearer token; only the kubeconfig's user does here).
function Cluster:metrics()
  local r, err = self.admin:request("GET", "/metrics", nil, {accept = "text/plain"})
  if not r then error("realcluster /metrics: " .. tostring(err), 0) end
  local m = {requests_total = 0, token_requests = 0, by_verb = {}}
  for line in r.body:gmatch("[^\n]+") do
    if line:sub(1, 24) == "apiserver_request_total{" then
      local v = tonumber(line:match("} (%S+)$")) or 0
      local verb = line:match('verb="([^"]*)"') or "?"
      m.requests_total = m.requests_total + v
      m.by_verb[verb] = (m.by_verb[verb] or 0) + v
    elseif line:sub(1, 40) == "authentication_token_cache_request_total" then
      m.token_requests = m.token_requests + (tonumber(line:match("} (%S+)$")) or 0)
    end
  end
  return m
end

function Cluster:stop()
  if self.admin then self.admin:close() self.admin = nil end
  Sim.stop(self)
end

---------------------------------------------------------------------------------------------
-- Children.

-- Runs the command given as its arguments and writes bash's `times` to the file $0: the CPU
-- time of what it waited for (the command and its children), to the millisecond.
local CPU_WRAPPER = '"$@"; rc=$?; times >"$0"; exit $rc'

-- H.run_child{argv=, env_extra=, on_line=fn(line, p) (stdout), rusage=true, cwd=}
-- -> {code=, signal=, wall=, stdout_lines=n, stderr=, cpu_s=, peak_rss_mb=}
-- With rusage, the child runs under /usr/bin/time for its peak RSS (children included), and
-- its CPU time comes from bash's `times` in between: /usr/bin/time prints user and system
-- time in hundredths, which reads a seed deploy's ~10 ms as 0.00 or 0.01.
function H.run_child(o)
  local argv, timefile, cpufile = o.argv, nil, nil
  if o.rusage then
    timefile, cpufile = os.tmpname(), os.tmpname()
    argv = {H.time, "-f", "%e %M", "-o", timefile, "bash", "-c", CPU_WRAPPER, cpufile}
    for _, a in ipairs(o.argv) do argv[#argv + 1] = a end
  end
  -- its own process group (setsid execs in place: the pid is the child's), so that whatever
  -- it started (the peer's kubectl processes) goes with it if this run is cancelled
  table.insert(argv, 1, "setsid")
  local t0 = sched.now()
  local p = assert(process.spawn {argv = argv, env_extra = o.env_extra, cwd = o.cwd, stdout = "pipe",
                                  stderr = "pipe", kill_on_close = "KILL"})
  local pgid, reaped = p:pid(), false
  local _ <close> = setmetatable({}, {__close = function()
    if not reaped then os.execute("kill -KILL -- -" .. pgid .. " 2>/dev/null") end
  end})
  local errbuf = {}
  local drain = sched.spawn(function()
    while true do
      local chunk = p:read("stderr")
      if not chunk then break end
      errbuf[#errbuf + 1] = chunk
    end
  end)
  local n = 0
  while true do
    local line = p:read_line()
    if not line then break end
    n = n + 1
    if o.on_line then o.on_line(line, p, n) end
  end
  local code, signal = p:wait()
  reaped = true
  local wall = sched.now() - t0
  drain:join()
  p:close()
  local r = {code = code, signal = signal, wall = wall, lines = n, stderr = table.concat(errbuf)}
  if timefile then
    local t = H.read(timefile) or ""
    os.remove(timefile)
    -- /usr/bin/time writes "Command exited with non-zero status N" first when it did
    local m = t:match("[%d.]+ (%d+)%s*$")
    if m then r.peak_rss_mb = tonumber(m) / 1024 end
    -- `times`: the shell's own user and system time, then its children's ("0m0.012s 0m0.004s")
    local c = H.read(cpufile) or ""
    os.remove(cpufile)
    local um, us, sm, ss = c:match("\n(%d+)m([%d.]+)s (%d+)m([%d.]+)s%s*$")
    if um then r.cpu_s = tonumber(um) * 60 + tonumber(us) + tonumber(sm) * 60 + tonumber(ss) end
  end
  return r
end

-- Runs `moonship deploy` of workload w against sim; returns the child result plus events
-- (decoded), run_finished, and the final state of each task.
-- o: extra = {args}, interrupt_after = k (SIGINT after the k-th event), rusage = bool
function H.deploy(w, sim, o)
  o = o or {}
  local argv = {H.moonship, "deploy", w.template, "-w", w.workflow, "--kubeconfig", sim.kubeconfig, "-o", "json"}
  for _, a in ipairs(o.extra or {}) do argv[#argv + 1] = a end
  local events, sent = {}, false
  local r = H.run_child {argv = argv, rusage = o.rusage, on_line = function(line, p)
    local ok, ev = pcall(json.decode, line)
    if ok and type(ev) == "table" and ev.event then
      events[#events + 1] = ev
      if o.interrupt_after and not sent and #events >= o.interrupt_after then
        sent = true
        p:kill("INT")
      end
    end
  end}
  r.events = events
  r.interrupted_sent = sent
  r.final = {}
  r.started = {}
  for _, ev in ipairs(events) do
    if ev.event == "task_finished" then r.final[ev.task] = ev.state end
    if ev.event == "task_started" then r.started[ev.task] = (r.started[ev.task] or 0) + 1 end
    if ev.event == "run_finished" then r.run_finished = ev end
    if ev.event == "run_started" then r.run_id = ev.run end
  end
  return r
end

---------------------------------------------------------------------------------------------
-- The objects in the simulated cluster that a workload owns: kind -> {name -> true}.
function H.cluster_objects(sim, ns)
  ns = ns or "default"
  local out = {}
  for kind, path in pairs {Deployment = "/apis/apps/v1/namespaces/%s/deployments",
                           Service = "/api/v1/namespaces/%s/services",
                           Job = "/apis/batch/v1/namespaces/%s/jobs"} do
    local list = assert(sim:get(fmt(path, ns)))
    out[kind] = {}
    for _, item in ipairs(list.items or {}) do out[kind][item.metadata.name] = true end
  end
  return out
end

---------------------------------------------------------------------------------------------
-- Statistics.

function H.summary(values)
  local v = {}
  for _, x in ipairs(values) do if x then v[#v + 1] = x end end
  if #v == 0 then return nil end
  table.sort(v)
  local med
  if #v % 2 == 1 then med = v[(#v + 1) // 2] else med = (v[#v // 2] + v[#v // 2 + 1]) / 2 end
  local function r(x) return math.floor(x * 10000 + 0.5) / 10000 end
  return {median = r(med), min = r(v[1]), max = r(v[#v]), n = #v}
end

-- Parses "--name value" / "--flag" options against defaults; returns opts or nil, message.
function H.options(args, spec)
  local o = {}
  for k, v in pairs(spec) do o[k] = v.default end
  local i = 1
  while i <= #args do
    local a = args[i]
    local name = a:match("^%-%-([%w-]+)$")
    local s = name and spec[name]
    if not s then return nil, "unknown option " .. a end
    if s.flag then
      o[name] = true
    else
      i = i + 1
      local v = args[i]
      if v == nil then return nil, "option " .. a .. " needs a value" end
      if s.number then v = tonumber(v) if not v then return nil, "option " .. a .. " needs a number" end end
      o[name] = v
    end
    i = i + 1
  end
  return o
end

return H
