-- A tour of moonship's scheduler: `moonship run examples/parallel.lua`.
-- Three "steps" run in order; the tasks of each step run side by side; one background task
-- runs on beside the later steps, and a time limit cancels a task that takes too long.
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

local background = sched.spawn(task("frontend", 1.2))
sched.all {task("migrate", 0.4), task("scrub", 0.2)}
local result, why = sched.timeout(0.3, task("slow-job", 5))
log("%-10s %s", "slow-job", result or why)
sched.all {task("backend", 0.5)}
background:join()
log("all done")
