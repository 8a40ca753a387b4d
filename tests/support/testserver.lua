-- Starts ms-testserver (tests/support/testserver.c, MOONSHIP_TESTSERVER) on a free loopback
-- port for a spec, and reads what it saw.
--
--   local testserver = require "support.testserver"
--   local url, stop = testserver.start()            -- or start("--tls CERT KEY")
--   testserver.seen(url, "key")                      -- arrival times (ms) of ?key= requests
local proc = require "support.proc"

local M = {}

M.binary = os.getenv("MOONSHIP_TESTSERVER") or "build/ms-testserver"

-- Starts the server with extra arguments; returns its URL and a function that stops it.
function M.start(args)
  local p = assert(io.popen("exec " .. proc.CLEAN .. M.binary .. " " .. (args or ""), "r"))
  local url, pid = p:read("l"), p:read("l")
  assert(url and pid, "ms-testserver did not start")
  return url, function()
    os.execute("kill " .. pid)
    p:close()
  end
end

-- When each request that carried ?key=key arrived, in milliseconds of the server's own clock,
-- in order (its /seen, read with curl: the spec's own loop may be inside sched.run).
function M.seen(url, key)
  local p = assert(io.popen(proc.CLEAN .. "curl -s " .. proc.quote(url .. "/seen?key=" .. key), "r"))
  local times = {}
  for line in p:lines() do times[#times + 1] = tonumber(line) end
  p:close()
  return times
end

return M
