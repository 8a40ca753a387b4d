-- moonship.process: child processes on the scheduler, driven by events (no sleeps).
local sched = require "moonship.sched"
local process = require "moonship.process"

-- The sanitizer build preloads the ASan runtime into lua5.4; the shell tools we start must not
-- inherit it.
local function clean(opts)
  opts.env_extra = opts.env_extra or {}
  if opts.env == nil then opts.env_extra.LD_PRELOAD = false end
  return opts
end

local function run(opts) return process.run(clean(opts)) end
local function spawn(opts) return process.spawn(clean(opts)) end
local function sh(script, extra)
  local opts = extra or {}
  opts.argv = {"sh", "-c", script}
  return opts
end

local function in_task(fn) return sched.run(fn) end

describe("process.run", function()
  it("returns the exit code, stdout and stderr", function()
    local r = in_task(function() return run(sh("echo out; echo err >&2; exit 3")) end)
    assert.equal(3, r.code)
    assert.is_nil(r.signal)
    assert.equal("out\n", r.stdout)
    assert.equal("err\n", r.stderr)
    assert.is_number(r.pid)
  end)

  it("reports a signal that ended the child", function()
    local r = in_task(function() return run(sh("kill -TERM $$")) end)
    assert.is_nil(r.code)
    assert.equal(15, r.signal)
  end)

  it("pipes stdin text, large texts included", function()
    local big = string.rep("0123456789abcdef", 65536) -- 1 MiB, more than a pipe holds
    local r1, r2 = in_task(function()
      return run{argv = {"cat"}, stdin = "hello\nworld", env_extra = {LD_PRELOAD = false}},
        run{argv = {"cat"}, stdin = big, env_extra = {LD_PRELOAD = false}}
    end)
    assert.equal("hello\nworld", r1.stdout)
    assert.equal(#big, #r2.stdout)
    assert.is_true(r2.stdout == big)
  end)

  it("gives the child an empty stdin by default", function()
    local r = in_task(function() return run{argv = {"cat"}, env_extra = {LD_PRELOAD = false}} end)
    assert.equal(0, r.code)
    assert.equal("", r.stdout)
  end)

  it("fails to spawn a missing program with the program's name", function()
    local r, err, code = in_task(function() return run{argv = {"moonship-no-such-program"}} end)
    assert.is_nil(r)
    assert.equal("spawn moonship-no-such-program: ENOENT: no such file or directory", err)
    assert.equal("spawn", code)
  end)

  it("passes env (replacing), env_extra (adding) and cwd", function()
    local only, added, removed, where = in_task(function()
      return run{argv = {"/usr/bin/env"}, env = {MS_ONE = "1"}},
        run(sh('echo "$MS_TWO:${PATH:+has-path}"', {env_extra = {MS_TWO = "two"}})),
        run(sh('echo "${HOME:-unset}"', {env_extra = {HOME = false}})),
        run(sh("pwd", {cwd = "/"}))
    end)
    assert.equal("MS_ONE=1\n", only.stdout)
    assert.equal("two:has-path\n", added.stdout)
    assert.equal("unset\n", removed.stdout)
    assert.equal("/\n", where.stdout)
  end)

  it("kills a child past its timeout with SIGTERM", function()
    local r, err, code = in_task(function() return run{argv = {"sleep", "30"}, timeout = 0.1,
      env_extra = {LD_PRELOAD = false}} end)
    assert.is_nil(r)
    assert.equal("run sleep: timed out after 0.1 s (killed)", err)
    assert.equal("timeout", code)
    assert.equal(0, sched.stats().handles)
  end)

  it("escalates to SIGKILL when the child ignores SIGTERM", function()
    local t0 = os.time()
    local r, _, code = in_task(function()
      return run(sh("trap '' TERM; echo ready; exec sleep 30", {timeout = 0.1, kill_grace = 0.1}))
    end)
    assert.is_nil(r)
    assert.equal("timeout", code)
    assert.is_true(os.time() - t0 < 10)
    assert.equal(0, sched.stats().handles)
  end)

  it("raises on misuse", function()
    local ok, err = pcall(process.run, {argv = {"true"}})
    assert.is_false(ok)
    assert.matches("process.run must be called inside a task", err)
    in_task(function()
      ok, err = pcall(process.run, {argv = {"true"}, bogus = 1})
      assert.matches("process.run: unknown option 'bogus'", err)
      ok, err = pcall(process.run, {argv = {}})
      assert.matches("process.run: option 'argv' must not be empty", err)
      ok, err = pcall(process.run, {})
      assert.matches("option 'argv' must be a list of strings", err)
      ok, err = pcall(process.run, {argv = {"true"}, env = {A = {}}})
      assert.matches("env value of 'A' must be a string", err)
      ok, err = pcall(process.run, {argv = {"true"}, timeout = -1})
      assert.matches("option 'timeout' must be a non%-negative number", err)
      ok, err = pcall(process.spawn, {argv = {"true"}, stdout = "file"})
      assert.matches("option 'stdout' must be \"pipe\", \"inherit\" or \"null\"", err)
    end)
  end)

  it("kills its child when the waiting task is cancelled, leaving no handle", function()
    in_task(function()
      local base = sched.stats().handles
      local started = false
      local t = sched.spawn(function()
        started = true
        return run{argv = {"sleep", "30"}, env_extra = {LD_PRELOAD = false}}
      end)
      sched.sleep(0) -- let the child start
      assert.is_true(started)
      t:cancel()
      local ok, err = t:join()
      assert.is_false(ok)
      assert.equal(sched.cancelled, err)
      process.wait_detached()
      assert.equal(0, process.detached())
      assert.equal(base, sched.stats().handles)
    end)
  end)
end)

describe("process.output", function()
  it("returns stdout on success and stderr in the error otherwise", function()
    local out, a, b, c = in_task(function()
      local o = process.output(clean{argv = {"echo", "hi"}})
      return o, process.output(clean(sh("echo bad >&2; exit 2")))
    end)
    assert.equal("hi\n", out)
    assert.is_nil(a)
    assert.equal("sh: exited with code 2: bad", b)
    assert.equal("exit", c)
  end)
end)

describe("process.spawn", function()
  it("reads the lines of a slowly printing child as they come", function()
    -- The child prints a line, then waits for us before printing the next: every line must
    -- reach us while the child is still running.
    local lines = in_task(function()
      local p = assert(spawn(sh('for i in 1 2 3; do echo "line $i"; read ack; done; printf tail',
        {stdin = "pipe"})))
      local got = {}
      for _ = 1, 3 do
        got[#got + 1] = p:read_line()
        assert.is_false(p:exited())
        assert(p:write("ack\n"))
      end
      got[#got + 1] = p:read_line() -- the last line has no newline
      got[#got + 1] = tostring(p:read_line()) -- EOF
      assert.same({0}, {p:wait()})
      p:close()
      return got
    end)
    assert.same({"line 1", "line 2", "line 3", "tail", "nil"}, lines)
    assert.equal(0, sched.stats().handles)
  end)

  it("reads stderr, chunks and everything", function()
    local a, b, c = in_task(function()
      local p = assert(spawn(sh("echo e1 >&2; echo o1; echo o2", {stderr = "pipe"})))
      local e = p:read_line("stderr")
      local all = p:read_all()
      local chunk = p:read()
      p:wait()
      p:close()
      return e, all, chunk
    end)
    assert.equal("e1", a)
    assert.equal("o1\no2\n", b)
    assert.is_nil(c)
  end)

  it("pipes stdin and closes it", function()
    local out = in_task(function()
      local p = assert(spawn{argv = {"cat"}, stdin = "pipe", env_extra = {LD_PRELOAD = false}})
      assert(p:write("a"))
      assert(p:write("b\n"))
      p:close_stdin()
      local _, err, code = p:write("c")
      assert.equal("closed", code)
      assert.equal("write to cat: stdin is closed", err)
      local s = p:read_all()
      p:wait()
      p:close()
      return s
    end)
    assert.equal("ab\n", out)
  end)

  it("reports EPIPE (code io) when the child does not read its stdin", function()
    local err, code = in_task(function()
      local p = assert(spawn(sh("exec 0<&-; echo closed", {stdin = "pipe"})))
      assert.equal("closed", p:read_line())
      p:wait()
      local ok, e, c = p:write(string.rep("x", 1 << 20))
      p:close()
      assert.is_nil(ok)
      return e, c
    end)
    assert.equal("io", code)
    assert.equal("write to sh: EPIPE: broken pipe", err)
  end)

  it("kills by signal name or number", function()
    local c1, s1, c2, s2, exited = in_task(function()
      local p = assert(spawn{argv = {"sleep", "30"}, env_extra = {LD_PRELOAD = false}})
      assert(p:kill("INT"))
      local a, b = p:wait()
      local q = assert(spawn{argv = {"sleep", "30"}, env_extra = {LD_PRELOAD = false}})
      assert(q:kill(9))
      local c, d = q:wait()
      local _, _, code = q:kill()
      p:close()
      q:close()
      return a, b, c, d, code
    end)
    assert.is_nil(c1)
    assert.equal(2, s1)
    assert.is_nil(c2)
    assert.equal(9, s2)
    assert.equal("exited", exited)
  end)

  it("stops waiting, without killing the child, when the waiting task is cancelled", function()
    in_task(function()
      local base = sched.stats().handles
      local p = assert(spawn{argv = {"sleep", "30"}, stdout = "null",
        env_extra = {LD_PRELOAD = false}})
      local waiter = sched.spawn(function() return p:wait() end)
      sched.sleep(0)
      assert.equal("waiting", waiter:status())
      waiter:cancel()
      assert.same({false, sched.cancelled}, {waiter:join()})
      assert.is_false(p:exited()) -- still running
      assert.equal(base + 1, sched.stats().handles)
      assert(p:kill("KILL"))
      assert.same({nil, 9}, {p:wait()})
      p:close()
      assert.equal(base, sched.stats().handles)
    end)
  end)

  it("cancels a pending read_line and leaves no handle after close", function()
    in_task(function()
      local base = sched.stats().handles
      local p = assert(spawn(sh("read x || exit 0", {stdin = "pipe"})))
      local reader = sched.spawn(function() return p:read_line() end)
      sched.sleep(0)
      reader:cancel()
      assert.same({false, sched.cancelled}, {reader:join()})
      p:close_stdin() -- the child ends
      assert.same({0}, {p:wait()})
      p:close()
      assert.equal(base, sched.stats().handles)
    end)
  end)

  it("leaves no handle once a collected process's child exits", function()
    in_task(function()
      local base = sched.stats().handles
      do
        local p = assert(spawn(sh("read x; echo done", {stdin = "pipe"})))
        assert.is_number(p:pid())
      end
      collectgarbage()
      collectgarbage()
      -- The pipes were closed: the child reads EOF and exits.
      process.wait_detached()
      assert.equal(base, sched.stats().handles)
    end)
  end)

  it("kills the child on close with kill_on_close", function()
    in_task(function()
      local base = sched.stats().handles
      do
        local p <close> = assert(spawn{argv = {"sleep", "30"}, kill_on_close = true,
          env_extra = {LD_PRELOAD = false}})
        assert.is_false(p:exited())
      end
      process.wait_detached()
      assert.equal(base, sched.stats().handles)
    end)
  end)

  it("raises on use after close and on two readers", function()
    in_task(function()
      local p = assert(spawn(sh("read x", {stdin = "pipe"})))
      local r1 = sched.spawn(function() return p:read_line() end)
      sched.sleep(0)
      local ok, err = pcall(p.read_line, p)
      assert.is_false(ok)
      assert.matches("another task is already waiting", err)
      r1:cancel()
      r1:join()
      p:close_stdin()
      p:wait()
      p:close()
      ok, err = pcall(p.read_line, p)
      assert.matches("process: used after close", err)
      ok, err = pcall(p.read_line, assert(spawn{argv = {"true"}, stdout = "null"}))
      assert.matches("stdout is not a pipe", err)
    end)
  end)

  it("fails to spawn in a missing directory", function()
    local p, err, code = in_task(function()
      return process.spawn{argv = {"true"}, cwd = "/nonexistent-dir"}
    end)
    assert.is_nil(p)
    assert.equal("spawn", code)
    assert.equal("spawn true: ENOENT: no such file or directory (in /nonexistent-dir)", err)
  end)
end)

describe("process.quote", function()
  it("makes any text one word of a sh command line, as it is", function()
    local words = {"plain", "", "two words", "it's", "'", "''", "$HOME `id` $(id) \\ \"q\" * ?", "a\nb", "-n", "ü"}
    local line = {"printf '%s\\0'"}
    for i, w in ipairs(words) do line[i + 1] = process.quote(w) end
    local out = in_task(function()
      return assert(process.output(clean{argv = {"sh", "-c", table.concat(line, " ")}}))
    end)
    local got = {}
    for w in out:gmatch("([^%z]*)%z") do got[#got + 1] = w end
    assert.same(words, got)
  end)
end)
