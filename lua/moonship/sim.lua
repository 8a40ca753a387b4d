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

-- sim.start{scenario=, time_scale=, seed=, dir=} -> sim {url=, kubeconfig=, process=} or nil, err.
-- sim:stop() (or closing it: `local sim <close> = ...`) stops kubesim and removes the folder
-- of its kubeconfig when sim.start made it. kubesim also exits when this process dies.
function M.start(opts)
  opts = opts or {}
  local dir, own_dir = opts.dir, false
  if dir then
    local ok, merr = fs.mkdir_p(dir)
    if not ok then return nil, merr end
  else
    local made, merr = fs.mkdtemp("moonship-sim-")
    if not made then return nil, merr end
    dir, own_dir = made, true
  end
  local kubeconfig = dir .. "/kubeconfig"
  local function remove_dir()
    os.remove(kubeconfig)
    if own_dir then os.remove(dir) end
  end
  local argv = {M.binary(), "--listen", "127.0.0.1:0", "--kubeconfig-out", kubeconfig, "--exit-with-parent"}
  if opts.scenario then argv[#argv + 1] = "--scenario"; argv[#argv + 1] = opts.scenario end
  if opts.time_scale then argv[#argv + 1] = "--time-scale"; argv[#argv + 1] = tostring(opts.time_scale) end
  if opts.seed then argv[#argv + 1] = "--seed"; argv[#argv + 1] = tostring(opts.seed) end
  local proc, err = process.spawn {argv = argv, stdout = "pipe", stderr = "pipe", kill_on_close = true,
                                   new_session = true}
  if not proc then
    remove_dir()
    return nil, "kubesim: " .. tostring(err)
  end
  local line = proc:read_line()
  local url = line and line:match("listening on (%S+)")
  if not url then
    local errtext = (proc:read_all("stderr") or ""):gsub("%s+$", "")
    local code = proc:wait()
    remove_dir()
    return nil, ("kubesim did not start (exit %s)%s"):format(tostring(code), errtext ~= "" and (": " .. errtext) or "")
  end
  return setmetatable({url = url, kubeconfig = kubeconfig, process = proc, dir = dir, remove_dir = remove_dir}, Sim)
end

function Sim:stop()
  local proc = self.process
  if proc then
    self.process = nil
    proc:kill("TERM")
    -- A cancelled wait (a second Ctrl-C) still leaves nothing behind: the close kills it.
    local ok = pcall(proc.wait, proc)
    if not ok then proc:close() end
  end
  if self.remove_dir then
    self.remove_dir()
    self.remove_dir = nil
  end
end
Sim.__close = Sim.stop

-- Collected without a stop (a script that forgot it): kill it, without waiting.
function Sim:__gc()
  if self.process then self.process:close() end
  if self.remove_dir then self.remove_dir() end
end

return M
