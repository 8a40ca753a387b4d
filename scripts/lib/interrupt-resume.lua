-- scripts/interrupt-resume (run by `moonship run`): SIGINT at random moments of the seed and
-- wide runs (after the k-th JSON event, k random), then --resume. Each time: exit 130, the run
-- interrupted, every planned task with a final state in the journal, the cleanup hook called
-- with "interrupted"; then --resume exits 0, every task ends succeeded or skipped, and no task
-- that had succeeded runs again (no task_started, no new Job).
package.path = (arg[0]:match("^(.*)/[^/]*$") or ".") .. "/?.lua;" .. package.path
local H = require "harness"
local json = require "moonship.json"
local sched = require "moonship.sched"

local fmt = string.format

local USAGE = [[
usage: scripts/interrupt-resume [--moments N] [--seed S] [--time-scale F] [--services N] [--keep]
  --moments N   interrupts in all, half on seed and half on wide (default 20)
  --seed S      picks the moments (default: from the clock; printed, so a failure can be replayed)
  --services N  size of wide here (default 40 in 4 steps, every 5th a job)]]

local opts, err = H.options(arg, {
  moments = {number = true, default = 20}, seed = {number = true}, ["time-scale"] = {number = true, default = 0.05},
  services = {number = true, default = 40}, keep = {flag = true}, help = {flag = true},
})
if not opts or opts.help then
  io.stderr:write((err and ("interrupt-resume: " .. err .. "\n") or ""), USAGE, "\n")
  return opts and 0 or 2
end
local seed = opts.seed or (os.time() % 100000)
local scale = opts["time-scale"]

local FINAL = {succeeded = true, failed = true, cancelled = true, recovered = true, skipped = true}
local function log(...) io.stderr:write(fmt(...), "\n") io.stderr:flush() end

local root = H.tmpdir("moonship-interrupt")

local HOOKS = [[
-- written by scripts/interrupt-resume: records that cleanup ran, and with what
return {
  cleanup = function(ctx, run, reason)
    local f = assert(io.open(%q, "a"))
    f:write(reason, " ", #(run.started or {}), "\n")
    f:close()
  end,
}
]]

local function make(kind, dir)
  os.execute("mkdir -p " .. H.quote(dir))
  local w
  if kind == "seed" then
    w = H.seed_workload(dir)
  else
    w = H.generated_workload(dir, {name = "wide", steps = 4, per_step = math.max(1, opts.services // 4), seed = 5,
                                   job_every = 5, background = 1})
  end
  w.cleanup_log = dir .. "/cleanup.log"
  H.write(dir .. "/hooks.lua", HOOKS:format(w.cleanup_log))
  return w
end

local function jobs_of(sim)
  local l
  for _ = 1, 20 do
    l = sim:get("/apis/batch/v1/namespaces/default/jobs")
    if l then break end
    sched.sleep(0.05)
  end
  local out = {}
  for _, item in ipairs(l and l.items or {}) do out[item.metadata.name] = true end
  return out
end

-- One moment: interrupt after the k-th event, check, resume, check. Returns problems, info.
local function moment(kind, idx, k)
  local dir = fmt("%s/%s-%d", root, kind, idx)
  local w = make(kind, dir)
  local sim = H.start_sim {dir = dir .. "/sim", scenario = w.scenario, time_scale = scale, seed = idx}
  local problems = {}
  local function bad(...) problems[#problems + 1] = fmt(...) end
  local ok, e = pcall(function()
    local r = H.deploy(w, sim, {interrupt_after = k})
    -- A run's event count varies a little (progress lines), so a late k may fall after the
    -- run's own end: then there was nothing to interrupt, and the run must say it succeeded.
    local ended_at
    for i, ev in ipairs(r.events) do if ev.event == "run_finished" then ended_at = i end end
    local after_end = ended_at ~= nil and ended_at <= k
    local want_code, want_state = 130, "interrupted"
    if after_end then want_code, want_state = 0, "succeeded" end
    if r.code ~= want_code then bad("exit %s, expected %d", tostring(r.code), want_code) end
    if not r.run_finished or r.run_finished.state ~= want_state then
      bad("run_finished %s", r.run_finished and r.run_finished.state or "missing")
    end
    -- the local journal
    local text = H.read(fmt("%s/.moonship/runs/%s.jsonl", dir, tostring(r.run_id))) or ""
    local jfinal = {}
    for line in text:gmatch("[^\n]+") do
      local ev = json.decode(line)
      if ev.event == "task_finished" and FINAL[ev.state] then jfinal[ev.task] = ev.state end
    end
    for _, id in ipairs(w.tasks) do if not jfinal[id] then bad("journal: no final state for %s", id) end end
    local cl = H.read(w.cleanup_log) or ""
    if not after_end and not cl:match("^interrupted") then bad("cleanup hook: %q", cl) end
    local succeeded = {}
    for id, st in pairs(jfinal) do if st == "succeeded" then succeeded[id] = true end end
    local jobs_before = jobs_of(sim)

    local r2 = H.deploy(w, sim, {extra = {"--resume"}})
    if r2.code ~= 0 then bad("resume: exit %s: %s", tostring(r2.code), r2.stderr:sub(-600)) end
    for _, id in ipairs(w.tasks) do
      local st = r2.final[id]
      if st ~= "succeeded" and st ~= "skipped" then bad("resume: %s %s", id, tostring(st)) end
      if succeeded[id] and r2.started[id] then bad("resume: %s had succeeded and ran again", id) end
      if succeeded[id] and st ~= "skipped" then bad("resume: %s had succeeded but is %s", id, tostring(st)) end
    end
    -- a job that had succeeded keeps its one Job: the resume created Jobs only for the others
    local jobs_after = jobs_of(sim)
    for id, prefix in pairs(w.jobs) do
      if succeeded[id] then
        local n_before, n_after = 0, 0
        for name in pairs(jobs_before) do if name:sub(1, #prefix + 1) == prefix .. "-" then n_before = n_before + 1 end end
        for name in pairs(jobs_after) do if name:sub(1, #prefix + 1) == prefix .. "-" then n_after = n_after + 1 end end
        if n_after ~= n_before then bad("resume: %s had succeeded, Jobs %d -> %d", id, n_before, n_after) end
      end
    end
    local n = 0
    for _ in pairs(succeeded) do n = n + 1 end
    problems.info = fmt("%d/%d succeeded before the signal, %d events%s", n, #w.tasks, #r.events,
                        after_end and ", signal after the run's end" or "")
  end)
  sim:stop()
  if not ok then bad("error: %s", tostring(e)) end
  if #problems == 0 and not opts.keep then H.rmdir(dir) end
  return problems
end

log("interrupt-resume: seed %d, %d moments, time scale %g", seed, opts.moments, scale)
-- Events of an uninterrupted run of each workload: the moments are drawn among them, up to its
-- last task_started, so that the signal lands while the last step's tasks still run (this
-- harness reads the events a little behind the run, which may be further on).
local counts = {}
for _, kind in ipairs {"seed", "wide"} do
  local dir = fmt("%s/%s-ref", root, kind)
  local w = make(kind, dir)
  local sim = H.start_sim {dir = dir .. "/sim", scenario = w.scenario, time_scale = scale, seed = 1}
  local r = H.deploy(w, sim)
  sim:stop()
  assert(r.code == 0, kind .. ": the uninterrupted run failed: " .. r.stderr:sub(-1000))
  for i, ev in ipairs(r.events) do if ev.event == "task_started" then counts[kind] = i end end
  log("interrupt-resume: %s: %d tasks, %d events uninterrupted, the last task starts at event %d",
      kind, #w.tasks, #r.events, counts[kind])
end

-- The moments are drawn first: generating a workload reseeds math.random (its durations are
-- fixed by its own seed).
math.randomseed(seed)
local ks = {}
for i = 1, opts.moments do
  local kind = i % 2 == 1 and "seed" or "wide"
  ks[i] = math.random(1, counts[kind])
end
local total, passed, rows = 0, 0, {}
for i = 1, opts.moments do
  local kind = i % 2 == 1 and "seed" or "wide"
  local k = ks[i]
  local problems = moment(kind, i, k)
  total = total + 1
  if #problems == 0 then passed = passed + 1 end
  rows[#rows + 1] = fmt("%-3d %-5s k=%-4d %s%s", i, kind, k, #problems == 0 and "ok" or table.concat(problems, "; "),
                        problems.info and ("  (" .. problems.info .. ")") or "")
  log("interrupt-resume: %s", rows[#rows])
end
print(fmt("interrupt-resume: seed %d, time scale %g", seed, scale))
for _, row in ipairs(rows) do print(row) end
print(fmt("interrupt-resume: %d/%d interrupted and resumed correctly", passed, total))
if opts.keep or passed < total then log("interrupt-resume: kept %s", root) else H.rmdir(root) end
return passed == total and 0 or 1
