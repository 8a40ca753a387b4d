-- The shop example against the real control plane: a background step (the frontend rolls out
-- while the database jobs run side by side), then the backend; every task succeeds, by the
-- run's JSON events and by the objects' status as kube-apiserver holds them.
local proc = require "support.proc"
local events = require "support.events"
local realcluster = require "support.realcluster"

local SHOP = proc.source_dir .. "/examples/shop"

local cluster, why = realcluster.start {scenario = SHOP .. "/scenario.yaml", time_scale = 0.05}
if not cluster then pending(why) return end

describe("the shop on the real control plane", function()
  teardown(function() cluster:stop() end)

  it("rolls the frontend out in the background beside the jobs, then the backend", function()
    local dir = proc.tmpdir()
    os.execute("cp " .. proc.quote(SHOP) .. "/moonship.yaml " .. proc.quote(dir))
    local code, ev, stderr = events.deploy(cluster, {dir .. "/moonship.yaml", "-w", "deploy", "-n", "shop"})
    assert.equal(0, code, stderr)
    for _, task in ipairs {"services.frontend", "jobs.migrate", "jobs.scrub", "services.backend"} do
      assert.equal("succeeded", events.final_state(ev, task), task)
    end
    -- the background step overlaps the jobs; the backend starts after both jobs finished
    local _, front_done = events.find(ev, {event = "task_finished", task = "services.frontend"})
    local _, migrate_start = events.find(ev, {event = "task_started", task = "jobs.migrate"})
    local _, backend_start = events.find(ev, {event = "task_started", task = "services.backend"})
    local _, migrate_done = events.find(ev, {event = "task_finished", task = "jobs.migrate"})
    local _, scrub_done = events.find(ev, {event = "task_finished", task = "jobs.scrub"})
    assert.is_true(migrate_start < front_done)
    assert.is_true(backend_start > migrate_done and backend_start > scrub_done)
    -- the job's logs came through the API server from the simulated kubelet
    assert.truthy(events.find(ev, {event = "log", task = "jobs.migrate", message = "migration done"}))
    -- what the API server holds
    local ok, out = cluster:kubectl("-n", "shop", "get", "deployment", "backend", "-o",
      "jsonpath={.status.availableReplicas}/{.spec.replicas}")
    assert.is_true(ok)
    local available, wanted = out:match("^(%d+)/(%d+)$")
    assert.equal(wanted, available)
  end)
end)
