-- http.request against ms-testserver (tests/support/testserver.c) on loopback.
local sched = require "moonship.sched"
local http = require "moonship.http"
local proc = require "support.proc"
local testserver = require "support.testserver"

local start_server = testserver.start

local function sh(cmd)
  assert(os.execute("env -u LD_PRELOAD sh -c '" .. cmd .. "' >/dev/null 2>&1"), cmd)
end


local base, stop

setup(function() base, stop = start_server() end)
teardown(function() stop() end)

local function run(fn) return sched.run(fn) end

describe("http.request", function()
  it("sends method, headers and body and returns status, headers and body", function()
    local res = run(function()
      return http.request{method = "POST", url = base .. "/echo",
                          headers = {["X-Test"] = "one", Authorization = "Bearer secret"},
                          body = "hello\0world", timeout = 10}
    end)
    assert.equal(200, res.status)
    assert.equal("text/plain", res.headers["content-type"])
    assert.matches("^POST\n", res.body)
    assert.matches("X%-Test: one\n", res.body)
    assert.equal("hello\0world", res.body:sub(-11))
  end)

  it("returns non-2xx statuses as responses, with lowercased header names", function()
    local res = run(function()
      return http.request{url = base .. "/status?code=503&retry_after=1"}
    end)
    assert.equal(503, res.status)
    assert.equal("1", res.headers["retry-after"])
    assert.equal("", res.body)
  end)

  it("must be called inside a task", function()
    local ok, err = pcall(http.request, {url = base .. "/echo"})
    assert.is_false(ok)
    assert.matches("http.request must be called inside a task", err)
  end)

  it("rejects unknown and mistyped options", function()
    local cases = {
      {{url = base, bogus = 1}, "http.request: unknown option 'bogus'"},
      {{url = base, tls = {ca = "x", cafile = "y"}}, "http.request: tls: unknown option 'cafile'"},
      {{url = base, timeout = "3"}, "http.request: option 'timeout' must be a number"},
      {{url = base, timeout = -1}, "http.request: option 'timeout' must be a non-negative number of seconds"},
      {{url = base, on_data = true}, "http.request: option 'on_data' must be a function"},
      {{url = base, headers = {["Bad Name"] = "v"}}, "http.request: invalid header 'Bad Name'"},
      {{url = base, headers = {X = "a\r\nInjected: 1"}}, "http.request: invalid header 'X'"},
      {{url = base, tls = {insecure = "yes"}}, "http.request: tls: option 'insecure' must be a boolean"},
      {{method = "GET"}, "http.request: option 'url' is required"},
    }
    run(function()
      for _, case in ipairs(cases) do
        local ok, err = pcall(http.request, case[1])
        assert.is_false(ok)
        assert.equal(case[2], err:gsub("^.-:%d+: ", ""))
      end
    end)
    assert.equal(0, http.stats().transfers)
  end)

  it("runs 100 concurrent requests on one loop, overlapping", function()
    local n, ok = 100, 0
    local elapsed = run(function()
      local t0 = sched.now()
      local tasks = {}
      for i = 1, n do
        tasks[i] = sched.spawn(function()
          return http.request{url = base .. "/delay?ms=300", timeout = 30}
        end)
      end
      sched.sleep(0)
      assert.equal(n, http.stats().transfers)
      for i = 1, n do
        local done, res = tasks[i]:join()
        if done and res and res.status == 200 and res.body == "ok" then ok = ok + 1 end
      end
      return sched.now() - t0
    end)
    print(string.format("\n# %d concurrent requests to /delay?ms=300: %.3f s", n, elapsed))
    assert.equal(n, ok)
    assert.is_true(elapsed < 10)
    assert.equal(0, http.stats().transfers)
  end)

  it("goes through a proxy", function()
    local res = run(function()
      return http.request{url = "http://proxied.invalid/echo", proxy = base, timeout = 10}
    end)
    assert.equal(200, res.status)
    assert.matches("Host: proxied%.invalid\n", res.body)
  end)

  it("reuses connections for sequential requests", function()
    local counts = run(function()
      local c = {}
      for i = 1, 3 do c[i] = http.request{url = base .. "/count"}.body end
      return c
    end)
    assert.equal(counts[1], counts[2])
    assert.equal(counts[1], counts[3])
  end)
end)

describe("http.request errors", function()
  it("times out", function()
    local t0 = sched.now()
    local res, msg, code = run(function()
      return http.request{url = base .. "/delay?ms=3000", timeout = 0.2}
    end)
    assert.is_nil(res)
    assert.equal("timeout", code)
    assert.matches("^GET " .. base:gsub("%p", "%%%0") .. "/delay%?ms=3000: ", msg)
    assert.is_true(sched.now() - t0 < 2.5)
  end)

  it("reports a refused connection as connect", function()
    -- A port nobody listens on: the test server's, once stopped.
    local url, stop_other = start_server()
    stop_other()
    local res, _, code = run(function() return http.request{url = url .. "/", timeout = 10} end)
    assert.is_nil(res)
    assert.equal("connect", code)
  end)

  it("reports a connection dropped mid-response as closed", function()
    local res, _, code = run(function() return http.request{url = base .. "/close"} end)
    assert.is_nil(res)
    assert.equal("closed", code)
  end)

  it("times out a stream that goes quiet (idle_timeout)", function()
    local got = {}
    local res, _, code = run(function()
      return http.request{url = base .. "/chunks?n=3&interval_ms=4000", idle_timeout = 1,
                          on_data = function(chunk) got[#got + 1] = chunk end}
    end)
    assert.is_nil(res)
    assert.equal("timeout", code)
    assert.same({"chunk 0\n"}, got)
  end)

  it("reports an unknown host as resolve", function()
    local _, _, code = run(function()
      return http.request{url = "http://no-such-host.invalid/", timeout = 10}
    end)
    assert.equal("resolve", code)
  end)
end)

describe("http.request with on_data", function()
  it("delivers chunks in the task while the stream is still open", function()
    local chunks, times, in_flight = {}, {}, {}
    local res, finished = run(function()
      local r = http.request{url = base .. "/chunks?n=5&interval_ms=100", on_data = function(chunk)
        chunks[#chunks + 1] = chunk
        times[#times + 1] = sched.now()
        in_flight[#in_flight + 1] = http.stats().transfers
      end}
      return r, sched.now()
    end)
    assert.equal(200, res.status)
    assert.is_nil(res.body)
    assert.equal("chunk 0\nchunk 1\nchunk 2\nchunk 3\nchunk 4\n", table.concat(chunks))
    -- The first chunk arrived while the transfer was still going: it was not buffered.
    assert.equal(1, in_flight[1])
    for i = 1, #times do
      assert.is_true(times[i] <= finished)
      if i > 1 then assert.is_true(times[i] >= times[i - 1]) end
    end
    print(string.format("\n# chunk arrival (s after the first): %s", table.concat((function()
      local t = {}
      for i = 1, #times do t[i] = string.format("%.3f", times[i] - times[1]) end
      return t
    end)(), " ")))
  end)

  it("keeps the body of an error answer whole instead of streaming it", function()
    local got = {}
    local res = run(function()
      return http.request{url = base .. "/status?code=406&body=not%20acceptable",
                          on_data = function(chunk) got[#got + 1] = chunk end}
    end)
    assert.equal(406, res.status)
    assert.equal("not acceptable", res.body)
    assert.same({}, got)
  end)

  it("lets on_data yield, keeping chunks in order", function()
    local got = {}
    run(function()
      http.request{url = base .. "/chunks?n=20&interval_ms=5", on_data = function(chunk)
        got[#got + 1] = chunk
        sched.sleep(0.02)
      end}
    end)
    local expect = {}
    for i = 0, 19 do expect[#expect + 1] = "chunk " .. i .. "\n" end
    assert.equal(table.concat(expect), table.concat(got))
  end)

  it("stops the transfer when on_data returns false", function()
    local n = 0
    local res = run(function()
      return http.request{url = base .. "/chunks?n=100&interval_ms=20", on_data = function()
        n = n + 1
        if n == 2 then return false end
      end}
    end)
    assert.equal(2, n)
    assert.equal(200, res.status)
    assert.equal("text/plain", res.headers["content-type"])
    assert.equal(0, http.stats().transfers)
  end)

  it("stops the transfer when on_data raises", function()
    local ok, err = pcall(run, function()
      http.request{url = base .. "/chunks?n=100&interval_ms=20", on_data = function()
        error("no thanks")
      end}
    end)
    assert.is_false(ok)
    assert.matches("no thanks", err)
    assert.equal(0, http.stats().transfers)
  end)

  it("never drops data when on_data is slower than the network", function()
    local total, calls = 0, 0
    run(function()
      http.request{url = base .. "/bytes?n=5000000", on_data = function(chunk)
        total = total + #chunk
        calls = calls + 1
        if calls % 50 == 0 then sched.sleep(0.01) end
      end}
    end)
    assert.equal(5000000, total)
  end)
end)

describe("cancelling a task mid-request", function()
  -- Yields until every task is suspended in its request (the transfer has started).
  local function until_waiting(tasks)
    for _ = 1, 1000 do
      local all = true
      for _, t in ipairs(tasks) do if t:status() ~= "waiting" then all = false end end
      if all then return end
      sched.sleep(0)
    end
    error("the requests never started")
  end

  it("stops the transfer and leaves nothing behind", function()
    local outcome = {run(function()
      local t = sched.spawn(function()
        return http.request{url = base .. "/delay?ms=5000"}
      end)
      until_waiting {t}
      assert.equal(1, http.stats().transfers)
      t:cancel()
      return t:join()
    end)}
    assert.same({false, sched.cancelled}, outcome)
    assert.equal(0, http.stats().transfers)
    assert.equal(0, sched.stats().handles)
  end)

  it("stops a stream whose on_data is waiting", function()
    local outcome = {run(function()
      local in_on_data = sched.event()
      local t = sched.spawn(function()
        return http.request{url = base .. "/chunks?n=100&interval_ms=10",
                            on_data = function() in_on_data:set() sched.sleep(10) end}
      end)
      in_on_data:wait()
      t:cancel()
      return t:join()
    end)}
    assert.same({false, sched.cancelled}, outcome)
    assert.equal(0, http.stats().transfers)
  end)

  it("cancels the requests of tasks left running when sched.run returns", function()
    local in_flight
    run(function()
      local tasks = {}
      for i = 1, 3 do
        tasks[i] = sched.spawn(function() http.request{url = base .. "/delay?ms=5000"} end)
      end
      until_waiting(tasks)
      in_flight = http.stats().transfers
    end)
    assert.equal(3, in_flight)
    assert.equal(0, http.stats().transfers)
  end)
end)

describe("http.request over TLS with in-memory PEM data", function()
  local dir, tls_base, stop_tls, ca, other, other_key

  setup(function()
    dir = os.tmpname()
    os.remove(dir)
    sh("mkdir -p " .. dir)
    for _, n in ipairs{"server", "other"} do
      sh(("cd %s && openssl req -x509 -newkey rsa:2048 -nodes -keyout %s.key -out %s.crt " ..
          "-days 1 -subj /CN=kube.test -addext subjectAltName=DNS:kube.test,IP:127.0.0.1")
         :format(dir, n, n))
    end
    ca, other, other_key = proc.read_file(dir .. "/server.crt"), proc.read_file(dir .. "/other.crt"),
                           proc.read_file(dir .. "/other.key")
    tls_base, stop_tls = start_server(("--tls %s/server.crt %s/server.key"):format(dir, dir))
  end)

  teardown(function()
    stop_tls()
    sh("rm -rf " .. dir)
  end)

  local function get(tls)
    return run(function() return http.request{url = tls_base .. "/echo", tls = tls, timeout = 10} end)
  end

  it("verifies the server with a CA given as data", function()
    local res = get{ca = ca}
    assert.equal(200, res.status)
  end)

  it("fails with tls on a wrong CA or none", function()
    local res, _, code = get{ca = other}
    assert.is_nil(res)
    assert.equal("tls", code)
    res, _, code = get(nil)
    assert.equal("tls", code)
  end)

  it("skips verification when insecure", function()
    assert.equal(200, get{insecure = true}.status)
  end)

  it("verifies server_name instead of the URL's host", function()
    local res = get{ca = ca, server_name = "kube.test"}
    assert.equal(200, res.status)
    assert.matches("Host: 127%.0%.0%.1:", res.body)
    local _, _, code = get{ca = ca, server_name = "other.test"}
    assert.equal("tls", code)
  end)

  it("accepts a client certificate and key as data", function()
    assert.equal(200, get{ca = ca, cert = other, key = other_key}.status)
  end)
end)
