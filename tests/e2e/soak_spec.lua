-- scripts/soak --quick: a small wide workload under kubesim's faults (errors with Retry-After,
-- dropped connections, latency, closed and expired watches) with two seeds; every run must give
-- the fault-free outcomes, a complete journal, no duplicated object and the right exit code.
local proc = require "support.proc"

describe("scripts/soak --quick", function()
  it("ends every faulted run like the fault-free one", function()
    local r = proc.run {proc.source_dir .. "/scripts/soak", "--quick"}
    assert.equal(0, r.code, r.stdout .. r.stderr)
    assert.matches("soak: PASS %(0 problems over 2 runs", r.stdout)
    -- the faults were really injected
    assert.matches("error_5%d%d=%d+", r.stdout)
    assert.matches("latency=%d+", r.stdout)
  end)
end)
