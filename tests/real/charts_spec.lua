-- The charts task kind with a real helm (built from helm's Go module by scripts/real-cluster
-- --build-only into build/realcluster/helm) against the real control plane: the template's
-- chart is installed into the environment's namespace, helm waits for it, and the release and
-- its objects are what kube-apiserver holds. A second deploy upgrades the same release.
local events = require "support.events"
local proc = require "support.proc"
local realcluster = require "support.realcluster"

local helm_dir
for _, dir in ipairs {(os.getenv("MOONSHIP_BUILD_DIR") or "") .. "/realcluster",
                      proc.source_dir .. "/build/realcluster"} do
  if proc.exists(dir .. "/helm") then helm_dir = dir break end
end
if not helm_dir then
  local why = "SKIP helm: build/realcluster/helm not found (build it: scripts/real-cluster --build-only)"
  print(why)
  pending(why)
  return
end

local cluster, why = realcluster.start {scenario = "defaults: {start_delay: 0.2, ready_delay: 0.3}\n", time_scale = 0.05}
if not cluster then pending(why) return end

local TEMPLATE = [[
app: metrics
charts:
- {name: monitoring, directory: charts/monitoring, values: values.yaml}
workflows:
- name: setup
  order_from: [charts.monitoring]
]]

describe("charts on the real control plane", function()
  teardown(function() cluster:stop() end)

  it("installs the chart with helm into the environment's namespace, then upgrades it", function()
    local dir = proc.tmpdir()
    os.execute(("cp -r %s %s/charts"):format(
      proc.quote(proc.source_dir .. "/tests/fixtures/templates/releasehub-format/batch-jobs/charts"), proc.quote(dir)))
    proc.write_file(dir .. "/moonship.yaml", TEMPLATE)
    local env = {PATH = helm_dir .. ":" .. os.getenv("PATH"), HOME = cluster.home}
    for round = 1, 2 do
      local code, ev, stderr = events.deploy(cluster, {dir .. "/moonship.yaml", "-w", "setup", "-n", "charts"}, env)
      assert.equal(0, code, stderr)
      assert.equal("succeeded", events.final_state(ev, "charts.monitoring"))
      local ok, out = cluster:kubectl("-n", "charts", "get", "secrets", "-l", "owner=helm,name=monitoring",
        "-o", "jsonpath={.items[*].metadata.labels.version}")
      assert.is_true(ok)
      -- helm keeps one release Secret per revision
      local revisions = {}
      for v in out:gmatch("%S+") do revisions[#revisions + 1] = v end
      table.sort(revisions)
      assert.same(round == 1 and {"1"} or {"1", "2"}, revisions)
    end
    local ok, out = cluster:kubectl("-n", "charts", "get", "deployment", "monitoring", "-o",
      "jsonpath={.status.availableReplicas}/{.spec.replicas}")
    assert.is_true(ok)
    local available, wanted = out:match("^(%d+)/(%d+)$")
    assert.equal(wanted, available)
  end)
end)
