-- Starting kubesim for a run (`moonship deploy --sim`) or a script: a loopback API server on a
-- free port, with a kubeconfig written for it, stopped when the run ends.
local process = require "moonship.process"
local fs = require("moonship.core").fs

local M = {}

local Sim = {}
Sim.__index = Sim

-- The kubesim binary: $MOONSHIP_KUBESIM, beside the running executable, or on PATH.
function M.binary()
  local env = os.getenv("MOONSHIP_KUBESIM")
  if env and env ~= "" then return env end
  local exe = require("moonship.core").executable
  local dir = exe and exe:match("^(.*)/[^/]*$")
  if dir then
    local candidate = dir .. "/moonship-kubesim"
    local f = io.open(candidate)
    if f then f:close() return candidate end
  end
  return "moonship-kubesim"
end

-- sim.start{scenario=, time_scale=, seed=, dir=} -> sim {url=, kubeconfig=, process=} or nil, err
function M.start(opts)
  opts = opts or {}
  local dir = opts.dir or os.tmpname()
  os.remove(dir)
  local ok, merr = fs.mkdir_p(dir)
  if not ok then return nil, merr end
  local kubeconfig = dir .. "/kubeconfig"
  local argv = {M.binary(), "--listen", "127.0.0.1:0", "--kubeconfig-out", kubeconfig}
  if opts.scenario then argv[#argv + 1] = "--scenario"; argv[#argv + 1] = opts.scenario end
  if opts.time_scale then argv[#argv + 1] = "--time-scale"; argv[#argv + 1] = tostring(opts.time_scale) end
  if opts.seed then argv[#argv + 1] = "--seed"; argv[#argv + 1] = tostring(opts.seed) end
  local proc, err = process.spawn {argv = argv, stdout = "pipe", stderr = "pipe", kill_on_close = true}
  if not proc then return nil, "kubesim: " .. tostring(err) end
  local line = proc:read_line()
  local url = line and line:match("listening on (%S+)")
  if not url then
    local errtext = (proc:read_all("stderr") or ""):gsub("%s+$", "")
    local code = proc:wait()
    return nil, ("kubesim did not start (exit %s)%s"):format(tostring(code), errtext ~= "" and (": " .. errtext) or "")
  end
  return setmetatable({url = url, kubeconfig = kubeconfig, process = proc, dir = dir}, Sim)
end

function Sim:stop()
  if self.process then
    self.process:kill("TERM")
    self.process:wait()
    self.process = nil
  end
end

return M
