-- scripts/soak (run by `moonship run`): the wide workload under kubesim's faults, with several
-- seeds, bounded in time. Every run must give each task the outcome of the fault-free run, a
-- complete journal (every planned task with a final state, locally and in the ConfigMap), no
-- object applied under two names, and the fault-free run's exit code.
package.path = (arg[0]:match("^(.*)/[^/]*$") or ".") .. "/?.lua;" .. package.path
local H = require "harness"
local json = require "moonship.json"
local sched = require "moonship.sched"

local fmt = string.format

local USAGE = [[
usage: scripts/soak [--seeds N] [--max-seconds S] [--services N] [--steps N] [--time-scale F] [--quick] [--keep]
  --seeds N        runs under faults, one kubesim seed each (default 5)
  --max-seconds S  no new run starts after S seconds (default 300)
  --services N     tasks of the workload (default 60, every 10th a job), in --steps steps (default 6)
  --quick          20 tasks in 4 steps, 2 seeds, at most 60 s (the test suite)]]

local opts, err = H.options(arg, {
  seeds = {number = true, default = 5}, ["max-seconds"] = {number = true, default = 300},
  services = {number = true, default = 60}, steps = {number = true, default = 6},
  ["time-scale"] = {number = true, default = 0.05}, quick = {flag = true}, keep = {flag = true}, help = {flag = true},
})
if not opts or opts.help then
  io.stderr:write((err and ("soak: " .. err .. "\n") or ""), USAGE, "\n")
  return opts and 0 or 2
end
if opts.quick then opts.seeds, opts["max-seconds"], opts.services, opts.steps = 2, 60, 20, 4 end

-- kubesim times a watch's clean close and its 410 from the watch's start, so one would always
-- pre-empt the other: odd seeds close every watch after 1 s, even seeds expire it (410) after 1 s.
local FAULTS = [[
faults:
  error_rate: 0.1
  error_codes: [500, 503, 429]
  retry_after: 1
  drop_rate: 0.02
  latency: 0.05
  history: 200
  %s: 1]]

local FINAL = {succeeded = true, failed = true, cancelled = true, recovered = true, skipped = true}

local function log(...) io.stderr:write(fmt(...), "\n") io.stderr:flush() end

local root = H.tmpdir("moonship-soak")
local t0 = sched.now()
local per_step = math.max(1, opts.services // opts.steps)
local function workload(dir, faults)
  return H.generated_workload(dir, {name = "soak", steps = opts.steps, per_step = per_step, seed = 11,
                                    job_every = 10, background = 2, faults = faults})
end

-- A GET that retries through the injected faults (the checks must not be flaky themselves).
local function get_retry(sim, path)
  local last
  for _ = 1, 50 do
    local v, e = sim:get(path)
    if v then return v end
    last = e
    sched.sleep(0.05)
  end
  error("GET " .. path .. ": " .. tostring(last))
end

-- Checks one run; returns a list of problems.
local function check(w, sim, r, expected)
  local problems = {}
  local function bad(...) problems[#problems + 1] = fmt(...) end
  if r.code ~= expected.code then bad("exit code %s, expected %s", tostring(r.code), expected.code) end
  for _, id in ipairs(w.tasks) do
    if r.final[id] ~= expected.final[id] then bad("%s: %s, expected %s", id, tostring(r.final[id]), expected.final[id]) end
  end
  -- the local journal: every planned task has a final state, and the run finished
  local jfile = fmt("%s/.moonship/runs/%s.jsonl", w.dir, tostring(r.run_id))
  local text = H.read(jfile)
  if not text then
    bad("no journal %s", jfile)
  else
    local final, finished = {}, false
    for line in text:gmatch("[^\n]+") do
      local ev = json.decode(line)
      if ev.event == "task_finished" and FINAL[ev.state] then final[ev.task] = ev.state end
      if ev.event == "run_finished" then finished = true end
    end
    for _, id in ipairs(w.tasks) do if not final[id] then bad("journal: no final state for %s", id) end end
    if not finished then bad("journal: no run_finished") end
  end
  -- the ConfigMap snapshot
  local cm = get_retry(sim, "/api/v1/namespaces/default/configmaps/moonship-run-" .. w.app .. "-" .. w.workflow)
  local snap = json.decode(cm.data["run.json"])
  local in_snap = {}
  for _, t in ipairs(snap.tasks or {}) do if FINAL[t.state] then in_snap[t.id] = true end end
  for _, id in ipairs(w.tasks) do if not in_snap[id] then bad("snapshot: no final state for %s", id) end end
  -- objects: each task applied one name per kind (across attempts), and the cluster holds
  -- exactly one Deployment (+ Service) per service task and one Job per job task
  local names = {}
  for _, ev in ipairs(r.events) do
    for _, o in ipairs(ev.objects or {}) do
      local key = ev.task .. " " .. o.kind
      names[key] = names[key] or {}
      names[key][o.name] = true
    end
  end
  for key, set in pairs(names) do
    local n = 0
    for _ in pairs(set) do n = n + 1 end
    if n > 1 then bad("%s applied under %d names", key, n) end
  end
  local function list(path)
    local l = get_retry(sim, path)
    local out = {}
    for _, item in ipairs(l.items or {}) do out[#out + 1] = item.metadata.name end
    return out
  end
  local deps = list("/apis/apps/v1/namespaces/default/deployments")
  local jobs = list("/apis/batch/v1/namespaces/default/jobs")
  local want_deps, want_jobs = 0, 0
  for _, id in ipairs(w.tasks) do
    if w.jobs[id] then want_jobs = want_jobs + 1 else want_deps = want_deps + 1 end
  end
  if #deps ~= want_deps then bad("%d Deployments in the cluster, expected %d", #deps, want_deps) end
  if #jobs ~= want_jobs then bad("%d Jobs in the cluster, expected %d", #jobs, want_jobs) end
  return problems
end

-- Fault-free reference run.
local base_dir = root .. "/base"
os.execute("mkdir -p " .. H.quote(base_dir))
local wbase = workload(base_dir)
log("soak: %d tasks in %d steps (%d jobs), time scale %g; fault-free run", #wbase.tasks, opts.steps,
    (function() local n = 0 for _ in pairs(wbase.jobs) do n = n + 1 end return n end)(), opts["time-scale"])
local sim = H.start_sim {dir = base_dir .. "/sim", scenario = wbase.scenario, time_scale = opts["time-scale"], seed = 1}
local base = H.deploy(wbase, sim)
local expected = {code = base.code, final = base.final}
local base_problems = check(wbase, sim, base, {code = 0, final = (function()
  local f = {}
  for _, id in ipairs(wbase.tasks) do f[id] = "succeeded" end
  return f
end)()})
sim:stop()
log("soak: fault-free: exit %s in %.1f s%s", tostring(base.code), base.wall,
    #base_problems > 0 and (": " .. table.concat(base_problems, "; ")) or "")

local rows, failures = {}, #base_problems
for seed = 1, opts.seeds do
  if sched.now() - t0 > opts["max-seconds"] then
    log("soak: time budget reached after %d seeds", seed - 1)
    break
  end
  local dir = fmt("%s/seed-%d", root, seed)
  os.execute("mkdir -p " .. H.quote(dir))
  local w = workload(dir, FAULTS:format(seed % 2 == 1 and "watch_close_every" or "expire_every"))
  local s = H.start_sim {dir = dir .. "/sim", scenario = w.scenario, time_scale = opts["time-scale"], seed = seed}
  local r = H.deploy(w, s)
  local problems = check(w, s, r, expected)
  local stats = s:stats()
  s:stop()
  local faults = 0
  for _, n in pairs(stats.faults or {}) do faults = faults + n end
  rows[#rows + 1] = {seed = seed, code = r.code, wall = r.wall, requests = stats.requests_total, faults = faults,
                     fault_kinds = stats.faults, problems = problems}
  failures = failures + #problems
  log("soak: seed %d: exit %s in %.1f s, %d requests, %d faults injected: %s", seed, tostring(r.code), r.wall,
      stats.requests_total, faults, #problems == 0 and "ok" or table.concat(problems, "; "))
  if #problems > 0 then log("soak: kept %s (stderr tail: %s)", dir, r.stderr:sub(-1500)) opts.keep = true end
end

print(fmt("soak: %d tasks, %d seeds, faults: 10%% 500/503/429 (Retry-After 1), 2%% drops, 50 ms latency, " ..
          "watch close (odd seeds) or 410 expiry (even seeds) every 1 s", #wbase.tasks, #rows))
print(fmt("%-5s %-5s %-8s %-9s %-7s %s", "seed", "exit", "wall s", "requests", "faults", "result"))
for _, row in ipairs(rows) do
  print(fmt("%-5d %-5s %-8.1f %-9d %-7d %s", row.seed, tostring(row.code), row.wall, row.requests, row.faults,
            #row.problems == 0 and "ok" or (#row.problems .. " problems")))
end
local kinds = {}
for _, row in ipairs(rows) do
  for k, n in pairs(row.fault_kinds or {}) do kinds[k] = (kinds[k] or 0) + n end
end
local kl = {}
for k, n in pairs(kinds) do kl[#kl + 1] = k .. "=" .. n end
table.sort(kl)
print("faults injected: " .. table.concat(kl, " "))
print(fmt("soak: %s (%d problems over %d runs + the fault-free run)", failures == 0 and "PASS" or "FAIL", failures, #rows))
if opts.keep then log("soak: kept %s", root) else H.rmdir(root) end
return failures == 0 and #rows > 0 and 0 or 1
