-- kubesim's answers where tests/real/differential_spec.lua measured kube-apiserver's, pinned
-- here without the real control plane: content negotiation, field selectors, generic errors,
-- what a dry run and each kind of delete answer, generation, discovery's shapes, /version.
local kubesim = require "support.kubesim"

local ABSENT = {} -- the member must not be there

local JSON = {["Content-Type"] = "application/json"}
local APPLY = {["Content-Type"] = "application/apply-patch+yaml"}
local MEDIA = "application/json, application/yaml, application/vnd.kubernetes.protobuf"
local FIELDS_ONLY = '"%s" is not a known field selector: only "metadata.name", "metadata.namespace"'

local function deployment(name)
  return ([[{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"%s"},"spec":{"replicas":1,
    "selector":{"matchLabels":{"app":"%s"}},"template":{"metadata":{"labels":{"app":"%s"}},
    "spec":{"containers":[{"name":"main","image":"web:1"}]}}}}]]):format(name, name, name)
end

local CM = '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"%s"},"data":{"k":"v"}}'

-- each case: a request, its status code and the members of its answer that must hold (a
-- dotted path; a number indexes a list)
local CASES = {
  {"a ConfigMap has no generation", "POST", "/api/v1/namespaces/default/configmaps", CM:format("cm1"), JSON,
   201, {["metadata.generation"] = ABSENT, ["metadata.uid"] = true}},
  {"a dry run answers with uid and creationTimestamp, without resourceVersion", "POST",
   "/apis/apps/v1/namespaces/default/deployments?dryRun=All", deployment("dry"), JSON,
   201, {["metadata.uid"] = true, ["metadata.creationTimestamp"] = true, ["metadata.resourceVersion"] = ABSENT,
         ["metadata.generation"] = 1, ["status"] = true}},
  {"nothing stored by the dry run", "GET", "/apis/apps/v1/namespaces/default/deployments/dry", nil, nil,
   404, {reason = "NotFound"}},
  {"text/plain alone on pods/log", "GET", "/api/v1/namespaces/default/pods/p1/log", nil, {Accept = "text/plain"},
   406, {reason = "NotAcceptable", message = "only the following media types are accepted: " .. MEDIA,
         details = ABSENT}},
  {"text/plain alone on an object", "GET", "/api/v1/namespaces/default/configmaps/cm1", nil, {Accept = "text/plain"},
   406, {message = "406: Not Acceptable\n\nAvailable representations: " .. MEDIA, details = true}},
  {"an unknown media type on a list", "GET", "/api/v1/namespaces/default/configmaps", nil,
   {Accept = "application/xml"}, 406,
   {message = "406: Not Acceptable\n\nAvailable representations: " .. MEDIA
      .. ", application/json;stream=watch, application/vnd.kubernetes.protobuf;stream=watch"}},
  {"JSON, protobuf or anything: served", "GET", "/api/v1/namespaces/default/configmaps/cm1", nil,
   {Accept = "application/vnd.kubernetes.protobuf, */*"}, 200, {kind = "ConfigMap"}},
  {"a field a ConfigMap is not selected by", "GET", "/api/v1/namespaces/default/configmaps?fieldSelector=data.k%3Dv",
   nil, nil, 400, {reason = "BadRequest", message = FIELDS_ONLY:format("data.k")}},
  {"a field a pod is not selected by", "GET", "/api/v1/namespaces/default/pods?fieldSelector=spec.x%3D1",
   nil, nil, 400, {message = "field label not supported: spec.x"}},
  {"a field a pod is selected by", "GET", "/api/v1/namespaces/default/pods?fieldSelector=status.phase%3DRunning",
   nil, nil, 200, {kind = "PodList"}},
  {"namespaces are not deleted as a collection", "DELETE", "/api/v1/namespaces", nil, nil,
   405, {reason = "MethodNotAllowed", details = true}},
  {"an unknown resource", "GET", "/apis/apps/v1/namespaces/default/widgetz", nil, nil,
   404, {message = "the server could not find the requested resource", details = true}},
  {"deployments to delete", "PATCH", "/apis/apps/v1/namespaces/default/deployments/bg?fieldManager=t",
   deployment("bg"), APPLY, 201, {}},
  {"", "PATCH", "/apis/apps/v1/namespaces/default/deployments/fg?fieldManager=t", deployment("fg"), APPLY, 201, {}},
  {"", "PATCH", "/apis/apps/v1/namespaces/default/deployments/or?fieldManager=t", deployment("or"), APPLY, 201, {}},
  {"Background: a Success Status naming what went, without a code", "DELETE",
   "/apis/apps/v1/namespaces/default/deployments/bg", '{"propagationPolicy":"Background"}', JSON,
   200, {kind = "Status", status = "Success", code = ABSENT, ["details.name"] = "bg", ["details.group"] = "apps",
         ["details.kind"] = "deployments", ["details.uid"] = true}},
  {"Foreground: the object as marked", "DELETE", "/apis/apps/v1/namespaces/default/deployments/fg",
   '{"propagationPolicy":"Foreground"}', JSON,
   200, {kind = "Deployment", ["metadata.finalizers.1"] = "foregroundDeletion", ["metadata.deletionTimestamp"] = true,
         ["metadata.deletionGracePeriodSeconds"] = 0, ["metadata.generation"] = 2}},
  {"Orphan: the object as marked", "DELETE", "/apis/apps/v1/namespaces/default/deployments/or",
   '{"propagationPolicy":"Orphan"}', JSON,
   200, {kind = "Deployment", ["metadata.finalizers.1"] = "orphan", ["metadata.generation"] = 2}},
  {"a pod to delete", "POST", "/api/v1/namespaces/default/pods",
   '{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p2"},"spec":{"containers":[{"name":"a","image":"a:1",'
     .. '"resources":{"limits":{"cpu":"1","memory":"1Gi"}}}]}}', JSON,
   201, {["status.phase"] = "Pending", ["status.qosClass"] = "Guaranteed",
         ["spec.preemptionPolicy"] = "PreemptLowerPriority", ["spec.tolerations.1.key"] = "node.kubernetes.io/not-ready",
         ["spec.containers.1.resources.requests.memory"] = "1Gi", ["metadata.generation"] = 1}},
  {"a pod: marked with its grace period", "DELETE", "/api/v1/namespaces/default/pods/p2", nil, nil,
   200, {kind = "Pod", ["metadata.deletionGracePeriodSeconds"] = 30, ["metadata.deletionTimestamp"] = true}},
  -- a DELETE's options come from its body when it has one, from the query only without one
  {"ConfigMaps to delete", "POST", "/api/v1/namespaces/default/configmaps", CM:format("del-body"), JSON, 201, {}},
  {"", "POST", "/api/v1/namespaces/default/configmaps", CM:format("del-query"), JSON, 201, {}},
  {"", "POST", "/api/v1/namespaces/default/configmaps", CM:format("del-both"), JSON, 201, {}},
  {"a dry run in the body deletes nothing", "DELETE", "/api/v1/namespaces/default/configmaps/del-body",
   '{"kind":"DeleteOptions","apiVersion":"v1","dryRun":["All"]}', JSON, 200, {}},
  {"", "GET", "/api/v1/namespaces/default/configmaps/del-body", nil, nil, 200, {kind = "ConfigMap"}},
  {"a dry run in the query of a DELETE without a body deletes nothing", "DELETE",
   "/api/v1/namespaces/default/configmaps/del-query?dryRun=All", nil, nil, 200, {}},
  {"", "GET", "/api/v1/namespaces/default/configmaps/del-query", nil, nil, 200, {kind = "ConfigMap"}},
  {"a dry run in the query beside a body is not one: it deletes", "DELETE",
   "/api/v1/namespaces/default/configmaps/del-both?dryRun=All", '{"kind":"DeleteOptions","apiVersion":"v1"}', JSON,
   200, {}},
  {"", "GET", "/api/v1/namespaces/default/configmaps/del-both", nil, nil, 404, {reason = "NotFound"}},
  {"/version: the reference release", "GET", "/version", nil, nil,
   200, {major = "1", minor = "37", emulationMinor = "37", minCompatibilityMinor = "36"}},
  {"aggregated discovery: the core group unnamed, response kinds relative, subresources sorted", "GET", "/api", nil,
   {Accept = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"},
   200, {["items.1.metadata.name"] = ABSENT, ["items.1.versions.1.resources.1.resource"] = "namespaces",
         ["items.1.versions.1.resources.1.verbs.3"] = "get",
         ["items.1.versions.1.resources.1.subresources.1.subresource"] = "finalize",
         ["items.1.versions.1.resources.1.subresources.2.subresource"] = "status",
         ["items.1.versions.1.resources.1.responseKind.version"] = ""}},
}

local function member(v, path)
  for key in path:gmatch("[^.]+") do
    if type(v) ~= "table" then return nil end
    v = v[tonumber(key) or key]
  end
  return v
end

describe("kubesim answers as kube-apiserver was measured to", function()
  local sim
  setup(function()
    sim = kubesim.start {time_scale = 0.01}
    local code = sim:request("POST", "/api/v1/namespaces/default/pods", {headers = JSON, body =
      '{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p1"},"spec":{"containers":[{"name":"a","image":"a:1"}]}}'})
    assert.equal(201, code)
  end)
  teardown(function()
    local _, _, err = sim:stop()
    assert.is_nil(err:find("Sanitizer", 1, true), err)
  end)

  for i, c in ipairs(CASES) do
    local name, method, path, body, headers, code, want = table.unpack(c)
    it(("%d %s %s%s"):format(i, method, path, name ~= "" and ": " .. name or ""), function()
      local got, text = sim:request(method, path, {body = body, headers = headers})
      assert.equal(code, got, text)
      local answer = kubesim.decode(text)
      for p, v in pairs(want) do
        local m = member(answer, p)
        if v == ABSENT then
          assert.is_nil(m, p .. " in " .. text)
        elseif v == true then
          assert.is_not_nil(m, p .. " in " .. text)
        else
          assert.equal(v, m, p .. " in " .. text)
        end
      end
    end)
  end
end)
