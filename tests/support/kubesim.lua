-- Starts moonship-kubesim for a test and talks to it: the kubeconfig it writes, its counters,
-- and the real kubectl (MOONSHIP_KUBECTL) with a throwaway HOME, so kubectl's discovery cache
-- never leaks between tests. Plain Lua 5.4; JSON through dkjson.
--
--   local kubesim = require "support.kubesim"
--   local sim = kubesim.start {scenario = "path or YAML text or table", time_scale = 0.01,
--                              seed = 7, tls = true, args = {"--history", "100"}}
--   sim.url, sim.kubeconfig, sim.token, sim.dir
--   local ok, out, err, code = sim:kubectl("get", "pods", "-o", "name")
--   local stats = sim:stats()
--   sim:with_namespace(function(client, ns) ... end)   -- a moonship.kube client, a new namespace
--   local code, body, headers = sim:request("POST", "/api/v1/namespaces/default/configmaps",
--                                           {body = "...", headers = {["Content-Type"] = "..."}})
--   sim:stop()
local json = require "dkjson"
local proc = require "support.proc"

local M = {}
local Sim = {}
Sim.__index = Sim

-- The tools started from here (an instrumented kubesim links the ASan runtime itself) do not
-- inherit the test runner's preload (proc.CLEAN).
local CLEAN = proc.CLEAN

local q, write_file, exists = proc.quote, proc.write_file, proc.exists

-- The file's text, or nil when kubesim never wrote it.
local function read_file(path)
  local ok, text = pcall(proc.read_file, path)
  return ok and text or nil
end

function M.binary()
  return os.getenv("MOONSHIP_KUBESIM") or "build/moonship-kubesim"
end

-- The kubectl of the real control plane's release (scripts/real-cluster --build-only builds it
-- into <build>/realcluster/kubectl; MOONSHIP_KUBECTL names another), or nil and the line that
-- says why the tests that need it are skipped.
function M.kubectl_path()
  local k = os.getenv("MOONSHIP_KUBECTL")
  if k and k ~= "" then return k end
  local candidates = {}
  local build = os.getenv("MOONSHIP_BUILD_DIR")
  if build and build ~= "" then candidates[#candidates + 1] = build .. "/realcluster/kubectl" end
  candidates[#candidates + 1] = proc.source_dir .. "/build/realcluster/kubectl"
  for _, path in ipairs(candidates) do
    if exists(path) then return path end
  end
  return nil, ("SKIP kubectl: %s not found (build it: scripts/real-cluster --build-only)"):format(candidates[1])
end

-- A scenario given as a table is written as JSON (which is YAML); as text with a newline it is
-- written as is; otherwise it is a path.
local function scenario_file(dir, scenario)
  if type(scenario) == "table" then
    return write_file(dir .. "/scenario.yaml", json.encode(scenario))
  elseif scenario:find("\n") then
    return write_file(dir .. "/scenario.yaml", scenario)
  end
  return scenario
end

function M.start(opts)
  opts = opts or {}
  local dir = proc.tmpdir("kubesim-test-")
  local self = setmetatable({dir = dir, kubeconfig = dir .. "/kubeconfig", home = dir .. "/home"}, Sim)
  os.execute("mkdir -p " .. q(self.home))
  local args = {q(M.binary()), "--listen", "127.0.0.1:0", "--kubeconfig-out", q(self.kubeconfig)}
  if opts.scenario then args[#args + 1] = "--scenario " .. q(scenario_file(dir, opts.scenario)) end
  if opts.time_scale then args[#args + 1] = "--time-scale " .. q(opts.time_scale) end
  if opts.seed then args[#args + 1] = "--seed " .. q(opts.seed) end
  if opts.tls then args[#args + 1] = "--tls" end
  if opts.token then args[#args + 1] = "--token " .. q(opts.token) end
  for _, a in ipairs(opts.args or {}) do args[#args + 1] = q(a) end
  M.launch(self, args, "kubesim")
  return self
end

-- Starts the server of args (quoted words) for self {dir=, kubeconfig=}, as kubesim and the real
-- control plane both start: the shell prints its pid and execs the server in its place (the pid
-- is the server's); reading the pipe waits for its "listening on URL" line without polling.
-- Then self has url, pid, proc, errfile, and the kubeconfig's token and CA (as a file, cafile).
-- Raises, naming what did not start, with its stderr.
function M.launch(self, args, what)
  self.errfile = self.dir .. "/stderr"
  self.proc = assert(io.popen("echo $$; exec " .. CLEAN .. table.concat(args, " ") .. " 2>" .. q(self.errfile), "r"))
  self.pid = self.proc:read("l")
  local line = self.proc:read("l")
  local url = line and line:match("listening on (%S+)")
  if not url then
    self.proc:close()
    local err = read_file(self.errfile) or ""
    os.execute("rm -rf " .. q(self.dir))
    error(what .. " did not start: " .. (line or "") .. " " .. err, 3)
  end
  self.url = url
  local kc = read_file(self.kubeconfig) or ""
  self.token = kc:match("token: (%S+)")
  self.ca_data = kc:match("certificate%-authority%-data: (%S+)")
  if self.ca_data then
    self.cafile = self.dir .. "/ca.crt"
    os.execute(("printf %%s %s | base64 -d > %s"):format(q(self.ca_data), q(self.cafile)))
  end
end

-- Runs kubectl against this simulator: returns ok, stdout, stderr, exit code.
function Sim:kubectl(...)
  local kubectl = assert(M.kubectl_path(), "MOONSHIP_KUBECTL is not set")
  local parts = {CLEAN .. "HOME=" .. q(self.home), q(kubectl), "--kubeconfig", q(self.kubeconfig)}
  for _, a in ipairs({...}) do parts[#parts + 1] = q(a) end
  local errfile = self.dir .. "/kubectl.err"
  local p = assert(io.popen(table.concat(parts, " ") .. " 2>" .. q(errfile), "r"))
  local out = p:read("a")
  local ok, _, code = p:close()
  return ok == true, out, read_file(errfile) or "", code
end

-- Starts a long-running kubectl (get -w, logs -f): returns an object with :line() (the next
-- stdout line, nil at the end) and :stop().
function Sim:kubectl_stream(...)
  local kubectl = assert(M.kubectl_path(), "MOONSHIP_KUBECTL is not set")
  local parts = {"exec", CLEAN .. "HOME=" .. q(self.home), q(kubectl), "--kubeconfig", q(self.kubeconfig)}
  for _, a in ipairs({...}) do parts[#parts + 1] = q(a) end
  local p = assert(io.popen("echo $$; " .. table.concat(parts, " ") .. " 2>/dev/null", "r"))
  local pid = p:read("l")
  return {
    line = function() return p:read("l") end,
    stop = function()
      os.execute("kill " .. pid .. " 2>/dev/null")
      p:close()
    end,
  }
end

-- A raw HTTP request with curl: returns the status code, the body and the raw headers.
function Sim:request(method, path, opts)
  opts = opts or {}
  local parts = {CLEAN .. "curl", "-s", "-S", "-X", q(method), "-o", q(self.dir .. "/body"), "-D", q(self.dir .. "/headers"),
                 "-w", "'%{http_code}'"}
  if self.cafile then parts[#parts + 1] = "--cacert " .. q(self.cafile) end
  local token = opts.token
  if token == nil then token = self.token end
  if self.cafile and token then parts[#parts + 1] = "-H " .. q("Authorization: Bearer " .. token) end
  for k, v in pairs(opts.headers or {}) do parts[#parts + 1] = "-H " .. q(k .. ": " .. v) end
  if opts.body then
    write_file(self.dir .. "/reqbody", opts.body)
    parts[#parts + 1] = "--data-binary @" .. q(self.dir .. "/reqbody")
  end
  if opts.max_time then parts[#parts + 1] = "--max-time " .. q(opts.max_time) end
  parts[#parts + 1] = q(self.url .. path)
  os.remove(self.dir .. "/body")
  local p = assert(io.popen(table.concat(parts, " ") .. " 2>/dev/null", "r"))
  local code = tonumber(p:read("a"))
  p:close()
  return code, read_file(self.dir .. "/body") or "", read_file(self.dir .. "/headers") or ""
end

-- GET path: the status code and the decoded JSON body (what the tests check the server holds
-- with, where kubectl may not be built).
function Sim:get_json(path)
  local code, body = self:request("GET", path)
  return code, json.decode(body)
end

-- Server-side apply of a YAML (or JSON) manifest to path, as kubectl apply --server-side does:
-- the status code and the decoded answer.
function Sim:apply(path, manifest, manager)
  local code, body = self:request("PATCH", path .. "?fieldManager=" .. (manager or "test"),
    {body = manifest, headers = {["Content-Type"] = "application/apply-patch+yaml"}})
  return code, json.decode(body)
end

-- Decodes a JSON body (or returns nil, err).
function M.decode(text)
  local v, _, err = json.decode(text)
  return v, err
end

-- Runs fn(client, namespace) as sched.run's root task: a moonship.kube client of this server
-- and a namespace made for this call (so that tests sharing a server are independent of
-- order); closes the client after. Returns fn's results.
local namespaces = 0
function Sim:with_namespace(fn)
  local sched, kube = require "moonship.sched", require "moonship.kube"
  return sched.run(function()
    local c = assert(kube.connect {kubeconfig = self.kubeconfig})
    namespaces = namespaces + 1
    local ns = "test-" .. namespaces
    assert(c:apply {apiVersion = "v1", kind = "Namespace", metadata = {name = ns}})
    local r = table.pack(fn(c, ns))
    c:close()
    return table.unpack(r, 1, r.n)
  end)
end

function Sim:stats()
  local code, body = self:request("GET", "/kubesim/stats")
  assert(code == 200, "kubesim stats: HTTP " .. tostring(code))
  return assert(json.decode(body))
end

-- The simulator's stderr so far (sanitizer reports end up here).
function Sim:stderr()
  return read_file(self.errfile) or ""
end

-- Stops the simulator (SIGTERM, then waits for it) and removes its directory. Returns its
-- exit status and stderr.
function Sim:stop()
  if not self.proc then return end
  os.execute("kill -TERM " .. self.pid .. " 2>/dev/null")
  local ok, _, code = self.proc:close()
  self.proc = nil
  local err = self:stderr()
  os.execute("rm -rf " .. q(self.dir))
  return ok == true, code, err
end

M.write_file = write_file
M.read_file = read_file
M.Sim = Sim -- support.realcluster gives the real control plane the same methods
M.scenario_file = scenario_file

return M
