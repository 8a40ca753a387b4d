-- moonship.kube.sim: where moonship-kubesim is looked for, and what a script is told when it is
-- nowhere (a stock lua5.4 has no moonship binary beside it).
local sim = require "moonship.kube.sim"
local core = require "moonship.core"

describe("sim.binary", function()
  local saved
  before_each(function() saved = {core.executable, core.module_path} end)
  after_each(function() core.executable, core.module_path = saved[1], saved[2] end)

  it("looks beside the executable, then beside core.so and in a bin/ above it", function()
    core.executable = "/usr/bin/lua5.4"
    core.module_path = "/opt/ms/lib/lua/5.4/moonship/core.so"
    local c = sim.candidates()
    assert.equal("/usr/bin/moonship-kubesim", c[1])
    assert.equal("/opt/ms/lib/lua/5.4/moonship/moonship-kubesim", c[2])
    local found
    for _, p in ipairs(c) do if p == "/opt/ms/bin/moonship-kubesim" then found = true end end
    assert.is_true(found)
    -- a build tree: build/lib/moonship/core.so, build/moonship-kubesim
    core.module_path = "/src/build/lib/moonship/core.so"
    found = false
    for _, p in ipairs(sim.candidates()) do if p == "/src/build/moonship-kubesim" then found = true end end
    assert.is_true(found)
  end)

  it("says where it looked and how to point at it when there is none", function()
    core.executable = "/nonexistent/bin/lua5.4"
    core.module_path = "/nonexistent/lib/moonship/core.so"
    local env = {PATH = "/nonexistent/path"}
    local path, err = sim.binary(function(name) return env[name] end)
    assert.is_nil(path)
    assert.equal("moonship-kubesim not found beside /nonexistent/bin, /nonexistent/lib/moonship (or a bin/ above it) "
      .. "or on PATH (set MOONSHIP_KUBESIM to its path)", err)
    env.MOONSHIP_KUBESIM = "/my/kubesim"
    assert.equal("/my/kubesim", sim.binary(function(name) return env[name] end))
  end)
end)
