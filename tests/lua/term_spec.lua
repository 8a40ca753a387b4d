-- The terminal binding: isatty, the size of a real pty (under script(1)), whole writes, and
-- SIGWINCH delivered to a waiting task on the scheduler.
local term = require("moonship.core").term
local sched = require "moonship.sched"

local q = require("support.proc").quote

local function capture(cmd)
  local p = assert(io.popen(cmd))
  local out = p:read("a")
  p:close()
  return out
end

local function has(cmd) return os.execute("command -v " .. cmd .. " >/dev/null 2>&1") == true end

describe("term.isatty", function()
  it("is false for a pipe and /dev/null, and for a closed descriptor", function()
    local out = capture([[lua5.4 -e 'local t = require("moonship.core").term
      io.write(tostring(t.isatty(0)), tostring(t.isatty(1)), tostring(t.isatty(999)))' </dev/null | cat]])
    assert.equal("falsefalsefalse", out)
  end)

  it("rejects what is not a descriptor", function()
    assert.has_error(function() term.isatty(-1) end, "bad argument #1 to 'isatty' (not a file descriptor)")
    assert.has_error(function() term.isatty("x") end)
  end)
end)

describe("term.size", function()
  it("fails on a bad descriptor and on a non-terminal with code io, the OS error in the message", function()
    assert.same({nil, "terminal size: EBADF: bad file descriptor", "io"}, {term.size(999)})
    local out = capture([[lua5.4 -e 'local t = require("moonship.core").term
      local c, m, code = t.size(0) io.write(tostring(c), " ", code, " ", m)' </dev/null]])
    assert.equal("nil io terminal size: ENOTTY: inappropriate ioctl for device", out)
  end)

  -- What lua5.4 -e code writes on a pty that stty (stty's arguments) has set up.
  local function on_pty(stty, code)
    local inner = "stty " .. stty .. "; lua5.4 -e " .. q("local t = require('moonship.core').term " .. code)
    return capture("script -qec " .. q(inner) .. " /dev/null </dev/null")
  end

  it("reads the columns and rows of a pty", function()
    if not has("script") then
      pending("script(1) is not installed")
      return
    end
    local out = on_pty("cols 91 rows 33",
      [[local c, r = t.size(1) io.write("size=", c, "x", r, " tty=", tostring(t.isatty(1)))]])
    assert.matches("size=91x33 tty=true", out, 1, true)
  end)

  it("fails with code unknown on a pty that reports 0x0", function()
    if not has("script") then
      pending("script(1) is not installed")
      return
    end
    local out = on_pty("cols 0 rows 0", [[local c, m, code = t.size(1) io.write(tostring(c), "|", m, "|", code)]])
    assert.matches("nil|terminal size: the terminal does not report one|unknown", out, 1, true)
  end)
end)

describe("term.write", function()
  it("writes all of a large frame through a pipe", function()
    local out = capture([[lua5.4 -e 'local t = require("moonship.core").term
      assert(t.write(1, string.rep("x", 300000)))' | wc -c]])
    assert.equal(300000, tonumber(out))
  end)

  it("reports a write error as nil, message, code", function()
    assert.same({nil, "terminal write: EBADF: bad file descriptor", "io"}, {term.write(999, "x")})
  end)
end)

describe("term.resize_watcher", function()
  it("wakes a waiting task on SIGWINCH and coalesces signals sent before a wait", function()
    local got = sched.run(function()
      local w <close> = term.resize_watcher()
      local waiter = sched.spawn(function() return w:wait() end)
      sched.sleep(0)
      assert.equal(1, sched.stats().waiting)
      os.execute("kill -WINCH $PPID")
      local _, first = sched.timeout(5, function() return waiter:join() end)
      os.execute("kill -WINCH $PPID; kill -WINCH $PPID")
      local second = sched.timeout(5, function() return w:wait() end)
      return {first, second}
    end)
    assert.equal(1, got[1])
    assert.is_true(got[2] >= 1 and got[2] <= 2)
  end)

  it("gives nil, closed to a waiter when closed, and raises after", function()
    local r = sched.run(function()
      local w = term.resize_watcher()
      local waiter = sched.spawn(function() return table.pack(w:wait()) end)
      sched.sleep(0)
      w:close()
      w:close()
      local _, res = waiter:join()
      local ok, err = pcall(w.wait, w)
      return {res[1], res[2], res[3], res.n, ok, err}
    end)
    assert.same({nil, "closed", "closed", 3, false, "resize watcher is closed"}, r)
  end)

  it("leaves nothing pending when the waiting task is cancelled", function()
    local stats = sched.run(function()
      local w <close> = term.resize_watcher()
      local waiter = sched.spawn(function() return w:wait() end)
      sched.sleep(0)
      waiter:cancel()
      local ok, err = waiter:join()
      assert.is_false(ok)
      assert.equal(sched.cancelled, err)
      return sched.stats()
    end)
    assert.equal(0, stats.waiting)
  end)

  it("allows one waiting task at a time", function()
    local err = sched.run(function()
      local w <close> = term.resize_watcher()
      local first = sched.spawn(function() return w:wait() end)
      sched.sleep(0)
      local ok, e = pcall(w.wait, w)
      first:cancel()
      first:join()
      return not ok and e
    end)
    assert.matches("another task is waiting on it", err)
  end)

  it("does not keep the loop alive on its own", function()
    local ok, err = pcall(sched.run, function()
      local w <close> = term.resize_watcher()
      w:wait()
    end)
    assert.is_false(ok)
    assert.matches("deadlock", err)
  end)
end)
