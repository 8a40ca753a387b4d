-- kubesim measured against kube-apiserver: each step sends the same requests to kubesim and to
-- the real control plane, normalises what legitimately differs between two servers (uids,
-- resourceVersions, times, generated names, IPs, versions) and compares the rest: status
-- codes, Status bodies (reason, details, causes), objects with their defaults, managedFields
-- owners, conditions, watch events in order. Every difference is either fixed in kubesim or
-- listed in KNOWN below with why no client test is affected (docs/kubesim.md, "Known
-- differences from kube-apiserver (measured)"): a listed difference that disappears fails,
-- and so does a new one.
local differential = require "support.differential"
local kubesim = require "support.kubesim"
local realcluster = require "support.realcluster"

local SCENARIO = {
  defaults = {start_delay = 1, ready_delay = 1},
  workloads = {logger = {logs = {"hello", "world"}}, once = {duration = 1}},
}
local TIME_SCALE = 0.05

local real, why = realcluster.start {scenario = SCENARIO, time_scale = TIME_SCALE}
if not real then pending(why) return end
-- a short watch history, so that a watch from resourceVersion 1 is too old on kubesim too
local sim = kubesim.start {scenario = SCENARIO, time_scale = TIME_SCALE, tls = true, args = {"--history", "50"}}

-- What differs and why it does not matter to a client test: step -> {path = reason}. A path is
-- where the two normalised views differ ("body.metadata.generation"); a * stands for one
-- segment. The same list, worded for readers, is in docs/kubesim.md.
local ROOT_CA = "kubesim publishes no kube-root-ca.crt ConfigMap: it has no cluster CA over plain HTTP, "
  .. "and no pod runs to mount one"
local SA_VOLUME = "kubesim runs no ServiceAccount admission: pods get no kube-api-access volume "
  .. "(no container runs to mount a token)"
local STORAGE_HASH = "kubesim names no storageVersionHash: only a storage migrator reads it"
local AUTOSCALING_V1 = "kubesim serves HorizontalPodAutoscalers as autoscaling/v2 only, the version clients use"
local KNOWN = {
  ["aggregated discovery of /apis"] = {["groups.autoscaling.versions.2"] = AUTOSCALING_V1},
  ["legacy discovery of /api and /apis"] = {["apis.groups.autoscaling.versions.2"] = AUTOSCALING_V1},
  ["legacy discovery of /api/v1"] = {["resources.*.storageVersionHash"] = STORAGE_HASH},
  ["legacy discovery of /apis/apps/v1"] = {["resources.*.storageVersionHash"] = STORAGE_HASH},
  ["legacy discovery of /apis/batch/v1"] = {["resources.*.storageVersionHash"] = STORAGE_HASH},
  ["the OpenAPI v3 index"] = {
    ctype = "kube-aggregator's merged index is served with no Content-Type set (Go sniffs text/plain); "
      .. "kubectl decodes it as JSON either way",
  },
  ["create with a body that is not JSON: 400 BadRequest"] = {
    ["body.message"] = "after \"json parse error:\" the JSON decoder's own words (Go's encoding/json, cJSON); "
      .. "the rest is the same",
  },
  ["list by label selector"] = {["missing.names.2"] = ROOT_CA},
  ["list every ConfigMap of the namespace"] = {["names.3"] = ROOT_CA},
  ["list a page with limit and continue"] = {
    ["labels.more"] = "kube-apiserver pages the stored objects and filters each page, so a selective list can "
      .. "hand out a continue token that leads to no more items; kubesim pages what matches. A client follows "
      .. "continue until there is none either way",
  },
  ["a watch with a label selector sees objects enter and leave it"] = {
    ["events.2.object.metadata.managedFields"] = "kubesim keeps the state before a change without its managedFields "
      .. "(it serves selector matching), and an object leaving a filtered watch is sent in that state",
  },
  ["create a pod: the defaults and admission's additions"] = {
    ["body.spec.containers.1.volumeMounts"] = SA_VOLUME, ["body.spec.volumes"] = SA_VOLUME,
  },
  ["the pod runs and is ready: its status"] = {
    ["spec.containers.1.volumeMounts"] = SA_VOLUME, ["spec.volumes"] = SA_VOLUME,
  },
  ["delete a pod"] = {["body.spec.containers.1.volumeMounts"] = SA_VOLUME, ["body.spec.volumes"] = SA_VOLUME},
}

local NS = "diff"
local AGGREGATED = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,"
  .. "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json"
local JSON = {["Content-Type"] = "application/json"}
local APPLY = {["Content-Type"] = "application/apply-patch+yaml"}
local MERGE = {["Content-Type"] = "application/merge-patch+json"}

local function array(t) return setmetatable(t, {__jsontype = "array"}) end

local function sorted(t)
  table.sort(t)
  return array(t)
end

local function configmap(name, labels, data)
  return {apiVersion = "v1", kind = "ConfigMap", metadata = {name = name, labels = labels}, data = data}
end

local function deployment(name)
  return {apiVersion = "apps/v1", kind = "Deployment", metadata = {name = name, labels = {app = name}},
          spec = {replicas = 1, selector = {matchLabels = {app = name}},
                  template = {metadata = {labels = {app = name}},
                              spec = {containers = {{name = "main", image = "registry.example/web:1"}}}}}}
end

-- Waits (polling, with a generous bound that no healthy run comes near) until fn returns a
-- true value, which it returns.
local function wait_for(what, fn)
  for _ = 1, 600 do
    local v = fn()
    if v then return v end
    os.execute("sleep 0.2")
  end
  error("timed out waiting for " .. what)
end

local function get(side, path)
  local code, body = side:request("GET", path)
  return code == 200 and body or nil, code
end

-- The names of a list's items, in the order served.
local function names(list)
  local out = array {}
  for _, item in ipairs(type(list) == "table" and list.items or {}) do out[#out + 1] = item.metadata.name end
  return out
end

-- Whether a bookmark carries a resourceVersion and nothing else (but the annotation that ends
-- a streaming list's initial events).
local function bookmark_shape(e)
  local o = e.object or {}
  local md = o.metadata or {}
  for k in pairs(o) do
    if k ~= "kind" and k ~= "apiVersion" and k ~= "metadata" then return false end
  end
  for k in pairs(md) do
    if k ~= "resourceVersion" and k ~= "annotations" then return false end
  end
  return type(o.kind) == "string" and type(o.apiVersion) == "string" and type(md.resourceVersion) == "string"
end

-- A watch that ends by its timeoutSeconds: its events in order, bookmarks aside, and its
-- bookmarks. When a bookmark comes is the server's choice (kube-apiserver sends one 2 s before
-- the deadline if its watch cache has moved past the watch's resourceVersion, kubesim one at
-- the deadline), so the events are compared, and every bookmark must be well-formed.
local function watch(side, path)
  local code, text, headers = side.server:request("GET", path)
  local events, bookmarks = array {}, array {}
  for line in tostring(text):gmatch("[^\n]+") do
    local e = differential.decode(line)
    if e.type == "BOOKMARK" then
      bookmarks[#bookmarks + 1] = e
    else
      events[#events + 1] = e
    end
  end
  local shapes = true
  for _, b in ipairs(bookmarks) do shapes = shapes and bookmark_shape(b) end
  return code, events, {well_formed = shapes, list = bookmarks}, headers
end

local served = {} -- what kubesim serves, by discovery: the real server is asked for the same

-- ---- the steps: each returns a view of what a client read; kubesim's run comes first ----

local STEPS = {}
local function step(name, run) STEPS[#STEPS + 1] = {name = name, run = run} end

step("/version", function(side)
  local code, body = side:request("GET", "/version")
  local keys = {}
  for k in pairs(body) do keys[#keys + 1] = k end
  return {code = code, keys = sorted(keys)}
end)

local function agg_resources(list)
  local out = {}
  for _, r in ipairs(list or {}) do out[r.resource] = r end
  return out
end

-- A resource's entry with the subresources kubesim serves only (kube-apiserver also lists
-- exec, attach, eviction, proxy, token...: kubesim does not pretend to serve them).
served.subresources = {}
local function entry(side, key, r)
  if not r then return "(absent)" end
  if side.label == "kubesim" then
    served.subresources[key] = {}
    for _, sub in ipairs(r.subresources or {}) do served.subresources[key][sub.subresource] = true end
  end
  local subs = array {}
  for _, sub in ipairs(r.subresources or {}) do
    if served.subresources[key][sub.subresource] then subs[#subs + 1] = sub end
  end
  local out = {}
  for k, v in pairs(r) do out[k] = v end
  out.subresources = #subs > 0 and subs or nil
  return out
end

step("aggregated discovery of /api", function(side)
  local code, body, headers = side:request("GET", "/api", {headers = {Accept = AGGREGATED}})
  local item = body.items[1]
  local version = item.versions[1]
  local resources = agg_resources(version.resources)
  if side.label == "kubesim" then
    served.core = {}
    for name in pairs(resources) do served.core[name] = true end
  end
  local view = {}
  for name in pairs(served.core) do view[name] = entry(side, "v1/" .. name, resources[name]) end
  return {code = code, ctype = differential.content_type(headers), kind = body.kind, apiVersion = body.apiVersion,
          group = item.metadata.name, version = version.version, freshness = version.freshness, resources = view}
end)

step("aggregated discovery of /apis", function(side)
  local code, body, headers = side:request("GET", "/apis", {headers = {Accept = AGGREGATED}})
  local groups = {}
  for _, g in ipairs(body.items) do groups[g.metadata.name] = g end
  if side.label == "kubesim" then
    served.groups = {}
    for name, g in pairs(groups) do
      served.groups[name] = {}
      for _, v in ipairs(g.versions) do
        for res in pairs(agg_resources(v.resources)) do served.groups[name][v.version .. "/" .. res] = true end
      end
    end
  end
  local view = {}
  for name, want in pairs(served.groups) do
    local g = groups[name]
    if not g then
      view[name] = "(absent)"
    else
      local versions, resources = array {}, {}
      for _, v in ipairs(g.versions) do
        versions[#versions + 1] = v.version
        local rs = agg_resources(v.resources)
        for key in pairs(want) do
          local ver, res = key:match("^([^/]+)/(.+)$")
          if ver == v.version then resources[key] = entry(side, name .. "/" .. key, rs[res]) end
        end
      end
      view[name] = {versions = versions, resources = resources}
    end
  end
  return {code = code, ctype = differential.content_type(headers), kind = body.kind, groups = view}
end)

step("legacy discovery of /api and /apis", function(side)
  local code, api, headers = side:request("GET", "/api", {headers = {Accept = "application/json, */*"}})
  local code2, apis = side:request("GET", "/apis", {headers = {Accept = "application/json, */*"}})
  local groups = {}
  for _, g in ipairs(apis.groups) do
    if served.groups[g.name] then groups[g.name] = g end
  end
  local cidrs = api.serverAddressByClientCIDRs
  return {code = code, ctype = differential.content_type(headers), kind = api.kind, versions = api.versions,
          cidrs = cidrs and #cidrs,
          apis = {code = code2, kind = apis.kind, apiVersion = apis.apiVersion, groups = groups}}
end)

local function resource_list(side, path, served_names)
  local code, body = side:request("GET", path, {headers = {Accept = "application/json, */*"}})
  local rs = {}
  for _, r in ipairs(body.resources) do rs[r.name] = r end
  if side.label == "kubesim" then
    served_names[path] = {}
    for name in pairs(rs) do served_names[path][name] = true end
  end
  local view = {}
  for name in pairs(served_names[path]) do view[name] = rs[name] or "(absent)" end
  return {code = code, kind = body.kind, groupVersion = body.groupVersion, resources = view}
end

served.lists = {}
step("legacy discovery of /api/v1", function(side) return resource_list(side, "/api/v1", served.lists) end)
step("legacy discovery of /apis/apps/v1", function(side) return resource_list(side, "/apis/apps/v1", served.lists) end)
step("legacy discovery of /apis/batch/v1", function(side) return resource_list(side, "/apis/batch/v1", served.lists) end)

step("the OpenAPI v3 index", function(side)
  local code, body, headers = side:request("GET", "/openapi/v3", {headers = {Accept = "application/json"}})
  if side.label == "kubesim" then
    served.openapi = {}
    for p in pairs(body.paths) do served.openapi[p] = true end
  end
  side.openapi = body.paths
  local paths = {}
  for p in pairs(served.openapi) do
    local e = body.paths[p]
    paths[p] = e and e.serverRelativeURL:gsub("hash=%x+$", "hash=<hash>") or "(absent)"
  end
  return {code = code, ctype = differential.content_type(headers), paths = paths}
end)

-- What kubectl's query-param verifier reads: a PATCH operation of the kind's path, with its
-- group-version-kind and a fieldValidation parameter.
local function openapi_gv(side, gv)
  local code, body, headers = side:request("GET", side.openapi[gv].serverRelativeURL,
                                           {headers = {Accept = "application/json"}})
  if side.label == "kubesim" then
    served[gv] = {}
    for p in pairs(body.paths) do served[gv][p] = true end
  end
  local paths = {}
  for p in pairs(served[gv]) do
    local item = body.paths[p]
    local patch = item and item.patch
    if not patch then
      paths[p] = item and {patch = "(absent)"} or "(absent)"
    else
      local params = {}
      for _, prm in ipairs(patch.parameters or {}) do params[prm.name] = true end
      paths[p] = {gvk = patch["x-kubernetes-group-version-kind"], action = patch["x-kubernetes-action"],
                  fieldValidation = params.fieldValidation or false}
    end
  end
  return {code = code, ctype = differential.content_type(headers), openapi = body.openapi, paths = paths}
end

step("the OpenAPI v3 document of apps/v1", function(side) return openapi_gv(side, "apis/apps/v1") end)
step("the OpenAPI v3 document of v1", function(side) return openapi_gv(side, "api/v1") end)

-- ---- creates and errors ----

local function answer(side, method, path, opts)
  local code, body = side:request(method, path, opts)
  return side:view {code = code, body = body}
end

step("create a namespace", function(side)
  return answer(side, "POST", "/api/v1/namespaces",
                {body = {apiVersion = "v1", kind = "Namespace", metadata = {name = NS}}})
end)

local CM = "/api/v1/namespaces/" .. NS .. "/configmaps"

step("create a ConfigMap", function(side)
  return answer(side, "POST", CM, {body = configmap("cm-a", {app = "a", tier = "front"}, {k = "v"})})
end)

step("create it again: 409 AlreadyExists", function(side)
  return answer(side, "POST", CM, {body = configmap("cm-a", {app = "a"}, {k = "v"})})
end)

step("get a missing ConfigMap: 404 NotFound", function(side)
  return answer(side, "GET", CM .. "/nothere")
end)

step("create with an invalid name: 422 Invalid", function(side)
  return answer(side, "POST", CM, {body = configmap("Bad_Name", nil, {k = "v"})})
end)

step("create with a body that is not JSON: 400 BadRequest", function(side)
  return answer(side, "POST", CM, {body = "{not json", headers = JSON})
end)

step("create a Deployment without an image: 422 Invalid with causes", function(side)
  local d = deployment("noimage")
  d.spec.template.spec.containers[1].image = nil
  return answer(side, "POST", "/apis/apps/v1/namespaces/" .. NS .. "/deployments", {body = d})
end)

step("update with a stale resourceVersion: 409 Conflict", function(side)
  local cm = get(side, CM .. "/cm-a")
  cm.data.k = "v2"
  local first = answer(side, "PUT", CM .. "/cm-a", {body = cm})
  cm.data.k = "v3"
  return {first = first, stale = answer(side, "PUT", CM .. "/cm-a", {body = cm})}
end)

-- ---- server-side apply ----

local function apply(side, name, manager, data, extra)
  local path = CM .. "/" .. name .. "?fieldManager=" .. manager .. (extra or "")
  return answer(side, "PATCH", path, {body = configmap(name, nil, data), headers = APPLY})
end

step("apply creates: 201", function(side) return apply(side, "cm-s", "alice", {color = "red"}) end)
step("apply the same field with another value: 409 Conflict", function(side)
  return apply(side, "cm-s", "bob", {color = "blue"})
end)
step("apply with force takes the field", function(side)
  return apply(side, "cm-s", "bob", {color = "blue"}, "&force=true")
end)
step("apply the same value as the owner: shared, no conflict", function(side)
  return apply(side, "cm-s", "alice", {color = "blue", size = "big"})
end)
step("a merge patch records an Update manager", function(side)
  return answer(side, "PATCH", CM .. "/cm-s?fieldManager=carol", {body = {data = {size = "small"}}, headers = MERGE})
end)
step("apply against an Update manager's field: 409 names it with its version", function(side)
  return apply(side, "cm-s", "alice", {color = "blue", size = "big"})
end)

-- ---- dry run ----

step("create with dryRun=All: 201, nothing stored", function(side)
  local created = answer(side, "POST", CM .. "?dryRun=All", {body = configmap("cm-dry", nil, {k = "v"})})
  local _, after = get(side, CM .. "/cm-dry")
  return {created = created, get = after}
end)

step("apply with dryRun=All: 201, nothing stored", function(side)
  local applied = apply(side, "cm-dry", "alice", {k = "v"}, "&dryRun=All")
  local _, after = get(side, CM .. "/cm-dry")
  return {applied = applied, get = after}
end)

-- kube-apiserver reads DeleteOptions from the body when the DELETE has one, from the query
-- only when it has none: a ?dryRun=All beside a body deletes (moonship's prune sends the dry
-- run in the body).
step("delete dry runs: dryRun in the body, or in the query of a DELETE without a body", function(side)
  local out = {}
  local OPTS = {kind = "DeleteOptions", apiVersion = "v1"}
  local cases = {
    {"cm-del-body", {body = {kind = "DeleteOptions", apiVersion = "v1", dryRun = array {"All"}}}, ""},
    {"cm-del-query", {}, "?dryRun=All"},
    {"cm-del-both", {body = OPTS}, "?dryRun=All"},
  }
  for _, c in ipairs(cases) do
    local name, opts, query = c[1], c[2], c[3]
    answer(side, "POST", CM, {body = configmap(name, nil, {k = "v"})})
    out[name] = {delete = select(1, side:request("DELETE", CM .. "/" .. name .. query, opts)),
                 after = select(2, get(side, CM .. "/" .. name))}
    side:request("DELETE", CM .. "/" .. name)
  end
  return out
end)

step("create and apply into a namespace that does not exist, dry run or not: 404", function(side)
  local path = "/api/v1/namespaces/nope/configmaps"
  return {
    create = answer(side, "POST", path .. "?dryRun=All", {body = configmap("x", nil, {k = "v"})}),
    apply = answer(side, "PATCH", path .. "/x?fieldManager=alice&dryRun=All",
                   {body = configmap("x", nil, {k = "v"}), headers = APPLY}),
    create_for_real = answer(side, "POST", path, {body = configmap("x", nil, {k = "v"})}),
  }
end)

-- ---- lists ----

local function list(side, query)
  local code, body = side:request("GET", CM .. query)
  if code ~= 200 then return side:view {code = code, body = body} end
  return {code = code, kind = body.kind, apiVersion = body.apiVersion, names = names(body),
          metadata = side:view(body.metadata)}
end

step("list by label selector", function(side)
  return {
    equal = list(side, "?labelSelector=app%3Da"),
    set = list(side, "?labelSelector=tier%20in%20(front%2Cback)%2Capp"),
    missing = list(side, "?labelSelector=!tier"),
  }
end)
step("list by field selector", function(side)
  return {name = list(side, "?fieldSelector=metadata.name%3Dcm-a"),
          not_name = list(side, "?fieldSelector=metadata.name!%3Dcm-a&labelSelector=app")}
end)
step("list by a field the kind does not index: 400", function(side) return list(side, "?fieldSelector=data.k%3Dv") end)
step("list a page with limit and continue", function(side)
  local function page(query)
    local code, body = side:request("GET", CM .. "?limit=1&" .. query)
    return {code = code, n = #body.items, more = body.metadata["continue"] ~= nil,
            remaining = body.metadata.remainingItemCount}
  end
  return {labels = page("labelSelector=app"), fields = page("fieldSelector=metadata.name!%3Dnone")}
end)
step("list every ConfigMap of the namespace", function(side) return list(side, "") end)

-- ---- watch ----

step("watch from a resourceVersion, with bookmarks", function(side)
  local _, l = side:request("GET", CM .. "?labelSelector=app")
  local rv = l.metadata.resourceVersion
  side:request("POST", CM, {body = configmap("cm-w", {app = "w"}, {k = "1"})})
  side:request("PATCH", CM .. "/cm-w", {body = {data = {k = "2"}}, headers = MERGE})
  side:request("DELETE", CM .. "/cm-w")
  local code, events, bookmarks = watch(side, CM .. "?watch=true&allowWatchBookmarks=true&timeoutSeconds=3"
    .. "&resourceVersion=" .. rv)
  return side:view {code = code, events = events, bookmarks = bookmarks.well_formed}
end)

step("a streaming list: the objects, then the bookmark that ends the initial events", function(side)
  local code, events, bookmarks = watch(side, CM .. "?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan"
    .. "&allowWatchBookmarks=true&timeoutSeconds=2&labelSelector=app")
  local ends = 0
  for _, b in ipairs(bookmarks.list) do
    local ann = b.object.metadata.annotations
    if ann and ann["k8s.io/initial-events-end"] == "true" then ends = ends + 1 end
  end
  return side:view {code = code, events = events, bookmarks = bookmarks.well_formed, initial_events_end = ends}
end)

step("a watch with a label selector sees objects enter and leave it", function(side)
  local _, l = side:request("GET", CM .. "?labelSelector=app")
  local rv = l.metadata.resourceVersion
  side:request("POST", CM, {body = configmap("cm-sel", {app = "w"}, {k = "1"})})
  side:request("PATCH", CM .. "/cm-sel", {body = {metadata = {labels = {app = "x"}}}, headers = MERGE})
  side:request("PATCH", CM .. "/cm-sel", {body = {metadata = {labels = {app = "w"}}}, headers = MERGE})
  side:request("DELETE", CM .. "/cm-sel")
  local code, events = watch(side, CM .. "?watch=true&timeoutSeconds=1&labelSelector=app%3Dw&resourceVersion=" .. rv)
  return side:view {code = code, events = events}
end)

-- ---- Deployments, their ReplicaSets and deletion ----

local DEPLOY = "/apis/apps/v1/namespaces/" .. NS .. "/deployments"
local RS = "/apis/apps/v1/namespaces/" .. NS .. "/replicasets"

local function replicaset_of(side, name)
  local l = get(side, RS .. "?labelSelector=app%3D" .. name)
  local rs = l and l.items[1]
  if rs then
    side:name(rs.metadata.name, name .. "-<hash>")
    side:name(rs.metadata.labels["pod-template-hash"], "<hash>")
  end
  return rs
end

local function rolled_out(side, name)
  return wait_for(name .. " to roll out", function()
    local d = get(side, DEPLOY .. "/" .. name)
    local available
    for _, c in ipairs(d and d.status and d.status.conditions or {}) do
      if c.type == "Progressing" and c.reason == "NewReplicaSetAvailable" then available = true end
    end
    return available and (d.status.availableReplicas or 0) == 1 and d
  end)
end

step("apply a Deployment: the defaults", function(side)
  local created = answer(side, "PATCH", DEPLOY .. "/web-bg?fieldManager=diff",
                         {body = deployment("web-bg"), headers = APPLY})
  for _, name in ipairs {"web-fg", "web-or"} do
    side:request("PATCH", DEPLOY .. "/" .. name .. "?fieldManager=diff", {body = deployment(name), headers = APPLY})
  end
  return created
end)

step("the Deployment rolls out: its status and its ReplicaSet", function(side)
  local d = rolled_out(side, "web-bg")
  local rs = replicaset_of(side, "web-bg")
  return side:view {deployment = {metadata = d.metadata, status = d.status},
                    replicaset = {metadata = rs.metadata, spec = rs.spec, status = rs.status}}
end)

step("delete with propagationPolicy Background", function(side)
  rolled_out(side, "web-bg")
  local rs = replicaset_of(side, "web-bg")
  local deleted = answer(side, "DELETE", DEPLOY .. "/web-bg", {body = {propagationPolicy = "Background"}})
  wait_for("the ReplicaSet to be collected",
           function() return select(2, get(side, RS .. "/" .. rs.metadata.name)) == 404 end)
  return {deleted = deleted, deployment = select(2, get(side, DEPLOY .. "/web-bg"))}
end)

step("delete with propagationPolicy Foreground", function(side)
  rolled_out(side, "web-fg")
  local rs = replicaset_of(side, "web-fg")
  local deleted = answer(side, "DELETE", DEPLOY .. "/web-fg", {body = {propagationPolicy = "Foreground"}})
  wait_for("the Deployment to go", function() return select(2, get(side, DEPLOY .. "/web-fg")) == 404 end)
  return {deleted = deleted, replicaset = select(2, get(side, RS .. "/" .. rs.metadata.name))}
end)

step("delete with propagationPolicy Orphan", function(side)
  rolled_out(side, "web-or")
  local rs = replicaset_of(side, "web-or")
  local deleted = answer(side, "DELETE", DEPLOY .. "/web-or", {body = {propagationPolicy = "Orphan"}})
  wait_for("the Deployment to go", function() return select(2, get(side, DEPLOY .. "/web-or")) == 404 end)
  local orphan = get(side, RS .. "/" .. rs.metadata.name)
  return {deleted = deleted, replicaset_owners = orphan and (orphan.metadata.ownerReferences or "(none)")}
end)

-- ---- a pod, a Service, a Job ----

local PODS = "/api/v1/namespaces/" .. NS .. "/pods"

step("create a pod: the defaults and admission's additions", function(side)
  return answer(side, "POST", PODS, {body = {
    apiVersion = "v1", kind = "Pod", metadata = {name = "logger", labels = {app = "logger"}},
    spec = {containers = {{name = "main", image = "registry.example/logger:1"}}}}})
end)

step("the pod runs and is ready: its status", function(side)
  local pod = wait_for("the pod to be ready", function()
    local p = get(side, PODS .. "/logger")
    for _, c in ipairs(p and p.status and p.status.conditions or {}) do
      if c.type == "Ready" and c.status == "True" then return p end
    end
  end)
  return side:view {spec = pod.spec, status = pod.status, managedFields = pod.metadata.managedFields}
end)

step("create a Service", function(side)
  return answer(side, "POST", "/api/v1/namespaces/" .. NS .. "/services",
                {body = {apiVersion = "v1", kind = "Service", metadata = {name = "logger"},
                         spec = {selector = {app = "logger"}, ports = {{port = 80, targetPort = 8080}}}}})
end)

local JOBS = "/apis/batch/v1/namespaces/" .. NS .. "/jobs"

step("a Job runs to completion: its defaults, then its status and conditions", function(side)
  local created = answer(side, "PATCH", JOBS .. "/once?fieldManager=diff", {headers = APPLY, body = {
    apiVersion = "batch/v1", kind = "Job", metadata = {name = "once"},
    spec = {template = {spec = {restartPolicy = "Never",
                                containers = {{name = "main", image = "registry.example/once:1"}}}}}}})
  local job = wait_for("the Job to complete", function()
    local j = get(side, JOBS .. "/once")
    for _, c in ipairs(j and j.status and j.status.conditions or {}) do
      if c.type == "Complete" and c.status == "True" then return j end
    end
  end)
  local pods = get(side, PODS .. "?labelSelector=batch.kubernetes.io%2Fjob-name%3Donce")
  local pod = pods.items[1]
  side:name(pod.metadata.name, "once-<pod>")
  return side:view {created = created, status = job.status, pod = {labels = pod.metadata.labels, phase = pod.status.phase,
                    owners = pod.metadata.ownerReferences}}
end)

-- ---- pod logs ----

step("a pod's log, asked for as kubectl asks", function(side)
  local code, body, headers = side.server:request("GET", PODS .. "/logger/log?container=main",
                                                 {headers = {Accept = "application/json, */*"}})
  return {code = code, ctype = differential.content_type(headers), body = body}
end)

step("a pod's log with Accept: text/plain alone: 406 NotAcceptable", function(side)
  return answer(side, "GET", PODS .. "/logger/log?container=main", {headers = {Accept = "text/plain"}})
end)

step("the log of a missing pod or container: 404, 400", function(side)
  return {pod = answer(side, "GET", PODS .. "/nobody/log"),
          container = answer(side, "GET", PODS .. "/logger/log?container=nobody")}
end)

step("delete a pod", function(side)
  return answer(side, "DELETE", PODS .. "/logger")
end)

-- ---- deleting a namespace that holds objects ----

local DOOMED = "doomed"

step("delete a namespace that holds objects: Terminating", function(side)
  side:request("POST", "/api/v1/namespaces", {body = {apiVersion = "v1", kind = "Namespace", metadata = {name = DOOMED}}})
  side:request("POST", "/api/v1/namespaces/" .. DOOMED .. "/configmaps",
               {body = configmap("left", {app = "left"}, {k = "v"})})
  side:request("PATCH", "/apis/apps/v1/namespaces/" .. DOOMED .. "/deployments/web?fieldManager=diff",
               {body = deployment("web"), headers = APPLY})
  local code, body = side:request("DELETE", "/api/v1/namespaces/" .. DOOMED)
  side.doomed_rv = body.metadata and body.metadata.resourceVersion
  local refused = answer(side, "POST", "/api/v1/namespaces/" .. DOOMED .. "/configmaps",
                         {body = configmap("late", nil, {k = "v"})})
  return {deleted = side:view {code = code, body = body}, refused = refused}
end)

step("the namespace's objects go first, then the namespace", function(side)
  wait_for("the namespace to go", function() return select(2, get(side, "/api/v1/namespaces/" .. DOOMED)) == 404 end)
  local rv = side.doomed_rv
  local _, ns_events = watch(side, "/api/v1/namespaces?watch=true&timeoutSeconds=1&fieldSelector=metadata.name%3D"
    .. DOOMED .. "&resourceVersion=" .. rv)
  local _, cm_events = watch(side, "/api/v1/namespaces/" .. DOOMED .. "/configmaps?watch=true&timeoutSeconds=1"
    .. "&labelSelector=app&resourceVersion=" .. rv)
  local _, d_events = watch(side, "/apis/apps/v1/namespaces/" .. DOOMED .. "/deployments?watch=true&timeoutSeconds=1"
    .. "&resourceVersion=" .. rv)
  local function last_rv(events) return tonumber(events[#events].object.metadata.resourceVersion) end
  local types = function(events)
    local t = array {}
    for _, e in ipairs(events) do
      if t[#t] ~= e.type then t[#t + 1] = e.type end
    end
    return t
  end
  return {namespace = types(ns_events), configmaps = types(cm_events), deployments = types(d_events),
          objects_first = last_rv(cm_events) < last_rv(ns_events) and last_rv(d_events) < last_rv(ns_events),
          last = side:view(ns_events[#ns_events].object.status)}
end)

-- ---- a custom kind, and a watch from too long ago ----

local CRD = {
  apiVersion = "apiextensions.k8s.io/v1", kind = "CustomResourceDefinition",
  metadata = {name = "widgets.example.com"},
  spec = {group = "example.com", scope = "Namespaced",
          names = {plural = "widgets", singular = "widget", kind = "Widget", listKind = "WidgetList"},
          versions = {{name = "v1", served = true, storage = true,
                       schema = {openAPIV3Schema = {type = "object", ["x-kubernetes-preserve-unknown-fields"] = true}}}}},
}
local WIDGETS = "/apis/example.com/v1/namespaces/" .. NS .. "/widgets"

step("a CustomResourceDefinition is established and serves its kind", function(side)
  local code = side:request("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", {body = CRD})
  local crd = wait_for("the CRD to be established", function()
    local c = get(side, "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.example.com")
    for _, cond in ipairs(c and c.status and c.status.conditions or {}) do
      if cond.type == "Established" and cond.status == "True" then return c end
    end
  end)
  local created = wait_for("the Widget kind to be served", function()
    local c, body = side:request("POST", WIDGETS, {body = {apiVersion = "example.com/v1", kind = "Widget",
                                                          metadata = {name = "w1"}, spec = {size = 1}}})
    if c ~= 404 then return side:view {code = c, body = body} end
  end)
  return {code = code, status = side:view(crd.status), created = created}
end)

-- kube-apiserver keeps a window of events per kind in its watch cache; a custom kind's window
-- starts when its CRD is established, so resourceVersion 1 lies before it. kubesim's window is
-- its history (--history above), which the writes of the steps before have gone beyond.
step("watch from a resourceVersion that is too old: ERROR 410 Expired", function(side)
  local code, events, bookmarks = watch(side, WIDGETS .. "?watch=true&allowWatchBookmarks=true&timeoutSeconds=2"
    .. "&resourceVersion=1")
  for _, e in ipairs(events) do
    if e.type == "ERROR" then e.object.message = e.object.message:gsub("%(%d+%)", "(<rv>)") end
  end
  return side:view {code = code, events = events, bookmarks = #bookmarks.list}
end)

-- ---- requests no route serves ----

step("an unknown resource and a method a path does not allow", function(side)
  return {unknown = answer(side, "GET", "/apis/apps/v1/namespaces/" .. NS .. "/widgetz"),
          method = answer(side, "POST", CM .. "/cm-a", {body = configmap("cm-a", nil, {})})}
end)

-- ---- the comparison ----

local REPORT = os.getenv("DIFFERENTIAL_REPORT")

describe("kubesim against kube-apiserver", function()
  -- tests/realcluster runs every controller in one process, whose name is their field manager
  local sides = {differential.side(sim, "kubesim"),
                 differential.side(real, "kube-apiserver", {realcluster = "kube-controller-manager"})}
  for _, side in ipairs(sides) do
    side:name("kubesim-node-1", "<node>")
    side:name("realcluster-node-1", "<node>")
  end

  teardown(function()
    local _, _, err = sim:stop()
    real:stop()
    assert.is_nil(err:find("Sanitizer", 1, true), err)
  end)

  for _, s in ipairs(STEPS) do
    it(s.name, function()
      local a = s.run(sides[1])
      local b = s.run(sides[2])
      local found = differential.compare(a, b)
      local new, gone = differential.unexpected(found, KNOWN[s.name] or {})
      if REPORT then
        print(("\n== %s"):format(s.name))
        for _, line in ipairs(new) do print("  new  " .. line) end
        for _, line in ipairs(gone) do print("  gone " .. line) end
        return
      end
      assert(#new == 0 and #gone == 0, ("%s\nnew differences (kubesim | kube-apiserver):\n  %s\nlisted but gone:\n  %s")
        :format(s.name, table.concat(new, "\n  "), table.concat(gone, "\n  ")))
    end)
  end
end)
