-- scripts/bench --quick and scripts/bench-template --quick: the harnesses run end to end and
-- their JSON has every figure, present and positive. Nothing here is about time (the benchmarks
-- themselves are never run inside a test). CPU time is measured to the millisecond, so even
-- the seed deploy's (~10 ms) is positive.
local json = require "moonship.json"
local kubesim = require "support.kubesim"
local proc = require "support.proc"

local METRICS = {"makespan_s", "critical_path_s", "ratio_to_bound", "ratio_to_serial", "requests_per_task", "cpu_s",
                 "peak_rss_mb"}

local function check_summary(s, what)
  assert.is_table(s, what)
  for _, k in ipairs {"median", "min", "max"} do
    assert.is_number(s[k], what .. "." .. k)
    assert.is_true(s[k] > 0, what .. "." .. k .. " is positive")
  end
  assert.is_true(s.min <= s.median and s.median <= s.max, what .. ": min <= median <= max")
end

describe("scripts/bench --quick", function()
  it("measures seed, wide and huge for moonship and the kubectl peer", function()
    local dir = proc.tmpdir()
    local out = dir .. "/bench.json"
    local args = {proc.source_dir .. "/scripts/bench", "--quick", "--json", out}
    local with_peer = kubesim.kubectl_path() ~= nil
    if not with_peer then args[#args + 1] = "--no-peer" end
    local r = proc.run(args)
    assert.equal(0, r.code, r.stderr)
    assert.matches("makespan", r.stdout)
    local res = json.decode(proc.read_file(out))
    assert.is_true(res.quick)
    assert.is_number(res.time_scale)
    for _, name in ipairs {"seed", "wide", "huge"} do
      local w = res.workloads[name]
      assert.is_table(w, name)
      assert.is_true(w.tasks > 0)
      assert.equal(w.runs, w.ok, name .. ": every moonship run succeeded")
      for _, m in ipairs(METRICS) do check_summary(w[m], name .. "." .. m) end
      if with_peer then
        assert.is_table(w.peer, name .. ".peer")
        assert.equal(w.peer.runs, w.peer.ok, name .. ": every peer run succeeded")
        for _, m in ipairs(METRICS) do check_summary(w.peer[m], name .. ".peer." .. m) end
        for _, m in ipairs {"makespan_s", "requests_per_task", "cpu_s", "peak_rss_mb"} do
          assert.is_true(w.moonship_over_peer[m] > 0, name .. ": ratio " .. m)
        end
      end
    end
  end)
end)

describe("scripts/bench-template --quick", function()
  it("validates two generated templates and reports each one's figures", function()
    local dir = proc.tmpdir()
    local out = dir .. "/bench-template.json"
    local r = proc.run {proc.source_dir .. "/scripts/bench-template", "--quick", "--json", out}
    assert.equal(0, r.code, r.stderr)
    assert.matches("x wall", r.stdout, 1, true)
    local res = json.decode(proc.read_file(out))
    assert.equal(2, #res.sizes)
    for i, entries in ipairs {250, 500} do
      local size = res.sizes[i]
      assert.equal(entries, size.entries)
      assert.is_true(size.bytes > entries * 50, "the template holds every entry")
      for _, m in ipairs {"wall_s", "cpu_s", "peak_rss_mb"} do check_summary(size[m], entries .. "." .. m) end
      assert.is_true(size.wall_per_entry_x > 0 and size.cpu_per_entry_x > 0)
    end
    assert.equal(1, res.sizes[1].wall_per_entry_x)
  end)
end)
