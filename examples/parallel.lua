-- A tour of moonship's scheduler: `moonship run examples/parallel.lua`, or the same file under a
-- stock lua5.4 (sched.run starts the scheduler there, and runs its function as a task under
-- moonship run). Three "steps" run in order; the tasks of each step run side by side; one
-- background task runs on beside the later steps, and a time limit cancels a task that takes
-- too long.
local sched = require "moonship.sched"

local t0 = sched.now()
local function log(fmt, ...)
  print(string.format("%5.2fs  " .. fmt, sched.now() - t0, ...))
end

local function task(name, seconds)
  return function()
    log("%-10s started", name)
    sched.sleep(seconds)
    log("%-10s finished after %.1fs", name, seconds)
    return name
  end
end

sched.run(function()
  local background = sched.spawn(task("frontend", 1.2))
  sched.all {task("migrate", 0.4), task("scrub", 0.2)}
  local result, why = sched.timeout(0.3, task("slow-job", 5))
  log("%-10s %s", "slow-job", result or why)
  sched.all {task("backend", 0.5)}
  background:join()
  log("all done")
end)
