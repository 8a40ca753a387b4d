-- The scheduler's primitives and combinators, driven through sched.run.
local sched = require "moonship.sched"

-- Runs fn as a root task and returns its results.
local function run(fn, ...) return sched.run(fn, ...) end

describe("sched.run", function()
  it("returns the root task's results", function()
    assert.same({1, "two", nil, 4}, {run(function(a) return a, "two", nil, 4 end, 1)})
  end)

  it("raises the root task's error with a traceback", function()
    local ok, err = pcall(run, function() error("boom") end)
    assert.is_false(ok)
    assert.matches("boom", err)
    assert.matches("stack traceback", err)
  end)

  it("inside a task runs fn as a task and waits for it: the same script works under moonship run", function()
    local order = {}
    local a, b = run(function()
      local bg = sched.spawn(function() order[#order + 1] = "beside" end)
      local x, y = sched.run(function(p, q)
        sched.sleep(0)
        order[#order + 1] = "inner"
        return p + 1, q
      end, 41, "z")
      bg:join()
      return x, y
    end)
    assert.equal(42, a)
    assert.equal("z", b)
    assert.same({"beside", "inner"}, order)
    -- its error is raised in the caller, who can catch it
    local ok, err = run(function()
      return pcall(sched.run, function() error("inner boom") end)
    end)
    assert.is_false(ok)
    assert.matches("inner boom", err)
    -- cancelling the caller cancels the inner run's task
    local inner_cancelled = false
    run(function()
      local caller = sched.spawn(function()
        sched.run(function()
          local ok2, e = pcall(sched.sleep, 60)
          inner_cancelled = not ok2 and sched.is_cancelled(e)
          if not ok2 then error(e, 0) end
        end)
      end)
      sched.sleep(0)
      caller:cancel()
      caller:join()
    end)
    assert.is_true(inner_cancelled)
  end)

  it("reports a deadlock instead of hanging", function()
    local ok, err = pcall(run, function() sched.park() end)
    assert.is_false(ok)
    assert.matches("deadlock", err)
    assert.equal(0, sched.stats().tasks)
  end)

  it("cancels the tasks the root left behind and closes their timers", function()
    local cleaned = 0
    run(function()
      for _ = 1, 5 do
        sched.spawn(function()
          local ok, err = pcall(sched.sleep, 60)
          assert(not ok and sched.is_cancelled(err))
          cleaned = cleaned + 1
        end)
      end
      sched.sleep(0) -- let them start sleeping
    end)
    assert.equal(5, cleaned)
    local stats = sched.stats()
    assert.equal(0, stats.tasks)
    assert.equal(0, stats.handles)
  end)
end)

describe("waiting outside a task", function()
  it("raises a clear error", function()
    local ok, err = pcall(sched.sleep, 1)
    assert.is_false(ok)
    assert.matches("sched.sleep must be called inside a task", err)
    ok, err = pcall(sched.park)
    assert.matches("sched.park must be called inside a task", err)
  end)

  it("raises inside a plain coroutine within a task", function()
    local msg = run(function()
      local co = coroutine.create(function() sched.sleep(0.01) end)
      local _, err = coroutine.resume(co)
      return err
    end)
    assert.matches("must be called inside a task", msg)
  end)
end)

describe("sleep", function()
  it("lets tasks overlap: 1,000 sleeps of 0.2 s take far less than 1,000 x 0.2 s", function()
    local elapsed = run(function()
      local t0, tasks = sched.now(), {}
      for i = 1, 1000 do tasks[i] = sched.spawn(sched.sleep, 0.2) end
      for i = 1, 1000 do assert(tasks[i]:join()) end
      return sched.now() - t0
    end)
    assert.is_true(elapsed >= 0.2)
    assert.is_true(elapsed < 20, "overlapping sleeps took " .. elapsed)
  end)

  it("orders wake-ups by deadline", function()
    local order = run(function()
      local seen = {}
      local g = sched.group()
      for _, d in ipairs {0.06, 0.02, 0.04} do
        g:spawn(function() sched.sleep(d); seen[#seen + 1] = d end)
      end
      g:wait()
      return seen
    end)
    assert.same({0.02, 0.04, 0.06}, order)
  end)

  it("sleep(0) lets every ready task run first", function()
    local log = run(function()
      local log = {}
      sched.spawn(function() log[#log + 1] = "child" end)
      sched.sleep(0)
      log[#log + 1] = "root"
      return log
    end)
    assert.same({"child", "root"}, log)
  end)

  it("rejects negative and non-number durations", function()
    run(function()
      assert.has_error(function() sched.sleep(-1) end)
      assert.has_error(function() sched.sleep("x") end)
    end)
  end)
end)

describe("tasks", function()
  it("join returns true and the results, or false and the error", function()
    run(function()
      local a = sched.spawn(function(x) sched.sleep(0.01) return x * 2, "ok" end, 21)
      local b = sched.spawn(function() error({code = 7}) end)
      assert.same({true, 42, "ok"}, {a:join()})
      local ok, err = b:join()
      assert.is_false(ok)
      assert.same({code = 7}, err)
      assert.same({true, 42, "ok"}, {a:join()}) -- joining again is fine
    end)
  end)

  it("a string error carries the task's traceback", function()
    run(function()
      local ok, err = sched.spawn(function() error("bad thing") end):join()
      assert.is_false(ok)
      assert.matches("bad thing", err)
      assert.matches("stack traceback", err)
    end)
  end)

  it("cancel ends the pending wait with 'cancelled' and runs cleanups", function()
    run(function()
      local closed = false
      local t = sched.spawn(function()
        local _ <close> = setmetatable({}, {__close = function() closed = true end})
        sched.sleep(60)
        return "not reached"
      end)
      sched.sleep(0)
      assert.equal("waiting", t:status())
      t:cancel("halt")
      assert.same({false, sched.cancelled}, {t:join()})
      assert.is_true(closed)
      assert.same({true, "halt"}, {t:cancelled()})
    end)
    assert.equal(0, sched.stats().handles)
  end)

  it("a cancelled task leaves no pending timer behind", function()
    run(function()
      local before = sched.stats().handles
      local tasks = {}
      for i = 1, 100 do tasks[i] = sched.spawn(sched.sleep, 30) end
      sched.sleep(0)
      assert.equal(before + 100, sched.stats().handles)
      for i = 1, 100 do tasks[i]:cancel() end
      for i = 1, 100 do assert.same({false, sched.cancelled}, {tasks[i]:join()}) end
      assert.equal(before, sched.stats().handles)
      assert.equal(1, sched.stats().tasks) -- only the root
    end)
  end)

  it("a task cancelled before it started never runs", function()
    run(function()
      local ran = false
      local t = sched.spawn(function() ran = true end)
      t:cancel()
      assert.same({false, sched.cancelled}, {t:join()})
      assert.is_false(ran)
    end)
  end)

  it("a cancelled task cannot be woken by a stale event", function()
    run(function()
      local woke = 0
      local t = sched.spawn(function()
        pcall(sched.park)
        woke = woke + 1
        sched.park() -- parks again after the cancellation was delivered
      end)
      sched.sleep(0)
      t:cancel()
      sched.sleep(0)
      assert.is_true(t:unpark("late")) -- wakes the second park, not the first
      t:join()
      assert.equal(1, woke)
      assert.is_false(t:unpark("stale")) -- done: nothing to wake
    end)
  end)

  it("a task can cancel itself; the next wait raises", function()
    run(function()
      local t = sched.spawn(function()
        sched.current():cancel()
        sched.sleep(1)
      end)
      assert.same({false, sched.cancelled}, {t:join()})
    end)
  end)

  it("cancelling a joiner leaves the joined task alone", function()
    run(function()
      local target = sched.spawn(function() sched.sleep(0.05) return "done" end)
      local joiner = sched.spawn(function() return target:join() end)
      sched.sleep(0)
      joiner:cancel()
      assert.same({false, sched.cancelled}, {joiner:join()})
      assert.same({true, "done"}, {target:join()})
    end)
  end)

  it("a task cannot join itself", function()
    run(function()
      assert.has_error(function() sched.current():join() end, "task:join: a task cannot join itself")
    end)
  end)

  it("a bare coroutine.yield inside a task yields to the others", function()
    local log = run(function()
      local log = {}
      local t = sched.spawn(function() log[#log + 1] = "a1"; coroutine.yield(); log[#log + 1] = "a2" end)
      sched.spawn(function() log[#log + 1] = "b1" end)
      t:join()
      return log
    end)
    assert.same({"a1", "b1", "a2"}, log)
  end)
end)

describe("park/unpark", function()
  it("passes values and times out", function()
    run(function()
      local me = sched.current()
      sched.spawn(function() me:unpark("x", 2) end)
      assert.same({"x", 2}, {sched.park()})
      assert.same({nil, "timeout", "timeout"}, {sched.park(0.01)})
    end)
  end)
end)

describe("combinators", function()
  it("all runs concurrently and returns results in order", function()
    run(function()
      local t0 = sched.now()
      local a, b, c = sched.all {
        function() sched.sleep(0.1) return "a" end,
        function() sched.sleep(0.05) return "b" end,
        function() return "c" end,
      }
      assert.same({"a", "b", "c"}, {a, b, c})
      assert.is_true(sched.now() - t0 < 5)
    end)
  end)

  it("all cancels the rest when one raises", function()
    run(function()
      local cancelled = false
      local ok, err = pcall(sched.all, {
        function() error("first fails", 0) end,
        function()
          local ok2, e = pcall(sched.sleep, 60)
          cancelled = not ok2 and sched.is_cancelled(e)
        end,
      })
      assert.is_false(ok)
      assert.equal("first fails", err)
      assert.is_true(cancelled)
    end)
  end)

  it("any returns the first to finish and cancels the others", function()
    run(function()
      local slow_cancelled = false
      local i, v = sched.any {
        function()
          local ok = pcall(sched.sleep, 60)
          slow_cancelled = not ok
        end,
        function() sched.sleep(0.01) return "fast" end,
      }
      assert.equal(2, i)
      assert.equal("fast", v)
      assert.is_true(slow_cancelled)
    end)
  end)

  it("timeout returns the body's results or nil, 'timeout', 'timeout' after cancelling it", function()
    run(function()
      assert.same({1, 2}, {sched.timeout(5, function(a) return a, 2 end, 1)})
      local body_cancelled = false
      assert.same({nil, "timeout", "timeout"}, {sched.timeout(0.02, function()
        local ok, err = pcall(sched.sleep, 60)
        body_cancelled = not ok and sched.is_cancelled(err)
      end)})
      assert.is_true(body_cancelled)
      assert.has_error(function() sched.timeout(1, error, "raised", 0) end, "raised")
    end)
    assert.equal(0, sched.stats().handles)
  end)

  it("a semaphore bounds concurrency and survives cancelled waiters", function()
    run(function()
      local sem = sched.semaphore(3)
      local inside, peak = 0, 0
      local g = sched.group()
      for _ = 1, 12 do
        g:spawn(function()
          sem:with(function()
            inside = inside + 1
            peak = math.max(peak, inside)
            sched.sleep(0.01)
            inside = inside - 1
          end)
        end)
      end
      local victim = g:spawn(function() sem:acquire() end)
      sched.sleep(0)
      victim:cancel()
      g:wait()
      assert.equal(3, peak)
      assert.equal(3, sem.permits)
    end)
  end)

  it("a group cancels every member, including ones spawned after the cancel", function()
    run(function()
      local g = sched.group()
      for _ = 1, 4 do g:spawn(sched.sleep, 60) end
      sched.sleep(0)
      g:cancel("halt")
      local late = g:spawn(sched.sleep, 60)
      for _, outcome in ipairs(g:wait()) do
        assert.same({false, sched.cancelled, n = 2}, outcome)
      end
      assert.same({true, "halt"}, {late:cancelled()})
    end)
  end)
end)

describe("event", function()
  it("wakes every waiter once set, and later waits return at once", function()
    run(function()
      local e = sched.event()
      local woke = 0
      local g = sched.group()
      for _ = 1, 3 do g:spawn(function() e:wait() woke = woke + 1 end) end
      sched.sleep(0)
      assert.equal(0, woke)
      assert.is_false(e:wait(0.01))
      e:set()
      g:wait()
      assert.equal(3, woke)
      assert.is_true(e:wait())
    end)
  end)

  it("a cancelled waiter leaves the event usable", function()
    run(function()
      local e = sched.event()
      local t = sched.spawn(function() e:wait() end)
      sched.sleep(0)
      t:cancel()
      assert.same({false, sched.cancelled}, {t:join()})
      assert.equal(0, #e.waiters)
      e:set()
    end)
  end)
end)

describe("sched.guard", function()
  local SPIN = function() while true do pcall(function() while true do end end) end end

  it("returns true and the function's results, or false and its error with a traceback", function()
    run(function()
      assert.same({true, 1, nil, 3}, {sched.guard(0, function(a) return a, nil, 3 end, 1)})
      local ok, err = sched.guard(0, function() error("boom") end)
      assert.is_false(ok)
      assert.matches("boom\nstack traceback", err)
    end)
  end)

  it("stops a function on its budget, and a pcall inside it cannot get past the stop", function()
    local ok, err = sched.guard(1000000, SPIN) -- outside a task too
    assert.is_false(ok)
    assert.matches("hook ran past its budget of 1000000 instructions", err, 1, true)
    ok, err = sched.guard(1000000, function()
      pcall(function() while true do end end)
      return "caught it"
    end)
    assert.is_false(ok)
    assert.matches("budget", err)
  end)

  it("lets timers and other tasks run while it computes, and stops when its task is cancelled", function()
    run(function()
      local ticks = 0
      local ticker = sched.spawn(function() while true do sched.sleep(0.005) ticks = ticks + 1 end end)
      local spinner = sched.spawn(function() return sched.guard(0, SPIN) end)
      sched.sleep(0.2) -- a timer of this task fires while the spinner computes
      spinner:cancel()
      assert.same({true, false, sched.cancelled}, {spinner:join()})
      ticker:cancel()
      assert.is_true(ticks > 0)
    end)
  end)

  it("restores the hook it found, so guards nest", function()
    run(function()
      local ok, inner_ok, inner_err = sched.guard(0, function()
        return sched.guard(1000000, SPIN)
      end)
      assert.is_true(ok)
      assert.is_false(inner_ok)
      assert.matches("budget", inner_err)
      assert.is_nil(debug.gethook())
    end)
  end)
end)
