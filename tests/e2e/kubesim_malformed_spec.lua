-- Malformed and unusual requests get the status codes and Status reasons a real API server
-- gives, and kubesim survives all of them (run under the sanitizer build, a corpus test).
local kubesim = require "support.kubesim"

local JSON = {["Content-Type"] = "application/json"}
local DEPLOY = '{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d"},"spec":{"selector":' ..
               '{"matchLabels":{"app":"d"}},"template":{"metadata":{"labels":{"app":"d"}},"spec":' ..
               '{"containers":[{"name":"c","image":"i:1"}]}}}}'
local CM = '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cm"},"data":{"a":"1"}}'

-- {method, path, body, headers, want code, want reason}
local CASES = {
  {"POST", "/api/v1/namespaces/default/configmaps", "{not json", JSON, 400, "BadRequest"},
  {"POST", "/api/v1/namespaces/default/configmaps", "", JSON, 400, "BadRequest"},
  {"POST", "/api/v1/namespaces/default/configmaps", "[1,2,3]", JSON, 400, "BadRequest"},
  {"POST", "/api/v1/namespaces/default/configmaps", '"str"', JSON, 400, "BadRequest"},
  {"POST", "/api/v1/namespaces/default/configmaps", "a: [b\n c: }", {["Content-Type"] = "application/yaml"}, 400, "BadRequest"},
  {"POST", "/api/v1/namespaces/default/configmaps", "a: *x", {["Content-Type"] = "application/yaml"}, 400, "BadRequest"},
  {"POST", "/api/v1/namespaces/default/configmaps", '{"metadata":{"name":"x"}}', JSON, 400, "BadRequest"},
  {"POST", "/api/v1/namespaces/default/configmaps", '{"apiVersion":"v1","kind":"Secret","metadata":{"name":"x"}}', JSON, 400, "BadRequest"},
  {"POST", "/api/v1/namespaces/default/configmaps", '{"apiVersion":"apps/v1","kind":"ConfigMap","metadata":{"name":"x"}}', JSON, 400, "BadRequest"},
  {"POST", "/api/v1/namespaces/default/configmaps", '{"apiVersion":"v1","kind":"ConfigMap","metadata":{}}', JSON, 422, "Invalid"},
  {"POST", "/api/v1/namespaces/default/configmaps", '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"Bad_Name"}}', JSON, 422, "Invalid"},
  {"POST", "/api/v1/namespaces/default/configmaps", '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x","namespace":"other"}}', JSON, 400, "BadRequest"},
  {"POST", "/api/v1/namespaces/nope/configmaps", CM, JSON, 404, "NotFound"},
  {"POST", "/api/v1/namespaces/default/configmaps", "\8\0\0binary", {["Content-Type"] = "application/vnd.kubernetes.protobuf"}, 415, "UnsupportedMediaType"},
  {"POST", "/api/v1/namespaces/default/configmaps", CM, JSON, 201, nil},
  {"POST", "/api/v1/namespaces/default/configmaps", CM, JSON, 409, "AlreadyExists"},
  {"PUT", "/api/v1/namespaces/default/configmaps/cm",
   '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cm","resourceVersion":"1"},"data":{}}', JSON, 409, "Conflict"},
  {"PUT", "/api/v1/namespaces/default/configmaps/cm",
   '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"other"}}', JSON, 400, "BadRequest"},
  {"PUT", "/api/v1/namespaces/default/configmaps/missing",
   '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"missing"}}', JSON, 404, "NotFound"},
  {"PATCH", "/api/v1/namespaces/default/configmaps/cm", '{"data":{"b":"2"}}', {["Content-Type"] = "text/plain"}, 415, "UnsupportedMediaType"},
  {"PATCH", "/api/v1/namespaces/default/configmaps/cm", '{"data":{"b":"2"}}', {["Content-Type"] = "application/merge-patch+json"}, 200, nil},
  {"PATCH", "/api/v1/namespaces/default/configmaps/cm", '[{"op":"bogus","path":"/x"}]', {["Content-Type"] = "application/json-patch+json"}, 422, "Invalid"},
  {"PATCH", "/api/v1/namespaces/default/configmaps/cm", '[{"op":"remove","path":"/nope/deeper"}]', {["Content-Type"] = "application/json-patch+json"}, 422, "Invalid"},
  {"PATCH", "/api/v1/namespaces/default/configmaps/cm", '{"data":{"$patch":"delete"}}', {["Content-Type"] = "application/strategic-merge-patch+json"}, 200, nil},
  {"PATCH", "/api/v1/namespaces/default/configmaps/cm?force=true", '{}', {["Content-Type"] = "application/merge-patch+json"}, 422, "Invalid"},
  {"PATCH", "/api/v1/namespaces/default/configmaps/cm", CM, {["Content-Type"] = "application/apply-patch+yaml"}, 422, "Invalid"},
  {"PATCH", "/api/v1/namespaces/default/configmaps/cm?fieldManager=t", "{{{{", {["Content-Type"] = "application/apply-patch+yaml"}, 400, "BadRequest"},
  {"PATCH", "/api/v1/namespaces/default/configmaps/cm?fieldManager=t", '{"metadata":{"name":"cm"}}', {["Content-Type"] = "application/apply-patch+yaml"}, 400, "BadRequest"},
  {"PATCH", "/apis/apps/v1/namespaces/default/deployments/d?fieldManager=t", DEPLOY, {["Content-Type"] = "application/apply-patch+yaml"}, 201, nil},
  {"PATCH", "/apis/apps/v1/namespaces/default/deployments/d?fieldManager=t", DEPLOY, {["Content-Type"] = "application/apply-patch+yaml"}, 200, nil},
  {"PATCH", "/apis/apps/v1/namespaces/default/deployments/d?fieldManager=t",
   DEPLOY:gsub('"app":"d"}},"template', '"app":"x"}},"template'), {["Content-Type"] = "application/apply-patch+yaml"}, 422, "Invalid"},
  {"PATCH", "/api/v1/namespaces/default/configmaps/missing", '{}', {["Content-Type"] = "application/merge-patch+json"}, 404, "NotFound"},
  {"GET", "/api/v1/namespaces/default/configmaps/missing", nil, nil, 404, "NotFound"},
  {"GET", "/api/v1/namespaces/default/widgets", nil, nil, 404, "NotFound"},
  {"GET", "/apis/example.com/v1/widgets", nil, nil, 404, "NotFound"},
  {"GET", "/no/such/path", nil, nil, 404, "NotFound"},
  {"GET", "/api/v1/namespaces/default/pods?labelSelector=a%20in%20(b", nil, nil, 400, "BadRequest"},
  {"GET", "/api/v1/namespaces/default/pods?labelSelector=%21%21%21", nil, nil, 400, "BadRequest"},
  {"GET", "/api/v1/namespaces/default/pods?fieldSelector=metadata.name", nil, nil, 400, "BadRequest"},
  {"GET", "/api/v1/namespaces/default/pods?continue=garbage", nil, nil, 410, "Expired"},
  {"GET", "/api/v1/namespaces/default/pods?limit=1&continue=o:999", nil, nil, 200, nil},
  {"GET", "/api/v1/namespaces/default/pods/nope/log", nil, nil, 404, "NotFound"},
  {"GET", "/api/v1/namespaces/default/configmaps/cm/status", nil, nil, 200, nil},
  {"GET", "/api/v1/namespaces/default/configmaps/cm/bogus", nil, nil, 404, "NotFound"},
  {"POST", "/api/v1/namespaces/default/configmaps/cm", CM, JSON, 405, "MethodNotAllowed"},
  {"PUT", "/api/v1/namespaces/default/configmaps", CM, JSON, 405, "MethodNotAllowed"},
  {"DELETE", "/api/v1/namespaces/default/configmaps/cm", "{bad", JSON, 400, "BadRequest"},
  {"DELETE", "/api/v1/namespaces/default/configmaps/cm", '{"propagationPolicy":"Sideways"}', JSON, 422, "Invalid"},
  {"DELETE", "/api/v1/namespaces/default/configmaps/cm", '{"preconditions":{"uid":"nope"}}', JSON, 409, "Conflict"},
  {"DELETE", "/api/v1/namespaces/default/configmaps/cm", '{"propagationPolicy":"Foreground"}', JSON, 200, nil},
  {"DELETE", "/api/v1/namespaces/default/configmaps/cm", nil, nil, 404, "NotFound"},
  {"GET", "/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=1&timeoutSeconds=1", nil, nil, 200, nil},
  {"GET", "/apis/apps/v1/namespaces/default/deployments/d/scale", nil, nil, 200, nil},
  {"PATCH", "/apis/apps/v1/namespaces/default/deployments/d/scale", '{"spec":{"replicas":-1}}',
   {["Content-Type"] = "application/merge-patch+json"}, 422, "Invalid"},
}

describe("kubesim malformed requests", function()
  local sim
  setup(function() sim = kubesim.start {time_scale = 0.01, args = {"--history", "50"}} end)
  teardown(function()
    local _, code, err = sim:stop()
    assert.is_nil(err:find("Sanitizer", 1, true), err)
    assert.equal(0, code, err)
  end)

  it("answers each with the real API server's code and Status reason", function()
    for i, c in ipairs(CASES) do
      local method, path, body, headers, want, reason = table.unpack(c, 1, 6)
      local code, resp = sim:request(method, path, {body = body, headers = headers, max_time = 10})
      local label = ("case %d: %s %s"):format(i, method, path)
      assert.equal(want, code, label .. " -> " .. tostring(resp))
      if reason then
        local st = kubesim.decode(resp)
        assert.is_table(st, label)
        assert.equal("Status", st.kind, label)
        assert.equal(reason, st.reason, label .. ": " .. resp)
        assert.equal(want, st.code, label)
      end
    end
  end)

  it("survives deep nesting, huge and random bodies", function()
    local deep = string.rep("[", 100000) .. string.rep("]", 100000)
    local code = sim:request("POST", "/api/v1/namespaces/default/configmaps", {body = deep, headers = JSON})
    assert.equal(400, code)
    -- valid JSON, deep enough to exhaust a connection thread's stack in the apply code
    local odeep = '{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d"},"spec":' ..
                  string.rep('{"a":', 900) .. "1" .. string.rep("}", 900) .. "}"
    code = sim:request("PATCH", "/apis/apps/v1/namespaces/default/deployments/d?fieldManager=deep",
                       {body = odeep, headers = {["Content-Type"] = "application/apply-patch+yaml"}})
    assert.equal(400, code)
    code = sim:request("PATCH", "/apis/apps/v1/namespaces/default/deployments/d",
                       {body = '{"spec":' .. string.rep('{"a":', 900) .. "1" .. string.rep("}", 900) .. "}",
                        headers = {["Content-Type"] = "application/strategic-merge-patch+json"}})
    assert.equal(400, code)
    local ydeep = string.rep("- ", 3000) .. "x"
    code = sim:request("POST", "/api/v1/namespaces/default/configmaps",
                       {body = ydeep, headers = {["Content-Type"] = "application/yaml"}})
    assert.equal(400, code)
    local big = '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"big"},"data":{"a":"' ..
                string.rep("x", 4 * 1024 * 1024) .. '"}}'
    code = sim:request("POST", "/api/v1/namespaces/default/configmaps", {body = big, headers = JSON})
    assert.equal(201, code)
    math.randomseed(7)
    for _ = 1, 40 do
      local t = {}
      for k = 1, math.random(1, 300) do t[k] = string.char(math.random(0, 255)) end
      local junk = table.concat(t)
      for _, ct in ipairs {"application/json", "application/yaml", "application/apply-patch+yaml",
                           "application/merge-patch+json", "application/strategic-merge-patch+json",
                           "application/json-patch+json"} do
        local m = ct:find("patch") and "PATCH" or "POST"
        local p = m == "PATCH" and "/apis/apps/v1/namespaces/default/deployments/d?fieldManager=f"
                  or "/api/v1/namespaces/default/configmaps"
        local c = sim:request(m, p, {body = junk, headers = {["Content-Type"] = ct}})
        assert.is_true(c ~= nil and c >= 200 and c < 500, ct .. " -> " .. tostring(c))
      end
    end
    assert.equal(200, (sim:request("GET", "/healthz")))
  end)

  it("routes many concurrent requests correctly", function()
    local paths = {"/api/v1/namespaces/default/configmaps", "/apis/apps/v1/namespaces/default/deployments",
                   "/api/v1/namespaces", "/apis/batch/v1/jobs", "/api/v1/namespaces/kube-system/pods",
                   "/apis/networking.k8s.io/v1/namespaces/default/ingresses"}
    local cfg = {}
    for i = 1, 240 do
      cfg[#cfg + 1] = ('url = "%s%s"\noutput = "/dev/null"\nwrite-out = "%%{http_code}\\n"\nsilent'):format(
        sim.url, paths[i % #paths + 1])
    end
    local f = kubesim.write_file(sim.dir .. "/parallel.cfg", table.concat(cfg, "\nnext\n") .. "\n")
    local p = assert(io.popen("env -u LD_PRELOAD curl -K " .. f .. " --parallel --parallel-immediate --parallel-max 60"))
    local codes = {}
    for line in p:lines() do codes[line] = (codes[line] or 0) + 1 end
    p:close()
    assert.same({["200"] = 240}, codes)
  end)

  it("shows objects entering and leaving a label-filtered watch", function()
    local code, body = sim:request("POST", "/api/v1/namespaces/default/configmaps",
                                   {body = CM:gsub('"cm"', '"sel"'), headers = JSON})
    assert.equal(201, code)
    local rv = kubesim.decode(body).metadata.resourceVersion
    local merge = {["Content-Type"] = "application/merge-patch+json"}
    local patched
    for _, tier in ipairs {"a", "a", "b"} do
      code, patched = sim:request("PATCH", "/api/v1/namespaces/default/configmaps/sel",
                                  {body = '{"metadata":{"labels":{"tier":"' .. tier .. '"}},"data":{"t":"' .. tier .. '2"}}',
                                   headers = merge})
      assert.equal(200, code)
    end
    -- replayed from the history: no race between the watch and the writes
    code, body = sim:request("GET", "/api/v1/namespaces/default/configmaps?watch=true&labelSelector=tier%3Da" ..
                             "&timeoutSeconds=1&resourceVersion=" .. rv, {max_time = 10})
    assert.equal(200, code)
    local types, last_rv = {}, nil
    for line in body:gmatch("[^\n]+") do
      local ev = kubesim.decode(line)
      types[#types + 1] = ev.type .. " " .. ev.object.metadata.labels.tier
      last_rv = ev.object.metadata.resourceVersion
    end
    -- leaving the selection, the object comes as it last matched, at the change's
    -- resourceVersion (as kube-apiserver's watch cache sends it)
    assert.same({"ADDED a", "DELETED a"}, types)
    assert.equal(kubesim.decode(patched).metadata.resourceVersion, last_rv)
  end)

  it("sends ERROR 410 on a watch from an expired resourceVersion", function()
    for i = 1, 60 do
      sim:request("POST", "/api/v1/namespaces/default/configmaps",
                  {body = CM:gsub('"cm"', '"e' .. i .. '"'), headers = JSON})
    end
    local code, body = sim:request("GET", "/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=2",
                                   {max_time = 10})
    assert.equal(200, code)
    local ev = kubesim.decode(body:match("^[^\n]+"))
    assert.equal("ERROR", ev.type)
    assert.equal(410, ev.object.code)
    assert.equal("Expired", ev.object.reason)
    assert.matches("too old resource version", ev.object.message)
  end)

  it("ends a streaming list with the initial-events-end bookmark", function()
    local code, body = sim:request("GET", "/api/v1/namespaces/default/configmaps?watch=true&sendInitialEvents=true" ..
                                   "&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true&timeoutSeconds=1",
                                   {max_time = 10})
    assert.equal(200, code)
    local last_added, bookmark = 0, nil
    local n = 0
    for line in body:gmatch("[^\n]+") do
      n = n + 1
      local ev = kubesim.decode(line)
      if ev.type == "ADDED" then last_added = n end
      if ev.type == "BOOKMARK" and not bookmark then bookmark = {n = n, ev = ev} end
    end
    assert.truthy(bookmark)
    assert.is_true(bookmark.n > last_added)
    assert.equal("true", bookmark.ev.object.metadata.annotations["k8s.io/initial-events-end"])
  end)
end)
