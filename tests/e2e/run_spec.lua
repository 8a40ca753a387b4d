-- `moonship run SCRIPT`: the script is the root task; exit codes, errors, arguments, Ctrl-C.
local proc = require "support.proc"

local dir = proc.tmpdir()
local function script(name, text) return proc.write_file(dir .. "/" .. name, text) end
local interrupt_at = proc.source_dir .. "/tests/support/interrupt-at"

describe("moonship run", function()
  it("passes arguments and exits with the script's integer result", function()
    local s = script("args.lua", [[
      local a, b = ...
      print(arg[0]:match("args.lua$") ~= nil, a, b, #arg)
      return 7
    ]])
    local r = proc.run {proc.moonship, "run", s, "one", "two"}
    assert.equal(7, r.code)
    assert.equal("true\tone\ttwo\t2\n", r.stdout)
  end)

  it("runs 10,000 tasks that each sleep 0.5 s concurrently", function()
    local s = script("many.lua", [[
      local sched = require "moonship.sched"
      local t0, tasks = sched.now(), {}
      for i = 1, 10000 do tasks[i] = sched.spawn(sched.sleep, 0.5) end
      for i = 1, 10000 do assert(tasks[i]:join()) end
      print(string.format("elapsed %.3f", sched.now() - t0))
    ]])
    local r = proc.run {proc.moonship, "run", s}
    assert.equal(0, r.code, r.stderr)
    local elapsed = tonumber(r.stdout:match("elapsed ([%d.]+)"))
    assert.is_true(elapsed >= 0.5)
    -- Serially this would be 5,000 s; the machine may be loaded, so only overlap is asserted.
    assert.is_true(elapsed < 60, "elapsed " .. elapsed)
  end)

  it("reports a script error with its traceback and exits 1", function()
    local s = script("fails.lua", "local function f() error('it broke') end\nf()\n")
    local r = proc.run {proc.moonship, "run", s}
    assert.equal(1, r.code)
    assert.matches("fails.lua:1: it broke", r.stderr)
    assert.matches("stack traceback", r.stderr)
  end)

  it("rejects a script that does not compile with exit 2 and its position", function()
    local s = script("syntax.lua", "local x = = 1\n")
    local r = proc.run {proc.moonship, "run", s}
    assert.equal(2, r.code)
    assert.matches("syntax.lua:1:", r.stderr)
  end)

  it("turns Ctrl-C into cancellation: cleanups run, exit 130", function()
    local s = script("interrupt.lua", [[
      local sched = require "moonship.sched"
      local g = sched.group()
      for i = 1, 3 do
        g:spawn(function()
          local _ <close> = setmetatable({}, {__close = function() print("closed " .. i) end})
          local ok, err = pcall(sched.sleep, 600)
          print("cleanup " .. i .. " " .. tostring(err))
        end)
      end
      sched.sleep(0)
      print("ready")
      io.stdout:flush()
      g:wait()
      print("not reached")
    ]])
    local r = proc.run {interrupt_at, "^ready$", "INT", proc.moonship, "run", s}
    assert.matches("exit=130", r.stdout)
    for i = 1, 3 do
      assert.matches("cleanup " .. i .. " cancelled", r.stdout)
      assert.matches("closed " .. i, r.stdout)
    end
    assert.not_matches("not reached", r.stdout)
    assert.matches("interrupted", r.stderr)
  end)

  it("SIGTERM is a cancellation too", function()
    local s = script("term.lua", [[
      local sched = require "moonship.sched"
      print("ready"); io.stdout:flush()
      local ok, err = pcall(sched.sleep, 600)
      print("root saw " .. tostring(err))
      return 5
    ]])
    local r = proc.run {interrupt_at, "^ready$", "TERM", proc.moonship, "run", s}
    -- The root handled the cancellation and returned normally: its exit code stands.
    assert.matches("root saw cancelled", r.stdout)
    assert.matches("exit=5", r.stdout)
  end)
end)

describe("moonship", function()
  it("prints usage and exits 2 without a command, 0 with --help", function()
    assert.equal(2, proc.run({proc.moonship}).code)
    local r = proc.run {proc.moonship, "--help"}
    assert.equal(0, r.code)
    assert.matches("usage: moonship COMMAND", r.stdout)
  end)

  it("names an unknown command or option", function()
    local r = proc.run {proc.moonship, "deploi"}
    assert.equal(2, r.code)
    assert.matches("unknown command 'deploi'", r.stderr)
    r = proc.run {proc.moonship, "version", "--bogus"}
    assert.equal(2, r.code)
    assert.matches("unknown option '%-%-bogus'", r.stderr)
  end)
end)
