-- Runs commands for the end-to-end specs: captures stdout, stderr and the exit code.
local M = {}

local function quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end
M.quote = quote

local function read_file(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end
M.read_file = read_file

function M.write_file(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
  return path
end

function M.tmpdir()
  local p = io.popen("mktemp -d")
  local dir = p:read("l")
  p:close()
  return dir
end

-- run{argv..., env={K=V}, stdin=text} -> {code=, stdout=, stderr=}
function M.run(spec)
  -- The sanitizer build preloads the ASan runtime into lua5.4 only; commands run from a spec
  -- must not inherit it (shell tools would report their own leaks).
  local parts = {"env -u LD_PRELOAD"}
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

return M
