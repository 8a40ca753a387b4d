-- kubesim's endpoints controller through raw requests: a pod's change reaches exactly the
-- Services whose selector picks it (now or before the change), also when the Services share a
-- selector member, as the Services index files each one under one member of its selector.
local kubesim = require "support.kubesim"

local JSON = {["Content-Type"] = "application/json"}
local MERGE = {["Content-Type"] = "application/merge-patch+json"}

local function service(name, selector)
  return ([[{"apiVersion":"v1","kind":"Service","metadata":{"name":"%s"},
    "spec":{"selector":%s,"ports":[{"port":80}]}}]]):format(name, selector)
end

-- The pod names in a Service's Endpoints, ready or not ("" when none).
local function backends(sim, name)
  local code, body = sim:request("GET", "/api/v1/namespaces/default/endpoints/" .. name)
  if code ~= 200 then return nil end
  local ep = assert(kubesim.decode(body))
  local names = {}
  for _, sub in ipairs(ep.subsets or {}) do
    for _, key in ipairs({"addresses", "notReadyAddresses"}) do
      for _, a in ipairs(sub[key] or {}) do names[#names + 1] = a.targetRef.name end
    end
  end
  table.sort(names)
  return table.concat(names, ",")
end

-- Waits for what the controller does after a write (it runs on its own thread).
local function eventually(sim, want)
  local got
  for _ = 1, 600 do
    got = {}
    local same = true
    for name, pods in pairs(want) do
      got[name] = backends(sim, name)
      if got[name] ~= pods then same = false end
    end
    if same then return end
    os.execute("sleep 0.05")
  end
  assert.same(want, got)
end

describe("kubesim endpoints", function()
  local sim
  before_each(function()
    sim = kubesim.start{time_scale = 0.01, scenario = "defaults: {start_delay: 1, ready_delay: 1}\n"}
  end)
  after_each(function() sim:stop() end)

  it("follows a pod's labels into and out of the Services that select it", function()
    local svcs = {a = '{"app":"x","tier":"t"}', b = '{"tier":"t"}', c = '{"app":"y","tier":"t"}',
                  d = '{"app":"x","tier":"other"}', e = '{}'}
    for _, name in ipairs({"a", "b", "c", "d", "e"}) do
      local code = sim:request("POST", "/api/v1/namespaces/default/services",
                               {body = service(name, svcs[name]), headers = JSON})
      assert.equal(201, code)
    end
    local code = sim:request("POST", "/api/v1/namespaces/default/pods", {headers = JSON, body = [[
      {"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","labels":{"app":"x","tier":"t"}},
       "spec":{"containers":[{"name":"main","image":"p:1"}]}}]]})
    assert.equal(201, code)
    eventually(sim, {a = "p", b = "p", c = "", d = ""})
    -- relabelled: it leaves a (selected before the change) and joins c
    code = sim:request("PATCH", "/api/v1/namespaces/default/pods/p",
                       {headers = MERGE, body = '{"metadata":{"labels":{"app":"y"}}}'})
    assert.equal(200, code)
    eventually(sim, {a = "", b = "p", c = "p", d = ""})
    -- a Service's own selector change refiles it
    code = sim:request("PATCH", "/api/v1/namespaces/default/services/d",
                       {headers = MERGE, body = '{"spec":{"selector":{"app":"y","tier":null}}}'})
    assert.equal(200, code)
    eventually(sim, {d = "p"})
    code = sim:request("PATCH", "/api/v1/namespaces/default/pods/p",
                       {headers = MERGE, body = '{"metadata":{"labels":{"app":"z"}}}'})
    assert.equal(200, code)
    eventually(sim, {a = "", b = "p", c = "", d = ""})
    -- a selector without members selects nothing and gets no Endpoints
    assert.is_nil(backends(sim, "e"))
  end)
end)
