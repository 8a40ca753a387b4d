-- nil, message, code from every binding (src/lua): each failure below returns exactly those
-- three values, and its code is one of the one documented list, which src/lua/modules.h (beside
-- ms_fail) and README.md's "Errors" table give alike.
local core = require "moonship.core"
local sched = require "moonship.sched"
local fs = require "moonship.fs"
local yaml = require "moonship.yaml"
local json = require "moonship.json"
local http = require "moonship.http"
local process = require "moonship.process"

local SOURCE = os.getenv("MOONSHIP_SOURCE_DIR") or "."

local function source(path) return assert(fs.read(SOURCE .. "/" .. path)) end

-- The codes of the list in modules.h: a line " *   code   meaning" (or "a, b, c   meaning").
local function header_codes()
  local codes = {}
  for line in source("src/lua/modules.h"):gmatch("[^\n]+") do
    local words = line:match("^ %*   (%l[%l_, ]-)%s%s+%S")
    if words then
      for w in words:gmatch("[%l_]+") do codes[w] = true end
    end
  end
  return codes
end

-- The codes of README.md's table under "### Errors: `nil, message, code`".
local function readme_codes()
  local section = assert(source("README.md"):match("\n### Errors: `nil, message, code`\n(.-)\n#"))
  local codes = {}
  for code in section:gmatch("\n| `([%l_]+)` |") do codes[code] = true end
  return codes
end

local CODES = header_codes()

describe("the list of codes", function()
  it("is the same in modules.h and README.md", function()
    assert.is_true(CODES.io and CODES.parse and CODES.timeout and true or false)
    assert.same(CODES, readme_codes())
  end)

  it("has every code a binding gives: ms_fail's words and http's tokens", function()
    local used = {}
    for _, name in ipairs(assert(fs.list(SOURCE .. "/src/lua"))) do
      if name:match("%.c$") then
        local text = source("src/lua/" .. name)
        for code in text:gmatch('ms_fail%([%w_>()&.-]+,%s*"([^"]*)"') do used[code] = name end
      end
    end
    local tokens = assert(source("src/core/http.c"):match("tokens%[%] = {(.-)}"))
    for code in tokens:gmatch('"([^"]+)"') do
      if code ~= "ok" then used[code] = "core/http.c" end
    end
    assert.is_not_nil(next(used))
    for code, where in pairs(used) do
      assert.is_true(CODES[code] or false, where .. ": code '" .. code .. "' is not in the list")
    end
  end)
end)

-- A case that runs fn(p) with a process spawned with opts, closed after.
local function with_process(opts, fn)
  return function()
    local p <close> = assert(process.spawn(opts))
    return fn(p)
  end
end

-- Each case: what, the code it must give, its message (a pattern when it starts with "^"), and
-- the call, run in a task (some wait).
local cases = {
  {"fs.mkdir_p under a file", "io", "/dev/null: Not a directory",
   function() return fs.mkdir_p("/dev/null/x") end},
  {"fs.list", "io", "/nonexistent/dir: No such file or directory",
   function() return fs.list("/nonexistent/dir") end},
  {"fs.type", "io", "/nonexistent: No such file or directory",
   function() return fs.type("/nonexistent") end},
  {"fs.mkdtemp", "io", "^.*/no/such/dir/x......: No such file or directory$",
   function() return fs.mkdtemp("no/such/dir/x") end},
  {"fs.read", "io", "/nonexistent/f: No such file or directory",
   function() return fs.read("/nonexistent/f") end},
  {"fs.write", "io", "/nonexistent/f: No such file or directory",
   function() return fs.write("/nonexistent/f", "x") end},
  {"yaml.load", "parse", "<string>:2:1: did not find expected node content (while parsing a flow node started at 2:1)",
   function() return yaml.load("a: [") end},
  {"yaml.load_file", "io", "/nonexistent/app.yaml: No such file or directory",
   function() return yaml.load_file("/nonexistent/app.yaml") end},
  {"json.decode", "parse", "json: 1:2/1: unexpected end of input",
   function() return json.decode("[") end},
  {"codec.gunzip of what is not gzip", "parse", "^gunzip: ",
   function() return core.codec.gunzip("not gzip") end},
  {"codec.gunzip past its limit", "parse", "gunzip: the data would decompress to more than 10 bytes",
   function() return core.codec.gunzip(core.codec.gzip(string.rep("x", 100)), 10) end},
  {"codec.base64_decode", "parse", "base64: not valid base64",
   function() return core.codec.base64_decode("!!") end},
  {"a watch decoder's feed of what is not JSON", "parse", "watch stream: not a stream of JSON objects",
   function() return core.watch.decoder():feed("x") end},
  {"a watch decoder's feed of an event too large", "parse", "watch stream: event too large",
   function() return core.watch.decoder(4):feed('{"abcdef": 1}') end},
  {"term.size", "io", "terminal size: EBADF: bad file descriptor", function() return core.term.size(999) end},
  {"term.write", "io", "terminal write: EBADF: bad file descriptor",
   function() return core.term.write(999, "x") end},
  {"kubeconfig.load", "kubeconfig", "^/nonexistent/config: ",
   function() return core.kubeconfig.load {kubeconfig = "/nonexistent/config"} end},
  {"process.run of a missing program", "spawn", "spawn /nonexistent/prog: ENOENT: no such file or directory",
   function() return process.run {argv = {"/nonexistent/prog"}} end},
  {"process.spawn of a missing program", "spawn", "spawn /nonexistent/prog: ENOENT: no such file or directory",
   function() return process.spawn {argv = {"/nonexistent/prog"}} end},
  {"process.run past its timeout", "timeout", "run sleep: timed out after 0.05 s (killed)",
   function() return process.run {argv = {"sleep", "5"}, timeout = 0.05, kill_grace = 0.05} end},
  {"Process:write after close_stdin", "closed", "write to cat: stdin is closed",
   with_process({argv = {"cat"}, stdin = "pipe", stdout = "null"}, function(p)
     p:close_stdin()
     return p:write("x")
   end)},
  {"Process:write to a child that closed its stdin", "io", "write to sh: EPIPE: broken pipe",
   with_process({argv = {"sh", "-c", "exec 0<&-; echo closed"}, stdin = "pipe"}, function(p)
     assert.equal("closed", p:read_line())
     p:wait()
     return p:write(string.rep("x", 1 << 20))
   end)},
  {"Process:kill of a process that has exited", "exited", "kill true: the process has exited",
   with_process({argv = {"true"}, stdout = "null"}, function(p)
     p:wait()
     return p:kill()
   end)},
  {"http.request of a scheme curl does not speak", "http", 'GET foo://x: Protocol "foo" not supported or disabled in libcurl',
   function() return http.request {url = "foo://x"} end},
  {"sched.park past its timeout", "timeout", "timeout", function() return sched.park(0.001) end},
  {"sched.timeout", "timeout", "timeout", function() return sched.timeout(0.001, sched.sleep, 5) end},
  {"a resize watcher closed while waited on", "closed", "closed", function()
    local w = core.term.resize_watcher()
    local waiter = sched.spawn(function() return table.pack(w:wait()) end)
    sched.sleep(0)
    w:close()
    local _, r = waiter:join()
    return table.unpack(r, 1, r.n)
  end},
}

describe("every binding's failure", function()
  for _, c in ipairs(cases) do
    local what, code, message, fn = c[1], c[2], c[3], c[4]
    it("is nil, message, code: " .. what, function()
      local r = sched.run(function() return table.pack(fn()) end)
      assert.equal(3, r.n)
      assert.is_nil(r[1])
      assert.equal(code, r[3])
      assert.is_true(CODES[code] or false, code .. " is not in the list")
      if message:sub(1, 1) == "^" then
        assert.matches(message, r[2])
      else
        assert.equal(message, r[2])
      end
    end)
  end
end)
