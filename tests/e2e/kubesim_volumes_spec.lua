-- kubesim's scheduler and claims: a pod that mounts a PersistentVolumeClaim that does not exist
-- stays Pending, Unschedulable, with the reason a real scheduler gives, until the claim is made.
local kubesim = require "support.kubesim"

local POD = [[
apiVersion: v1
kind: Pod
metadata: {name: uses-data, namespace: default}
spec:
  containers: [{name: main, image: web:1}]
  volumes: [{name: data, persistentVolumeClaim: {claimName: data}}]
]]

local CLAIM = [[
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data, namespace: default}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Gi}}
]]

-- The pod's status once one matches want, read from a watch of the pod (every change the
-- simulated scheduler and kubelet make arrives as an event): no polling.
local function status_when(sim, want)
  local url = sim.url .. "/api/v1/namespaces/default/pods?watch=true&fieldSelector=metadata.name%3Duses-data"
  local p = assert(io.popen("echo $$; exec env -u LD_PRELOAD curl -sN '" .. url .. "'"))
  local pid = p:read("l")
  local found
  for line in p:lines() do
    local ev = kubesim.decode(line)
    if ev and ev.object and want(ev.object.status or {}) then
      found = ev.object.status
      break
    end
  end
  os.execute("kill " .. pid .. " 2>/dev/null")
  p:close()
  return assert(found, "the watch ended before the pod reached the state the test waits for")
end

describe("kubesim: a pod whose claim is missing", function()
  local sim
  setup(function() sim = kubesim.start {time_scale = 0.01} end)
  teardown(function() sim:stop() end)

  it("stays Pending and Unschedulable until the claim exists, then runs", function()
    assert.equal(201, (sim:apply("/api/v1/namespaces/default/pods/uses-data", POD)))
    local st = status_when(sim, function(s) return s.conditions ~= nil end)
    assert.equal("Pending", st.phase)
    assert.same({type = "PodScheduled", status = "False", reason = "Unschedulable",
                 message = '0/1 nodes are available: persistentvolumeclaim "data" not found.'},
      {type = st.conditions[1].type, status = st.conditions[1].status, reason = st.conditions[1].reason,
       message = st.conditions[1].message})
    assert.is_nil(st.containerStatuses)
    assert.equal(201, (sim:apply("/api/v1/namespaces/default/persistentvolumeclaims/data", CLAIM)))
    st = status_when(sim, function(s) return s.phase == "Running" end)
    assert.equal("Running", st.phase)
  end)
end)
