-- Starting kubesim for a run (`moonship deploy --sim`) or a script: a loopback API server on a
-- free port, with a kubeconfig written for it, stopped when the run ends.
local process = require "moonship.process"
local fs = require "moonship.fs"

local M = {}

local Sim = {}
Sim.__index = Sim

local NAME = "moonship-kubesim"

-- The folders moonship-kubesim may be in, in order: the running executable's (the moonship
-- binary), then the core module's and those above it, each with its bin/ (a stock lua5.4
-- loading core.so from a build tree, build/lib/moonship/core.so beside build/moonship-kubesim,
-- or from an installation, <prefix>/lib/lua/5.4/moonship/core.so with <prefix>/bin).
local function search_dirs()
  local core = require "moonship.core"
  local exe_dir = core.executable and fs.dirname(core.executable)
  local module_dir = core.module_path and core.module_path ~= core.executable
    and fs.dirname(core.module_path)
  return exe_dir, module_dir
end

-- Every path tried before PATH, in order.
function M.candidates()
  local exe_dir, dir = search_dirs()
  local out, seen = {}, {}
  local function add(d)
    local path = fs.join(d, NAME)
    if not seen[path] then seen[path] = true; out[#out + 1] = path end
  end
  if exe_dir then add(exe_dir) end
  for _ = 1, 6 do -- up to, not including, the root (or the top of a relative path)
    if not dir or dir == "/" or dir == "." then break end
    add(dir)
    add(dir .. "/bin")
    dir = fs.dirname(dir)
  end
  return out
end

-- The kubesim binary: $MOONSHIP_KUBESIM, else the first of M.candidates() that exists, else
-- one on PATH; nil and where it looked when there is none. getenv: os.getenv (tests).
function M.binary(getenv)
  getenv = getenv or os.getenv
  local env = getenv("MOONSHIP_KUBESIM")
  if env and env ~= "" then return env end
  for _, path in ipairs(M.candidates()) do
    if fs.exists(path) then return path end
  end
  for dir in (getenv("PATH") or ""):gmatch("[^:]+") do
    if fs.exists(dir .. "/" .. NAME) then return dir .. "/" .. NAME end
  end
  local exe_dir, module_dir = search_dirs()
  local where = {}
  if exe_dir then where[#where + 1] = exe_dir end
  if module_dir then where[#where + 1] = module_dir .. " (or a bin/ above it)" end
  return nil, ("%s not found beside %s or on PATH (set MOONSHIP_KUBESIM to its path)"):format(NAME,
    #where > 0 and table.concat(where, ", ") or "the program")
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
  local binary, berr = M.binary()
  if not binary then
    remove_dir()
    return nil, "kubesim: " .. berr
  end
  local argv = {binary, "--listen", "127.0.0.1:0", "--kubeconfig-out", kubeconfig, "--exit-with-parent"}
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
