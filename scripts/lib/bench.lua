-- scripts/bench (run by `moonship run`): moonship against the critical-path bound and against
-- a kubectl script, on kubesim (or, with --cluster real, on a real control plane, whose CPU
-- and request counters are read too), per workload; one table on stdout and --json PATH.
package.path = (arg[0]:match("^(.*)/[^/]*$") or ".") .. "/?.lua;" .. package.path
local H = require "harness"
local peer = require "peer"
local json = require "moonship.json"
local sched = require "moonship.sched"

local fmt = string.format

local USAGE = [==[
usage: scripts/bench [--quick] [--json PATH] [--reps N] [--huge-reps N] [--time-scale F]
                     [--workloads seed,wide,huge] [--no-peer] [--huge-peer] [--keep]
                     [--cluster kubesim|real [--controller-qps N]]
  --quick        tiny sizes, one repetition (the test suite runs this)
  --reps N       repetitions of seed and wide (default 3); --huge-reps for huge (default 1)
  --time-scale F real seconds per simulated second (default 0.1)
  --no-peer      skip the kubectl script
  --huge-peer    also run the kubectl script on huge (4,000 kubectl processes: ~10 CPU minutes)
  --cluster real a real control plane per run (tests/realcluster: $MOONSHIP_REALCLUSTER, else
                 scripts/real-cluster --build-only's) instead of kubesim, and its CPU time and
                 request counters per task; huge only when --workloads names it
  --controller-qps N  the real control plane's controller manager and scheduler may send N
                 requests/s (default theirs: 20/s, which paces wide's rollouts whatever the tool)]==]

local opts, err = H.options(arg, {
  quick = {flag = true}, json = {}, reps = {number = true, default = 3}, ["huge-reps"] = {number = true, default = 1},
  ["time-scale"] = {number = true, default = 0.1}, workloads = {}, cluster = {default = "kubesim"},
  ["controller-qps"] = {number = true},
  ["no-peer"] = {flag = true}, ["huge-peer"] = {flag = true}, keep = {flag = true}, help = {flag = true},
})
if not opts or opts.help then
  io.stderr:write((err and ("bench: " .. err .. "\n") or ""), USAGE, "\n")
  return opts and 0 or 2
end
local real = opts.cluster == "real"
if not real and opts.cluster ~= "kubesim" then
  io.stderr:write("bench: --cluster is kubesim or real\n", USAGE, "\n")
  return 2
end
if real and not H.exists(H.realcluster) then
  io.stderr:write("bench: no real control plane at ", H.realcluster,
                  ": build it with scripts/real-cluster --build-only, or set MOONSHIP_REALCLUSTER\n")
  return 2
end
if not H.exists(H.time) then
  io.stderr:write("bench: /usr/bin/time is needed (apt-get install time)\n")
  return 2
end
local with_peer = not opts["no-peer"] and H.exists(H.kubectl)
if not opts["no-peer"] and not with_peer then io.stderr:write("bench: no kubectl 1.32: peer skipped\n") end

local SIZES = {
  seed = {reps = opts.reps},
  wide = {steps = 10, per_step = 20, reps = opts.reps},
  huge = {steps = 20, per_step = 100, reps = opts["huge-reps"]},
}
if opts.quick then
  SIZES = {seed = {reps = 1}, wide = {steps = 3, per_step = 4, reps = 1}, huge = {steps = 4, per_step = 8, reps = 1}}
end
local scale = opts["time-scale"]
if opts.quick and scale == 0.1 then scale = 0.02 end

local root = H.tmpdir("moonship-bench")
local results = {time_scale = scale, quick = opts.quick or false, moonship = H.moonship, kubesim = H.kubesim,
                 kubectl = with_peer and H.kubectl or nil, workloads = {}}
-- The real control plane's binary, hard-linked (else copied) into the bench's directory: every
-- run starts the same one, even if a build replaces it meanwhile.
local cluster_binary
if real then
  results.cluster, results.realcluster, results.kubesim = "real", H.realcluster, nil
  cluster_binary = root .. "/realcluster"
  if not os.execute(fmt("ln -f %s %s 2>/dev/null || cp %s %s", H.quote(H.realcluster), H.quote(cluster_binary),
                        H.quote(H.realcluster), H.quote(cluster_binary))) then
    error("cannot copy " .. H.realcluster, 0)
  end
end

local function log(...) io.stderr:write(fmt(...), "\n") io.stderr:flush() end

-- On the real control plane: a pause after its start (its controllers settle), the span over
-- which its idle CPU rate is measured, and the pause after the tool's exit before the counters
-- are read (the server counts a watch when it ends, and the controllers finish what the last
-- requests started).
local SETTLE_S, IDLE_S, TAIL_S = 1, 3, 0.5

-- One run of one tool: returns a table of raw figures.
local function one_run(w, tool, rep, bound, serial)
  local dir = fmt("%s/%s-%s-%d", root, w.name, tool, rep)
  local sim
  if real then
    sim = H.start_cluster {dir = dir, scenario = w.scenario, time_scale = scale, seed = 1000 + rep,
                           max_pods = math.max(250, 2 * #w.tasks), binary = cluster_binary,
                           controller_qps = opts["controller-qps"]}
  else
    sim = H.start_sim {dir = dir, scenario = w.scenario, time_scale = scale, seed = 1000 + rep}
  end
  local r, server
  local ok, e = pcall(function()
    if real then
      server = {}
      sched.sleep(SETTLE_S)
      server.m0 = sim:metrics()
      local c, t = sim:cpu_s(), sched.now()
      sched.sleep(IDLE_S)
      server.cpu0, server.t0 = sim:cpu_s(), sched.now()
      server.idle_rate = (server.cpu0 - c) / (server.t0 - t)
    end
    if tool == "moonship" then
      -- Without the client-side limit (100 requests/s by default): kubesim runs time 10x
      -- faster than life, so huge asks ~670 requests/s where real durations ask ~67 (each of
      -- the peer's kubectl processes has a limiter of its own, which two requests never reach).
      r = H.deploy(w, sim, {rusage = true, extra = {"--qps", "0"}})
      r.ok = r.code == 0 and r.run_finished and r.run_finished.state == "succeeded"
    else
      local timelog = dir .. "/kubectl-times.log"
      r = H.run_child {argv = {"bash", w.peer, sim.kubeconfig, timelog}, rusage = true}
      r.ok = r.code == 0
      local peak, n = peer.peak_rss(timelog)
      r.peak_rss_mb, r.processes = peak, n
    end
    if real then
      sched.sleep(TAIL_S)
      server.cpu1, server.t1 = sim:cpu_s(), sched.now()
      local m0, m1 = server.m0, sim:metrics()
      local by_verb = {}
      for verb, v in pairs(m1.by_verb) do
        if v - (m0.by_verb[verb] or 0) > 0 then by_verb[verb] = v - (m0.by_verb[verb] or 0) end
      end
      -- the tool's requests: those that authenticated with the kubeconfig's bearer token
      r.stats = {requests_total = m1.token_requests - m0.token_requests,
                 server_requests_total = m1.requests_total - m0.requests_total, server_requests_by_verb = by_verb}
    else
      r.stats = sim:stats()
    end
  end)
  sim:stop()
  if not ok then error(e, 0) end
  if not r.ok then
    log("bench: %s %s run %d failed (exit %s): %s", w.name, tool, rep, tostring(r.code), r.stderr:sub(-2000))
  end
  local ntasks = #w.tasks
  local out = {
    ok = r.ok, exit_code = r.code,
    makespan_s = r.wall,
    run_s = r.run_finished and r.run_finished.t or nil,
    critical_path_s = bound * scale,
    ratio_to_bound = r.wall / (bound * scale),
    ratio_to_serial = r.wall / (serial * scale),
    requests_per_task = r.stats.requests_total / ntasks,
    requests_total = r.stats.requests_total,
    cpu_s = r.cpu_s, peak_rss_mb = r.peak_rss_mb,
    processes = r.processes,
    requests_by_verb = r.stats.requests_by_verb,
  }
  if real then
    -- the control plane's CPU over the tool's run and the pause after it; net: less the idle
    -- rate over as long
    local cpu, span = server.cpu1 - server.cpu0, server.t1 - server.t0
    out.server_cpu_s = cpu
    out.server_cpu_per_task = cpu / ntasks
    out.server_net_cpu_per_task = (cpu - server.idle_rate * span) / ntasks
    out.server_idle_cpu_per_s = server.idle_rate
    out.server_requests_total = r.stats.server_requests_total
    out.server_requests_per_task = r.stats.server_requests_total / ntasks
    out.server_requests_by_verb = r.stats.server_requests_by_verb
  end
  return out
end

local METRICS = {"makespan_s", "critical_path_s", "ratio_to_bound", "ratio_to_serial", "requests_per_task", "cpu_s", "peak_rss_mb"}
local SERVER_METRICS = {"server_cpu_per_task", "server_net_cpu_per_task", "server_idle_cpu_per_s",
                        "server_requests_per_task"}
if real then table.move(SERVER_METRICS, 1, #SERVER_METRICS, #METRICS + 1, METRICS) end

local function aggregate(runs)
  local out = {runs = #runs, ok = 0, exit_codes = json.array({})}
  for _, r in ipairs(runs) do
    if r.ok then out.ok = out.ok + 1 end
    out.exit_codes[#out.exit_codes + 1] = r.exit_code or -1
  end
  for _, m in ipairs(METRICS) do
    local v = {}
    for _, r in ipairs(runs) do v[#v + 1] = r[m] end
    out[m] = H.summary(v)
  end
  out.requests_by_verb = runs[#runs] and runs[#runs].requests_by_verb
  if real then out.server_requests_by_verb = runs[#runs] and runs[#runs].server_requests_by_verb end
  -- each run's own figures too: the first moonship run of a workload has no journal of an
  -- earlier one, so it starts the tasks of a step in template order, not longest first
  out.each = json.array({})
  for i, r in ipairs(runs) do
    out.each[i] = {makespan_s = r.makespan_s, ratio_to_bound = r.ratio_to_bound, cpu_s = r.cpu_s,
                   peak_rss_mb = r.peak_rss_mb, requests_per_task = r.requests_per_task}
    if real then
      for _, m in ipairs(SERVER_METRICS) do out.each[i][m] = r[m] end
    end
  end
  return out
end

local order = {}
local workloads = opts.workloads or "seed,wide,huge"
if real and not opts.workloads then
  workloads = "seed,wide"
  log("bench: huge skipped on the real control plane (2,000 pods on one process with etcd, and the " ..
      "controllers' real-time pace): ask for it with --workloads seed,wide,huge")
end
for name in workloads:gmatch("[^,]+") do order[#order + 1] = name end

for _, name in ipairs(order) do
  local size = SIZES[name]
  if not size then error("unknown workload " .. name, 0) end
  local wdir = fmt("%s/%s", root, name)
  os.execute("mkdir -p " .. H.quote(wdir))
  local w
  if name == "seed" then
    w = H.seed_workload(wdir)
  else
    w = H.generated_workload(wdir, {name = name, steps = size.steps, per_step = size.per_step, seed = 7,
                                    background = 1})
  end
  local bound, serial, path = H.bounds(w)
  log("bench: %s: %d tasks, bound %.1f s, serial %.1f s (simulated), time scale %g%s", name, #w.tasks, bound, serial,
      scale, real and ", real control plane" or "")
  local run_peer = with_peer and (name ~= "huge" or opts["huge-peer"] or opts.quick)
  if run_peer then w.peer = peer.generate(w, wdir .. "/peer") end
  local entry = {tasks = #w.tasks, bound_sim_s = bound, serial_sim_s = serial, critical_path = json.array(path)}
  for _, tool in ipairs(run_peer and {"moonship", "peer"} or {"moonship"}) do
    local runs = {}
    for rep = 1, size.reps do
      local r = one_run(w, tool, rep, bound, serial)
      log("bench: %s %s #%d: %.2f s (bound %.2f), %.1f req/task, cpu %.2f s, rss %.1f MB%s%s", name, tool, rep,
          r.makespan_s, r.critical_path_s, r.requests_per_task, r.cpu_s or -1, r.peak_rss_mb or -1,
          real and fmt("; server %.1f req/task, cpu %.3f s/task (net %.3f; idle %.3f s/s)", r.server_requests_per_task,
                       r.server_cpu_per_task, r.server_net_cpu_per_task, r.server_idle_cpu_per_s) or "",
          r.ok and "" or "  FAILED")
      runs[#runs + 1] = r
    end
    local agg = aggregate(runs)
    if tool == "moonship" then
      for k, v in pairs(agg) do entry[k] = v end
    else
      entry.peer = agg
    end
  end
  if entry.peer then
    local ratios = {}
    local compared = {"makespan_s", "requests_per_task", "cpu_s", "peak_rss_mb"}
    if real then
      for _, m in ipairs {"server_cpu_per_task", "server_net_cpu_per_task", "server_requests_per_task"} do
        compared[#compared + 1] = m
      end
    end
    for _, m in ipairs(compared) do
      if entry[m] and entry.peer[m] and entry.peer[m].median > 0 then
        ratios[m] = math.floor(entry[m].median / entry.peer[m].median * 10000 + 0.5) / 10000
      end
    end
    entry.moonship_over_peer = ratios
  end
  results.workloads[name] = entry
end

-- The table.
local function cell(s, digits)
  if not s then return "-" end
  local f = "%." .. digits .. "f"
  if s.n and s.n > 1 then return fmt(f .. " [" .. f .. "-" .. f .. "]", s.median, s.min, s.max) end
  return fmt(f, s.median)
end
local head = fmt("%-6s %-9s %-22s %-8s %-20s %-8s %-18s %-18s %-18s", "load", "tool", "makespan s", "bound s",
                 "x bound", "x serial", "requests/task", "cpu s", "peak rss MB")
if real then
  head = head .. fmt(" %-18s %-22s %-22s", "srv requests/task", "srv cpu s/task", "srv net cpu s/task")
  print("real control plane (tests/realcluster: etcd, kube-apiserver, controllers, scheduler and simulated nodes in " ..
        "one process); requests/task: the tool's (bearer-token authentications); srv requests/task: all that " ..
        "apiserver_request_total counted; srv cpu: that process's, over the tool's run + " .. TAIL_S ..
        " s; net: less its idle rate")
end
print(fmt("time scale %g (real seconds per simulated second); median [min-max] over the runs", scale))
print(head)
for _, name in ipairs(order) do
  local e = results.workloads[name]
  for _, tool in ipairs {"moonship", "peer"} do
    local s = tool == "moonship" and e or e.peer
    if s then
      local row = fmt("%-6s %-9s %-22s %-8.2f %-20s %-8s %-18s %-18s %-18s", name,
                      tool .. (s.ok < s.runs and "!" or ""), cell(s.makespan_s, 2), e.critical_path_s.median,
                      cell(s.ratio_to_bound, 3), fmt("%.3f", s.ratio_to_serial.median), cell(s.requests_per_task, 1),
                      cell(s.cpu_s, 2), cell(s.peak_rss_mb, 1))
      if real then
        row = row .. fmt(" %-18s %-22s %-22s", cell(s.server_requests_per_task, 1), cell(s.server_cpu_per_task, 3),
                         cell(s.server_net_cpu_per_task, 3))
      end
      print(row)
    end
  end
  local r = e.moonship_over_peer
  if r then
    print(fmt("%-6s %-9s makespan %.3f, requests %.3f, cpu %.3f, peak rss %.3f", name, "ms/peer",
              r.makespan_s or 0, r.requests_per_task or 0, r.cpu_s or 0, r.peak_rss_mb or 0) ..
          (real and fmt("; server: requests %.3f, cpu %.3f, net cpu %.3f", r.server_requests_per_task or 0,
                        r.server_cpu_per_task or 0, r.server_net_cpu_per_task or 0) or ""))
  end
end

if opts.json then
  H.write(opts.json, json.encode(results, {sort_keys = true, indent = 2}) .. "\n")
  log("bench: wrote %s", opts.json)
end
if opts.keep then log("bench: kept %s", root) else H.rmdir(root) end
for _, e in pairs(results.workloads) do
  if e.ok < e.runs or (e.peer and e.peer.ok < e.peer.runs) then return 1 end
end
return 0
