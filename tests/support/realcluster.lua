-- Starts the real control plane (tests/realcluster via scripts/real-cluster) for a spec of the
-- `real` label, with the same face as support.kubesim: url, kubeconfig, token, dir, and the
-- kubectl, kubectl_stream and request methods, so a test reads the same against either.
--
--   local realcluster = require "support.realcluster"
--   local cluster, why = realcluster.start {scenario = "path or YAML text or table", time_scale = 0.05,
--                                           nodes = 1, args = {...}}
--   if not cluster then pending(why) return end
--   cluster:kubectl("get", "nodes"); cluster:stop()
--
-- The binary must have been built (scripts/real-cluster --build-only; `scripts/test --real` does
-- it): a spec started without it is skipped with one line that says so. The cluster dies with
-- the spec's process (it watches its parent), so a crashed runner leaves nothing behind.
local kubesim = require "support.kubesim"
local proc = require "support.proc"

local M = {}
local Cluster = setmetatable({}, {__index = kubesim.Sim})
Cluster.__index = Cluster

local q = proc.quote

-- The cluster binary, or nil and the line that says why the spec is skipped.
function M.binary()
  local build = os.getenv("MOONSHIP_BUILD_DIR")
  local candidates = {}
  if build and build ~= "" then candidates[#candidates + 1] = build .. "/realcluster/realcluster" end
  candidates[#candidates + 1] = proc.source_dir .. "/build/realcluster/realcluster"
  for _, path in ipairs(candidates) do
    if proc.exists(path) then return path end
  end
  return nil, ("SKIP real control plane: %s not found (build it: scripts/real-cluster --build-only)")
    :format(candidates[1])
end

-- start{scenario=, time_scale=, nodes=, seed=, args={...}} -> cluster | nil, why (printed)
function M.start(opts)
  opts = opts or {}
  local binary, why = M.binary()
  if not binary then
    print(why)
    return nil, why
  end
  local dir = proc.tmpdir("realcluster-test-")
  local self = setmetatable({dir = dir, kubeconfig = dir .. "/kubeconfig", home = dir .. "/home"}, Cluster)
  os.execute("mkdir -p " .. q(self.home))
  local args = {q(binary), "--kubeconfig-out", q(self.kubeconfig)}
  if opts.scenario then args[#args + 1] = "--scenario " .. q(kubesim.scenario_file(dir, opts.scenario)) end
  if opts.time_scale then args[#args + 1] = "--time-scale " .. q(opts.time_scale) end
  if opts.nodes then args[#args + 1] = "--nodes " .. q(opts.nodes) end
  if opts.seed then args[#args + 1] = "--seed " .. q(opts.seed) end
  for _, a in ipairs(opts.args or {}) do args[#args + 1] = q(a) end
  kubesim.launch(self, args, "the real control plane")
  return self
end

function Cluster:stats()
  error("the real control plane has no /kubesim/stats: count requests on the client side or with /metrics")
end

-- Stops the cluster (SIGTERM, then waits for it) and removes its directory.
function Cluster:stop()
  if not self.proc then return end
  os.execute("kill -TERM " .. self.pid .. " 2>/dev/null")
  local ok, _, code = self.proc:close()
  self.proc = nil
  local err = kubesim.read_file(self.errfile) or ""
  os.execute("rm -rf " .. q(self.dir))
  return ok == true, code, err
end

return M
