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

-- The pod names in an Endpoints object, ready or not ("" when none).
local function pod_names(ep)
  local names = {}
  for _, sub in ipairs(ep.subsets or {}) do
    for _, key in ipairs({"addresses", "notReadyAddresses"}) do
      for _, a in ipairs(sub[key] or {}) do names[#names + 1] = a.targetRef.name end
    end
  end
  table.sort(names)
  return table.concat(names, ",")
end

-- The pod names in a Service's Endpoints now, or nil when it has none.
local function backends(sim, name)
  local code, body = sim:request("GET", "/api/v1/namespaces/default/endpoints/" .. name)
  if code ~= 200 then return nil end
  return pod_names(assert(kubesim.decode(body)))
end

-- A watch of the namespace's Endpoints (from their current state: nothing is missed however
-- late it connects). watch:until_same(want) reads the controller's changes as they come until
-- every Service named in want has those pods, and fails with what it has when the watch ends.
local function endpoints_watch(sim)
  local url = sim.url .. "/api/v1/namespaces/default/endpoints?watch=true"
  local p = assert(io.popen("echo $$; exec env -u LD_PRELOAD curl -sN --max-time 120 '" .. url .. "'"))
  local pid = p:read("l")
  local seen = {}
  local function view(want)
    local got = {}
    for name in pairs(want) do got[name] = seen[name] end
    return got
  end
  return {
    until_same = function(_, want)
      local function same()
        for name, pods in pairs(want) do if seen[name] ~= pods then return false end end
        return true
      end
      while not same() do
        local line = p:read("l")
        if not line then break end
        local ev = kubesim.decode(line)
        if ev and ev.object and ev.object.metadata then
          seen[ev.object.metadata.name] = ev.type ~= "DELETED" and pod_names(ev.object) or nil
        end
      end
      assert.same(want, view(want))
    end,
    stop = function()
      os.execute("kill " .. pid .. " 2>/dev/null")
      p:close()
    end,
  }
end

describe("kubesim endpoints", function()
  local sim, watch
  before_each(function()
    sim = kubesim.start{time_scale = 0.01, scenario = "defaults: {start_delay: 1, ready_delay: 1}\n"}
    watch = endpoints_watch(sim)
  end)
  after_each(function()
    watch:stop()
    sim:stop()
  end)

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
    watch:until_same({a = "p", b = "p", c = "", d = ""})
    -- relabelled: it leaves a (selected before the change) and joins c
    code = sim:request("PATCH", "/api/v1/namespaces/default/pods/p",
                       {headers = MERGE, body = '{"metadata":{"labels":{"app":"y"}}}'})
    assert.equal(200, code)
    watch:until_same({a = "", b = "p", c = "p", d = ""})
    -- a Service's own selector change refiles it
    code = sim:request("PATCH", "/api/v1/namespaces/default/services/d",
                       {headers = MERGE, body = '{"spec":{"selector":{"app":"y","tier":null}}}'})
    assert.equal(200, code)
    watch:until_same({d = "p"})
    code = sim:request("PATCH", "/api/v1/namespaces/default/pods/p",
                       {headers = MERGE, body = '{"metadata":{"labels":{"app":"z"}}}'})
    assert.equal(200, code)
    watch:until_same({a = "", b = "p", c = "", d = ""})
    -- a selector without members selects nothing and gets no Endpoints
    assert.is_nil(backends(sim, "e"))
  end)
end)
