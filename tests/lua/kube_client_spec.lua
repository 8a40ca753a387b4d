-- moonship.kube's client against servers on loopback: ms-testserver (tests/support/testserver.c)
-- for the faults, whose retries, back-off and Retry-After are read from what the server saw
-- (its request log), and kubesim for what a Kubernetes API server answers: paths by mapping
-- and discovery, server-side apply, list, delete, the error codes. tests/e2e/kube_spec.lua runs
-- the client at scale; these pin each behaviour alone.
local kube = require "moonship.kube"
local sched = require "moonship.sched"
local kubesim = require "support.kubesim"
local testserver = require "support.testserver"

-- A client of the test server: no kubeconfig, no credentials; back-off short unless given.
local function client_of(url, opts)
  opts = opts or {}
  opts.config = {server = url}
  opts.backoff, opts.backoff_max = opts.backoff or 0.001, opts.backoff_max or 0.01
  return assert(kube.connect(opts))
end

local function get(c, path, query, opts)
  opts = opts or {}
  opts.query = query
  return c:request("GET", path, nil, opts)
end

describe("kube client retries (ms-testserver)", function()
  local url, stop
  setup(function() url, stop = testserver.start() end)
  teardown(function() stop() end)

  it("tries a 5xx or 429 answer again, retries times, then returns its error", function()
    for _, case in ipairs {{500, "server_error"}, {502, "server_error"}, {503, "server_error"},
                           {504, "server_error"}, {429, "too_many_requests"}} do
      local status, want = case[1], case[2]
      local key = "retry-" .. status
      local c = client_of(url, {retries = 3})
      local resp, err, code = sched.run(get, c, "/status", {code = status, key = key})
      assert.is_nil(resp)
      assert.equal(want, code)
      assert.equal(("GET /status: HTTP %d (%d): "):format(status, status), err)
      assert.equal(4, #testserver.seen(url, key), "requests the server saw for " .. status)
      assert.same({requests = 4, retries = 3}, c.counters)
    end
  end)

  it("stops trying once an answer comes", function()
    local c = client_of(url, {retries = 5})
    local resp = assert(sched.run(get, c, "/flaky", {key = "flaky", fail = 2, code = 503}))
    assert.equal(200, resp.status)
    assert.equal("ok", resp.body)
    assert.equal(3, #testserver.seen(url, "flaky"))
  end)

  it("waits as long as Retry-After says, not its own back-off", function()
    -- the back-off alone would try again within 10 ms
    local c = client_of(url, {retries = 2})
    local resp = assert(sched.run(get, c, "/flaky", {key = "ra", fail = 1, code = 429, retry_after = 1}))
    assert.equal(200, resp.status)
    local seen = testserver.seen(url, "ra")
    assert.equal(2, #seen)
    -- the server's clock counts whole milliseconds: at most 1 ms is lost to rounding
    assert.is_true(seen[2] - seen[1] >= 999, "the retry came " .. (seen[2] - seen[1]) .. " ms after the 429")
  end)

  it("backs off exponentially between tries", function()
    local c = client_of(url, {retries = 3, backoff = 0.04, backoff_max = 10})
    assert.is_nil((sched.run(get, c, "/status", {code = 503, key = "backoff"})))
    local seen = testserver.seen(url, "backoff")
    assert.equal(4, #seen)
    -- the i-th wait is backoff * 2^(i-1), times a jitter in [0.5, 1.5)
    for i = 1, 3 do
      local least = 1000 * 0.04 * 2 ^ (i - 1) * 0.5
      assert.is_true(seen[i + 1] - seen[i] >= least - 1,
        ("wait %d: %d ms, at least %d expected"):format(i, seen[i + 1] - seen[i], least))
    end
  end)

  it("tries a dropped connection again, then returns closed", function()
    local c = client_of(url, {retries = 2})
    local resp, err, code = sched.run(get, c, "/close", {key = "close"})
    assert.is_nil(resp)
    assert.equal("closed", code)
    assert.matches("^GET /close: connection closed", err) -- the path, not the server's whole URL
    assert.equal(3, #testserver.seen(url, "close"))
  end)

  it("tries a refused connection again, then returns connect", function()
    local gone, stop_gone = testserver.start()
    stop_gone()
    local c = client_of(gone, {retries = 2})
    local resp, _, code = sched.run(get, c, "/status")
    assert.is_nil(resp)
    assert.equal("connect", code)
    assert.same({requests = 3, retries = 2}, c.counters)
  end)

  it("does not try again with retry = false, nor after a 4xx other than 429", function()
    local c = client_of(url, {retries = 3})
    assert.is_nil((sched.run(get, c, "/status", {code = 503, key = "noretry"}, {retry = false})))
    assert.equal(1, #testserver.seen(url, "noretry"))
    assert.is_nil((sched.run(get, c, "/status", {code = 404, key = "404"})))
    assert.equal(1, #testserver.seen(url, "404"))
  end)

  it("does not try again kube-apiserver's 500 for an apply that does not fit the schema", function()
    local c = client_of(url, {retries = 3})
    local status = '{"kind":"Status","apiVersion":"v1","status":"Failure","message":'
      .. '"failed to create typed patch object (/v1, Kind=ConfigMap): .data: expected map, got string","code":500}'
    local resp, err, code = sched.run(get, c, "/status",
      {code = 500, key = "schema", type = "application/json", body = status})
    assert.is_nil(resp)
    assert.equal("server_error", code)
    assert.matches("failed to create typed patch object", err, 1, true)
    assert.equal(1, #testserver.seen(url, "schema"))
  end)

  it("gives each failed status its code, and the Status' reason and message", function()
    local c = client_of(url, {retries = 0})
    for _, case in ipairs {
      {400, "bad_request"}, {401, "unauthorized"}, {403, "forbidden"}, {404, "not_found"},
      {405, "method_not_allowed"}, {409, "conflict"}, {410, "expired"}, {415, "unsupported_media_type"},
      {422, "invalid"}, {429, "too_many_requests"}, {418, "http_418"}, {500, "server_error"},
      {503, "server_error"},
    } do
      local resp, err, code = sched.run(get, c, "/status", {code = case[1]})
      assert.is_nil(resp)
      assert.equal(case[2], code, "HTTP " .. case[1])
      assert.equal(("GET /status: HTTP %d (%d): "):format(case[1], case[1]), err)
    end
    local already = '{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"AlreadyExists",'
      .. '"message":"configmaps \\"x\\" already exists","code":409}'
    local resp, err, code, status = sched.run(get, c, "/status",
      {code = 409, type = "application/json", body = already})
    assert.is_nil(resp)
    assert.equal("already_exists", code)
    assert.equal('GET /status: AlreadyExists (409): configmaps "x" already exists', err)
    assert.equal("AlreadyExists", status.reason)
  end)

  it("holds what goes past the burst until the rate allows it, and nothing with qps 0", function()
    sched.run(function()
      -- 3 at once, then one every 100 s: of 5 at once, the server sees 3
      local c = client_of(url, {qps = 0.01, burst = 3})
      local done, three = 0, sched.event()
      local g = sched.group()
      for _ = 1, 5 do
        g:spawn(function()
          assert(get(c, "/status", {key = "limited"}))
          done = done + 1
          if done == 3 then three:set() end
        end)
      end
      assert.is_true(three:wait(5))
      assert.equal(3, done)
      assert.equal(3, #testserver.seen(url, "limited"))
      assert.equal(-2, math.floor(c.tokens + 0.5)) -- two are waiting for a token
      g:cancel("done")
      g:wait()
      local free = client_of(url, {qps = 0, burst = 1})
      for _ = 1, 5 do assert(get(free, "/status", {key = "free"})) end
      assert.equal(5, #testserver.seen(url, "free"))
      assert.equal(1, free.tokens) -- the limiter never ran: its bucket is untouched
    end)
  end)

  it("finds a server that is not Kubernetes", function()
    local c = client_of(url, {retries = 0})
    local ok, err, code = sched.run(c.check, c)
    assert.is_nil(ok)
    assert.equal("not_kubernetes", code)
    assert.equal("GET /version: 404 not found: not a Kubernetes API server?", err)
  end)
end)

local function configmap(name, namespace, fields)
  local obj = {apiVersion = "v1", kind = "ConfigMap", metadata = {name = name, namespace = namespace}}
  for k, v in pairs(fields or {}) do obj[k] = v end
  return obj
end

describe("kube client on kubesim", function()
  local sim
  setup(function()
    sim = kubesim.start {time_scale = 0.01,
                         args = {"--kinds", "example.com/v1/Widget/widgets,example.com/v1/Gadget/gadgets:cluster"}}
  end)
  teardown(function() sim:stop() end)

  local function verb_count(verb) return sim:stats().requests_by_verb[verb] or 0 end

  it("builds paths of core and group kinds, namespaced or not, without asking the server", function()
    sim:with_namespace(function(c)
      local asked = c.counters.requests -- the namespace, made for this test
      assert.equal("default", c.namespace) -- kubesim's kubeconfig names it
      assert.equal("/api/v1/namespaces/ns/configmaps/cm", c:path("v1", "ConfigMap", "cm", "ns"))
      assert.equal("/api/v1/namespaces/default/configmaps/cm", c:path("v1", "ConfigMap", "cm"))
      assert.equal("/apis/apps/v1/namespaces/ns/deployments", c:path("apps/v1", "Deployment", nil, "ns"))
      assert.equal("/apis/batch/v1/namespaces/ns/jobs/j", c:path("batch/v1", "Job", "j", "ns"))
      assert.equal("/apis/apps/v1/deployments", c:path("apps/v1", "Deployment", nil, "")) -- every namespace
      assert.equal("/api/v1/namespaces/ns", c:path("v1", "Namespace", "ns", "ignored"))
      assert.equal("/apis/rbac.authorization.k8s.io/v1/namespaces/ns/roles/a%3Ab",
        c:path("rbac.authorization.k8s.io/v1", "Role", "a:b", "ns"))
      assert.equal(asked, c.counters.requests)
    end)
  end)

  it("finds other kinds by discovery, once per group-version, and names what the server lacks", function()
    sim:with_namespace(function(c)
      local asked = c.counters.requests
      assert.equal("/apis/example.com/v1/namespaces/ns/widgets/w", c:path("example.com/v1", "Widget", "w", "ns"))
      assert.equal("/apis/example.com/v1/gadgets/g", c:path("example.com/v1", "Gadget", "g", "ns"))
      assert.equal(asked + 1, c.counters.requests)
      assert.same({"example.com/v1", true}, {c:resolve_kind("example.com", "Widget")})
      assert.same({"example.com/v1", false}, {c:resolve_kind("example.com", "Gadget")})
      assert.equal(asked + 2, c.counters.requests) -- the group's preferred version, then cached
      assert.same({"apps/v1", true}, {c:resolve_kind("apps", "Deployment")})
      assert.same({"v1", false}, {c:resolve_kind("", "Namespace")})
      assert.equal(asked + 2, c.counters.requests)
      for _, case in ipairs {
        {{c:resolve_kind("nope.io", "Widget")}, "the server has no API group nope.io (for kind Widget)"},
        {{c:resolve_kind("example.com", "Thing")}, "the server has no kind Thing in example.com/v1"},
        {{c:mapping("example.com/v9", "Widget")}, "unknown apiVersion example.com/v9 (for kind Widget)"},
        {{c:apply {apiVersion = "example.com/v1", kind = "Thing", metadata = {name = "t"}}},
         "apply thing/t: the server has no kind Thing in example.com/v1"},
      } do
        assert.same({nil, case[2], "unknown_kind"}, case[1])
      end
    end)
  end)

  it("applies server-side with its field manager: created, then updated, dry run creating nothing", function()
    sim:with_namespace(function(c, ns)
      local live, created = c:apply(configmap("cm", ns, {data = {k = "1"}}))
      assert.is_true(created)
      assert.equal("1", live.data.k)
      local mf = live.metadata.managedFields
      assert.same({"moonship", "Apply"}, {mf[1].manager, mf[1].operation})
      local again, created2 = c:apply(configmap("cm", ns, {data = {k = "2"}}))
      assert.is_false(created2)
      assert.equal(live.metadata.uid, again.metadata.uid)
      assert.equal("2", again.data.k)
      local dry, dry_created = c:apply(configmap("dry", ns, {data = {k = "1"}}), {dry_run = true})
      assert.equal("dry", dry.metadata.name)
      assert.is_true(dry_created)
      assert.equal("not_found", select(3, c:get("v1", "ConfigMap", "dry", ns)))
      local other = assert(c:apply(configmap("mine", ns, {data = {k = "1"}}), {field_manager = "someone"}))
      assert.equal("someone", other.metadata.managedFields[1].manager)
      local named = assert(kube.connect {kubeconfig = sim.kubeconfig, field_manager = "ci"})
      assert.equal("ci", assert(named:apply(configmap("ci", ns, {data = {k = "1"}}))).metadata.managedFields[1].manager)
    end)
  end)

  it("takes a field from another manager unless force = false (then 409 conflict)", function()
    sim:with_namespace(function(c, ns)
      assert(c:apply(configmap("cm", ns, {data = {k = "theirs"}}), {field_manager = "other"}))
      local obj, err, code = c:apply(configmap("cm", ns, {data = {k = "ours"}}), {force = false})
      assert.is_nil(obj)
      assert.equal("conflict", code)
      assert.matches('^apply configmap/cm: PATCH /api/v1/namespaces/' .. ns:gsub("%p", "%%%0") .. '/configmaps/cm: Conflict %(409%): '
        .. 'Apply failed with 1 conflict: conflict with "other"', err)
      assert.equal("ours", assert(c:apply(configmap("cm", ns, {data = {k = "ours"}}))).data.k)
    end)
  end)

  it("returns the server's refusals as codes: not_found, conflict, already_exists, invalid", function()
    sim:with_namespace(function(c, ns)
      local obj, err, code = c:get("v1", "ConfigMap", "missing", ns)
      assert.same({nil, "not_found"}, {obj, code})
      assert.equal(('GET /api/v1/namespaces/%s/configmaps/missing: NotFound (404): configmaps "missing" not found')
        :format(ns), err)
      local cm = assert(c:apply(configmap("cm", ns)))
      local created, cerr, ccode = c:request("POST", "/api/v1/namespaces/" .. ns .. "/configmaps", configmap("cm", ns))
      assert.same({nil, "already_exists"}, {created, ccode})
      assert.matches('AlreadyExists %(409%): configmaps "cm" already exists', cerr)
      local bad, berr, bcode = c:apply(configmap("Bad_Name", ns))
      assert.same({nil, "invalid"}, {bad, bcode})
      assert.matches('^apply configmap/Bad_Name: .*Invalid %(422%): ConfigMap "Bad_Name" is invalid', berr)
      -- a precondition on the uid, given in the DeleteOptions
      local ok, derr, dcode = c:delete("v1", "ConfigMap", "cm", ns, {uid = "not-" .. cm.metadata.uid})
      assert.same({nil, "conflict"}, {ok, dcode})
      assert.matches("^delete configmap/cm: .*Conflict %(409%): .*Precondition failed", derr)
      assert(c:get("v1", "ConfigMap", "cm", ns))
    end)
  end)

  it("lists by label selector, every page, with apiVersion and kind on each item", function()
    sim:with_namespace(function(c, ns)
      for i = 1, 5 do
        assert(c:apply(configmap("cm" .. i, ns, {metadata = {name = "cm" .. i, namespace = ns,
                                                             labels = {parity = i % 2 == 0 and "even" or "odd"}}})))
      end
      local function names(list)
        local out = {}
        for i, item in ipairs(list.items) do
          assert.same({"v1", "ConfigMap"}, {item.apiVersion, item.kind})
          out[i] = item.metadata.name
        end
        table.sort(out)
        return out
      end
      assert.same({"cm2", "cm4"}, names(assert(c:list("v1", "ConfigMap", {namespace = ns, label_selector = "parity=even"}))))
      assert.same({"cm1", "cm3", "cm5"},
        names(assert(c:list("v1", "ConfigMap", {namespace = ns, label_selector = "parity in (odd),parity!=even"}))))
      assert.same({}, names(assert(c:list("v1", "ConfigMap", {namespace = ns, label_selector = "parity=none"}))))
      local before = verb_count("list")
      local all = assert(c:list("v1", "ConfigMap", {namespace = ns, label_selector = "parity", limit = 2}))
      assert.same({"cm1", "cm2", "cm3", "cm4", "cm5"}, names(all))
      assert.equal(3, verb_count("list") - before) -- pages of 2, 2 and 1
    end)
  end)

  it("deletes with its options in the body: propagation, dry run; a gone object is not_found", function()
    sim:with_namespace(function(c, ns)
      local function family(parent_name)
        local parent = assert(c:apply(configmap(parent_name, ns)))
        local ref = {apiVersion = "v1", kind = "ConfigMap", name = parent_name, uid = parent.metadata.uid}
        local child = assert(c:apply(configmap(parent_name .. "-child", ns,
          {metadata = {name = parent_name .. "-child", namespace = ns, ownerReferences = {ref}}})))
        return parent, child
      end
      -- dry run: the server answers as if, and deletes nothing (kube-apiserver reads the query's
      -- dryRun only when a DELETE has no body)
      local dry = family("dry")
      assert.is_true((c:delete("v1", "ConfigMap", "dry", ns, {dry_run = true})))
      assert.equal(dry.metadata.uid, assert(c:get("v1", "ConfigMap", "dry", ns)).metadata.uid)
      -- Orphan: the child stays, without its owner
      local orphan_parent, orphan_child = family("orphan")
      assert.is_true((c:delete("v1", "ConfigMap", "orphan", ns, {propagation = "Orphan"})))
      assert.is_true((c:wait_deleted(orphan_parent, {timeout = 10})))
      local kept = assert(c:get("v1", "ConfigMap", "orphan-child", ns))
      assert.equal(orphan_child.metadata.uid, kept.metadata.uid)
      assert.is_nil(kept.metadata.ownerReferences)
      -- Background (the default): the garbage collector deletes the child after its owner
      local _, child = family("bg")
      assert.is_true((c:delete("v1", "ConfigMap", "bg", ns)))
      assert.is_true((c:wait_deleted(child, {timeout = 10})))
      -- already gone
      assert.same({true, nil, "not_found"}, {c:delete("v1", "ConfigMap", "bg", ns)})
      local ok, err, code = c:delete("v1", "ConfigMap", "x", ns, {propagation = "Sideways"})
      assert.same({nil, "invalid"}, {ok, code})
      assert.matches("propagationPolicy: Unsupported value", err, 1, true)
    end)
  end)
end)
