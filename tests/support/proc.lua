-- Runs commands for the specs (captures stdout, stderr and the exit code), and the file
-- helpers every spec shares: shell quoting, whole files, existence, a new temporary directory.
-- Plain Lua 5.4, but for the shell quoting, which is moonship.process's. Failures raise, except the questions
-- (exists, is_dir, count_lines), which answer for a missing path.
local M = {}

-- Under the sanitizer build the test runner preloads the ASan runtime into lua5.4; the tools
-- started from a spec must not inherit it (shell tools would report their own leaks; curl has
-- been seen to deadlock at start-up with it).
local CLEAN = "env -u LD_PRELOAD "
M.CLEAN = CLEAN

-- s as one word for sh (moonship.process's, pure Lua).
local quote = require("moonship.process").quote
M.quote = quote

local function read_file(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end
M.read_file = read_file

-- Writes a whole file, making its directory first when it has none; returns path.
function M.write_file(path, text)
  local f = io.open(path, "wb")
  if not f then
    os.execute("mkdir -p " .. quote(path:match("^(.*)/") or "."))
    f = assert(io.open(path, "wb"))
  end
  f:write(text)
  f:close()
  return path
end

function M.exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

function M.is_dir(path)
  local f = io.open(path .. "/.", "rb")
  if f then f:close() end
  return f ~= nil
end

-- The number of lines of a file; 0 when there is none.
function M.count_lines(path)
  local f = io.open(path, "rb")
  if not f then return 0 end
  local n = 0
  for _ in f:lines() do n = n + 1 end
  f:close()
  return n
end

-- A new directory of its own: /tmp/<prefix>XXXXXX (default prefix "moonship-test-").
function M.tmpdir(prefix)
  local p = assert(io.popen(CLEAN .. "mktemp -d /tmp/" .. quote((prefix or "moonship-test-") .. "XXXXXX")))
  local dir = p:read("l")
  p:close()
  return assert(dir, "mktemp failed")
end

-- run{argv..., env={K=V}, stdin=text} -> {code=, stdout=, stderr=}
function M.run(spec)
  local parts = {CLEAN}
  for k, v in pairs(spec.env or {}) do parts[#parts + 1] = k .. "=" .. quote(v) end
  for _, a in ipairs(spec) do parts[#parts + 1] = quote(a) end
  local err = os.tmpname()
  local cmd = table.concat(parts, " ") .. " 2>" .. quote(err)
  if spec.stdin then cmd = cmd .. " <" .. quote(M.write_file(os.tmpname(), spec.stdin)) end
  local p = io.popen(cmd .. "; echo \"exit=$?\"", "r")
  local out = p:read("a")
  p:close()
  local code = tonumber(out:match("exit=(%d+)\n?$"))
  out = out:gsub("exit=%d+\n?$", "")
  local stderr = read_file(err)
  os.remove(err)
  return {code = code, stdout = out, stderr = stderr}
end

-- The moonship binary under test.
M.moonship = os.getenv("MOONSHIP_BIN") or "build/moonship"
M.source_dir = os.getenv("MOONSHIP_SOURCE_DIR") or "."

-- `moonship plan` of a copy of the template src (and the environment variables file beside
-- it) in a new directory, so that no earlier run is beside it (default estimates): its stdout.
-- env: the command's environment (default a UTF-8 locale).
function M.plan_copy(src, workflow, args, env)
  local dir = M.tmpdir()
  local template = dir .. "/" .. src:match("[^/]*$")
  os.execute("cp " .. quote(src) .. " " .. quote(template))
  local envfile = (src:match("^(.*)/") or ".") .. "/environment_variables.yaml"
  if M.exists(envfile) then os.execute("cp " .. quote(envfile) .. " " .. quote(dir)) end
  local argv = {M.moonship, "plan", template, "-w", workflow}
  for _, a in ipairs(args or {}) do argv[#argv + 1] = a end
  argv.env = env or {LANG = "C.UTF-8", LC_ALL = "", LC_CTYPE = ""}
  local r = M.run(argv)
  assert(r.code == 0, ("moonship plan exited with %s: %s"):format(tostring(r.code), r.stderr))
  return r.stdout
end

return M
