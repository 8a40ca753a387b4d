-- The compatibility corpora (real ReleaseHub templates, ...) are not part of the repository:
-- they are read from $MOONSHIP_COMPAT_DIR, else the directory cmake/tests.cmake found at
-- configure time, else ../shared/fixtures beside the source tree. A spec over a corpus asks
-- compat.corpus() for its directory; when it is absent, the spec's tests are skipped with one
-- line that says why (cmake/tests.cmake has ctest mark the test Skipped on that line), never
-- failed or passed.
local proc = require "support.proc"

local M = {}

local function getenv(name)
  local v = os.getenv(name)
  if v and v ~= "" then return v end
end

function M.dir()
  return getenv("MOONSHIP_COMPAT_DIR") or getenv("MOONSHIP_COMPAT_DEFAULT")
    or ((getenv("MOONSHIP_SOURCE_DIR") or ".") .. "/../shared/fixtures")
end

-- compat.corpus(name, what) -> the corpus directory <dir>/<name>, or nil and "<what> not
-- found" once the line that says why its tests are skipped is written to stderr:
--   SKIP <what>: <dir>/<name> not found (set MOONSHIP_COMPAT_DIR)
-- A spec calls it first and, without a corpus, makes that its one pending test (busted's
-- `pending` is the spec's, not a global):
--   local RH, why = compat.corpus("releasehub", "ReleaseHub corpus")
--   if not RH then pending(why) return end
function M.corpus(name, what)
  local path = M.dir() .. "/" .. name
  if proc.is_dir(path) then return path end
  io.stderr:write(("SKIP %s: %s not found (set MOONSHIP_COMPAT_DIR)\n"):format(what, path))
  return nil, what .. " not found"
end

-- The entries of a corpus directory (its subdirectories), sorted.
function M.entries(dir)
  local out = {}
  local p = assert(io.popen(proc.CLEAN .. "ls " .. proc.quote(dir)))
  for name in p:lines() do
    if proc.is_dir(dir .. "/" .. name) then out[#out + 1] = name end
  end
  p:close()
  return out
end

return M
