-- moonship.model.compare: what the normaliser leaves out, how secrets are masked, and the diff of
-- two objects as the server returns them.
local compare = require "moonship.model.compare"
local json = require "moonship.json"

-- A Deployment as an API server returns it, with the fields only the server writes.
local function deployment(image, extra)
  local d = json.decode([[{
    "apiVersion": "apps/v1", "kind": "Deployment",
    "metadata": {"name": "web", "namespace": "shop", "uid": "0c1e", "resourceVersion": "812", "generation": 3,
      "creationTimestamp": "2024-05-01T10:00:00Z",
      "annotations": {"moonship.dev/run": "20240501-100000-abcdef", "deployment.kubernetes.io/revision": "3"},
      "labels": {"app.kubernetes.io/name": "web"},
      "managedFields": [{"manager": "moonship", "operation": "Apply", "time": "2024-05-01T10:00:00Z"}]},
    "spec": {"replicas": 2, "template": {"metadata": {"labels": {"app.kubernetes.io/name": "web"}},
      "spec": {"containers": [{"name": "web", "image": "IMAGE",
        "env": [{"name": "API_TOKEN", "value": "tok-live-1"}, {"name": "MODE", "value": "fast"}]}]}}},
    "status": {"replicas": 2, "readyReplicas": 2, "observedGeneration": 3}
  }]])
  d.spec.template.spec.containers[1].image = image
  for k, v in pairs(extra or {}) do d.metadata.annotations[k] = v end
  return d
end

local function text(lines) return table.concat(lines, "\n") end

-- Whether text has these whole lines.
local function has(t, lines) return ("\n" .. t .. "\n"):find("\n" .. lines .. "\n", 1, true) ~= nil end

describe("compare.normalize", function()
  it("drops status, the server's metadata and the run annotation, and keeps the rest", function()
    local n = compare.normalize(deployment("web:1"))
    assert.is_nil(n.status)
    for _, k in ipairs {"uid", "resourceVersion", "generation", "creationTimestamp", "managedFields"} do
      assert.is_nil(n.metadata[k], k)
    end
    assert.same({["deployment.kubernetes.io/revision"] = "3"}, n.metadata.annotations)
    assert.equal("web", n.metadata.name)
    assert.equal(2, n.spec.replicas)
  end)

  it("leaves the object it was given as it was", function()
    local d = deployment("web:1")
    compare.normalize(d)
    assert.equal("812", d.metadata.resourceVersion)
    assert.equal("20240501-100000-abcdef", d.metadata.annotations["moonship.dev/run"])
  end)

  it("drops annotations that only held the run's", function()
    local d = deployment("web:1")
    d.metadata.annotations["deployment.kubernetes.io/revision"] = nil
    assert.is_nil(compare.normalize(d).metadata.annotations)
  end)

  it("of a Job compared with an earlier run's: drops its name and what the server derives from name and uid", function()
    local job = json.decode([[{"apiVersion": "batch/v1", "kind": "Job",
      "metadata": {"name": "migrate-1a2b3c4d", "labels": {"moonship.dev/job": "migrate"}},
      "spec": {"selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "u1"}},
        "template": {"metadata": {"labels": {"moonship.dev/job": "migrate", "controller-uid": "u1",
          "batch.kubernetes.io/controller-uid": "u1", "job-name": "migrate-1a2b3c4d",
          "batch.kubernetes.io/job-name": "migrate-1a2b3c4d"}}, "spec": {"restartPolicy": "Never"}}}}]])
    local n = compare.normalize(job, {job = true})
    assert.is_nil(n.metadata.name)
    assert.is_nil(n.spec.selector)
    assert.same({["moonship.dev/job"] = "migrate"}, n.spec.template.metadata.labels)
    -- a Job that chose its own selector keeps it
    job.spec.manualSelector = true
    assert.same({matchLabels = {["batch.kubernetes.io/controller-uid"] = "u1"}},
      compare.normalize(job, {job = true}).spec.selector)
  end)
end)

describe("compare.objects", function()
  it("the same object of another run, with other server fields: unchanged, no diff", function()
    local live, want = deployment("web:1"), deployment("web:1")
    want.metadata.resourceVersion, want.metadata.generation = "900", 4
    want.metadata.annotations["moonship.dev/run"] = "20240601-120000-fedcba"
    want.metadata.managedFields[1].time = "2024-06-01T12:00:00Z"
    want.status = nil
    local action, diff = compare.objects(live, want)
    assert.equal("unchanged", action)
    assert.same({}, diff)
  end)

  it("a changed image: the image line in a hunk with 3 lines of context", function()
    local action, diff = compare.objects(deployment("web:1"), deployment("web:2"))
    assert.equal("changed", action)
    assert.same({
      "--- live", "+++ moonship", "@@ -20,5 +20,5 @@",
      "           value: tok-live-1", "         - name: MODE", "           value: fast",
      "-        image: web:1", "+        image: web:2", "         name: web",
    }, diff)
  end)

  it("writes the YAML with sorted keys, whatever order the objects came in", function()
    local a = json.decode('{"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"name": "c"}, "data": {"b": "1", "a": "2"}}')
    local b = json.decode('{"data": {"a": "2", "b": "1"}, "apiVersion": "v1", "metadata": {"name": "c"}, "kind": "ConfigMap"}')
    assert.equal("unchanged", (compare.objects(a, b)))
    assert.same({"apiVersion: v1", "data:", "  a: \"2\"", "  b: \"1\"", "kind: ConfigMap", "metadata:", "  name: c"},
      compare.lines(compare.normalize(b)))
  end)
end)

describe("secret values", function()
  local function secret(data, string_data)
    return {apiVersion = "v1", kind = "Secret", metadata = {name = "db", namespace = "shop"}, type = "Opaque",
            data = data, stringData = string_data}
  end

  it("a Secret: keys added, removed and changed are named; no value is shown", function()
    local live = secret({user = "YWRtaW4=", password = "aHVudGVyMg==", old = "b2xk"})
    local want = secret({user = "YWRtaW4=", password = "czNjcjN0", fresh = "bmV3"}, {token = "plain-token-value"})
    local action, diff = compare.objects(live, want)
    assert.equal("changed", action)
    local t = text(diff)
    for _, value in ipairs {"YWRtaW4=", "aHVudGVyMg==", "b2xk", "czNjcjN0", "bmV3", "plain-token-value"} do
      assert.is_nil(t:find(value, 1, true), value)
    end
    assert.is_true(has(t, '-  old: "***"'), t)
    assert.is_true(has(t, '+  fresh: "***"'), t)
    assert.is_true(has(t, '-  password: "*** (before)"'), t)
    assert.is_true(has(t, '+  password: "*** (after)"'), t)
    assert.is_true(has(t, '   user: "***"'), t)
    assert.is_true(has(t, '+  token: "***"'), t)
  end)

  it("a Secret whose values did not change: unchanged", function()
    assert.equal("unchanged", (compare.objects(secret({a = "MQ=="}), secret({a = "MQ=="}))))
  end)

  it("env variables marked secret: the variable is named, its values never shown", function()
    local live, want = deployment("web:1"), deployment("web:1")
    want.spec.template.spec.containers[1].env[1].value = "tok-new-2"
    local action, diff = compare.objects(live, want, {secret_env = {API_TOKEN = true}})
    assert.equal("changed", action)
    local t = text(diff)
    assert.is_nil(t:find("tok-live-1", 1, true))
    assert.is_nil(t:find("tok-new-2", 1, true))
    assert.is_true(has(t, '         - name: API_TOKEN\n-          value: "*** (before)"\n+          value: "*** (after)"'), t)
    -- other variables are shown as they are
    assert.matches("value: fast", t)
    -- unmarked, the value is a value like any other
    local _, plain = compare.objects(live, want)
    assert.matches("tok%-new%-2", text(plain))
  end)

  it("the last-applied annotation (the whole object, values included) is masked on every object", function()
    local copy = '{"data":{"password":"aHVudGVyMg=="}}'
    local live = secret({password = "aHVudGVyMg=="})
    live.metadata.annotations = {[compare.LAST_APPLIED] = copy}
    local want = secret({password = "c2VjcmV0"})
    want.metadata.annotations = {[compare.LAST_APPLIED] = copy}
    local _, diff = compare.objects(live, want)
    assert.is_nil(text(diff):find("aHVudGVyMg==", 1, true))
    local d = deployment("web:1", {[compare.LAST_APPLIED] = '{"env":"tok-live-1"}'})
    local n = compare.normalize(d)
    compare.mask(n, nil)
    assert.equal(compare.MASK, n.metadata.annotations[compare.LAST_APPLIED])
  end)
end)
