-- moonship.kube.applyset and moonship.sha256 alone: the KEP-3659 id and the parent's name, the
-- member label, and record / stale / prune on a store-backed stand-in for the client that logs
-- every request. tests/e2e/prune_spec.lua runs the same against kubesim, tests/real/prune_spec.lua
-- against kube-apiserver and kubectl.
local applyset = require "moonship.kube.applyset"
local sched = require "moonship.sched"
local sha256 = require "moonship.sha256"

-- ---- a client over a table of objects ----------------------------------------------------

local Store = {}
Store.__index = Store

local function new_store()
  return setmetatable({objects = {}, calls = {}, rv = 0, conflicts = 0}, Store)
end

local function key(api_version, kind, ns, name) return table.concat({api_version, kind, ns or "", name}, "|") end

function Store:put(obj)
  self.rv = self.rv + 1
  obj.metadata.uid = obj.metadata.uid or ("uid-" .. self.rv)
  obj.metadata.resourceVersion = tostring(self.rv)
  self.objects[key(obj.apiVersion, obj.kind, obj.metadata.namespace, obj.metadata.name)] = obj
  return obj
end

function Store:get(api_version, kind, name, ns)
  self.calls[#self.calls + 1] = "get " .. kind .. "/" .. name
  local obj = self.objects[key(api_version, kind, ns, name)]
  if not obj then return nil, "not found", "not_found" end
  return obj
end

-- conflicts: how many applies with a resourceVersion still answer 409 (another writer won).
function Store:apply(obj, opts)
  self.calls[#self.calls + 1] = "apply " .. obj.kind .. "/" .. obj.metadata.name
  self.managers = self.managers or {}
  self.managers[#self.managers + 1] = opts and opts.field_manager
  if obj.metadata.resourceVersion and self.conflicts > 0 then
    self.conflicts = self.conflicts - 1
    return nil, "apply: Conflict (409)", "conflict"
  end
  local copy = {apiVersion = obj.apiVersion, kind = obj.kind,
                metadata = {name = obj.metadata.name, namespace = obj.metadata.namespace,
                            labels = obj.metadata.labels, annotations = obj.metadata.annotations}}
  return self:put(copy)
end

function Store:resolve_kind(group, kind)
  self.calls[#self.calls + 1] = "resolve " .. kind .. (group ~= "" and ("." .. group) or "")
  local known = {["Deployment.apps"] = {"apps/v1", true}, Service = {"v1", true}, ["Job.batch"] = {"batch/v1", true},
                 ["ClusterRole.rbac.authorization.k8s.io"] = {"rbac.authorization.k8s.io/v1", false}}
  local k = known[group == "" and kind or (kind .. "." .. group)]
  if not k then return nil, "the server has no kind " .. kind, "unknown_kind" end
  return k[1], k[2]
end

function Store:list(api_version, kind, opts)
  self.calls[#self.calls + 1] = "list " .. kind .. " in " .. (opts.namespace ~= "" and opts.namespace or "(cluster)")
  local want_key, want_value = opts.label_selector:match("^(.-)=(.*)$")
  local items = {}
  for _, obj in pairs(self.objects) do
    local md = obj.metadata
    if obj.apiVersion == api_version and obj.kind == kind and (md.namespace or "") == opts.namespace
        and (md.labels or {})[want_key] == want_value then
      items[#items + 1] = obj
    end
  end
  return {items = items}
end

function Store:delete(api_version, kind, name, ns, opts)
  self.calls[#self.calls + 1] = ("delete %s/%s %s%s"):format(kind, name, opts.propagation, opts.dry_run and " dry" or "")
  local k = key(api_version, kind, ns, name)
  local obj = self.objects[k]
  if not obj then return true, nil, "not_found" end
  if opts.uid and obj.metadata.uid ~= opts.uid then return nil, "Precondition failed", "conflict" end
  if not opts.dry_run then self.objects[k] = nil end
  return true, {}
end

function Store:wait_deleted(obj)
  self.calls[#self.calls + 1] = "wait " .. obj.kind .. "/" .. obj.metadata.name
  return true
end

local function calls_matching(store, prefix)
  local out = {}
  for _, c in ipairs(store.calls) do if c:sub(1, #prefix) == prefix then out[#out + 1] = c end end
  return out
end

-- What moonship applies: a member of the set, applied by workflow.
local function object(api_version, kind, name, ns, extra_labels)
  local labels = {["app.kubernetes.io/part-of"] = "shop"}
  for k, v in pairs(extra_labels or {}) do labels[k] = v end
  return {apiVersion = api_version, kind = kind, metadata = {name = name, namespace = ns, labels = labels}}
end

local function live_member(store, set, workflow, obj)
  set:label(obj, workflow)
  return store:put(obj)
end

-- ---- sha256 and the id -----------------------------------------------------------------------

describe("sha256", function()
  it("agrees with sha256sum on every length across the padding boundaries", function()
    for _, n in ipairs {0, 1, 3, 54, 55, 56, 57, 63, 64, 65, 119, 120, 127, 128, 129, 1000} do
      local text = ("abcdefghij"):rep(100):sub(1, n)
      local path = os.tmpname()
      local f = assert(io.open(path, "wb"))
      f:write(text)
      f:close()
      local p = assert(io.popen("sha256sum " .. path))
      local want = p:read("a"):match("^(%x+)")
      p:close()
      os.remove(path)
      assert.equal(want, sha256.hex(text), "length " .. n)
    end
  end)

  it("gives FIPS 180-4's answers for abc and the two-block message", function()
    assert.equal("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", sha256.hex("abc"))
    assert.equal("248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
      sha256.hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"))
    assert.equal(32, #sha256.digest(""))
  end)
end)

describe("applyset ids and names", function()
  it("is applyset-<base64url(sha256(name.namespace.kind.group)), unpadded>-v1", function()
    -- base64.urlsafe_b64encode(sha256(b"moonship-applyset-shop.default.Secret.")) without "="
    assert.equal("applyset-Xt_tE0HlGKy7DEbVi09RrH1MUwT80i1RguGJmyJTH_8-v1",
      applyset.id("moonship-applyset-shop", "default", "Secret", ""))
    local set = applyset.new({}, {app = "shop", namespace = "default"})
    assert.equal(applyset.id("moonship-applyset-shop", "default", "Secret", ""), set.id)
    assert.same({apiVersion = "v1", kind = "Secret", name = "moonship-applyset-shop", namespace = "default"}, set.parent)
    for _, id in ipairs {set.id, applyset.id("moonship-applyset-x-y", "ns", "Secret", "")} do
      assert.truthy(id:match("^applyset%-[%w_%-]+%-v1$"), id)
      assert.is_true(#id <= 63, "a label value")
    end
  end)

  it("names the parent moonship-applyset-<app>[-<env>], made a valid name with a hash when it was not", function()
    assert.equal("moonship-applyset-shop-pr-42", applyset.parent_name("shop", "pr-42"))
    assert.equal("moonship-applyset-shop", applyset.parent_name("shop"))
    local odd = applyset.parent_name("My_App", "PR.1")
    assert.equal("moonship-applyset-my-app-pr-1-" .. sha256.hex("My_App-PR.1"):sub(1, 8), odd)
    assert.not_equal(odd, applyset.parent_name("my-app", "pr-1"))
    assert.is_true(#applyset.parent_name(("a"):rep(300)) <= 253)
  end)

  it("labels a member and names the workflow that applied it, keeping its other labels", function()
    local set = applyset.new({}, {app = "shop", environment = "dev", namespace = "shop-dev"})
    local obj = object("apps/v1", "Deployment", "web", "shop-dev")
    assert.equal(obj, set:label(obj, "setup"))
    assert.equal(set.id, obj.metadata.labels["applyset.kubernetes.io/part-of"])
    assert.equal("shop", obj.metadata.labels["app.kubernetes.io/part-of"])
    assert.equal("setup", obj.metadata.annotations["moonship.dev/workflow"])
  end)
end)

-- ---- record ------------------------------------------------------------------------------------

describe("applyset record", function()
  it("creates the parent covering the objects' group-kinds, then asks nothing while they stay covered", function()
    local store = new_store()
    local set = applyset.new(store, {app = "shop", environment = "dev", namespace = "shop-dev"})
    sched.run(function()
      assert.is_true(set:record {object("apps/v1", "Deployment", "web", "shop-dev"), object("v1", "Service", "web", "shop-dev")})
      local parent = store.objects[key("v1", "Secret", "shop-dev", "moonship-applyset-shop-dev")]
      assert.truthy(parent)
      assert.equal(set.id, parent.metadata.labels["applyset.kubernetes.io/id"])
      assert.equal("shop", parent.metadata.labels["app.kubernetes.io/part-of"])
      assert.equal("Deployment.apps,Service", parent.metadata.annotations["applyset.kubernetes.io/contains-group-kinds"])
      assert.equal("", parent.metadata.annotations["applyset.kubernetes.io/additional-namespaces"])
      assert.matches("^moonship/%d+%.%d+%.%d+", parent.metadata.annotations["applyset.kubernetes.io/tooling"])
      assert.equal("moonship-applyset", store.managers[1])
      local before = #store.calls
      assert.is_true(set:record {object("apps/v1", "Deployment", "api", "shop-dev")})
      assert.equal(before, #store.calls, "no request for kinds already covered")
      -- after forget (release.remove_environment deleted the parent), it is read and written again
      store.objects[key("v1", "Secret", "shop-dev", "moonship-applyset-shop-dev")] = nil
      set:forget()
      assert.is_true(set:record {object("apps/v1", "Deployment", "api", "shop-dev")})
      assert.same({"get Secret/moonship-applyset-shop-dev", "apply Secret/moonship-applyset-shop-dev"},
        {table.unpack(store.calls, before + 1)})
    end)
  end)

  it("grows to the superset of what the live parent had and what comes, with other namespaces", function()
    local store = new_store()
    local other = applyset.new(store, {app = "shop", environment = "dev", namespace = "shop-dev"})
    local set = applyset.new(store, {app = "shop", environment = "dev", namespace = "shop-dev"})
    sched.run(function()
      assert.is_true(other:record {object("batch/v1", "Job", "migrate-1", "shop-dev")})
      assert.is_true(set:record {object("apps/v1", "Deployment", "web", "shop-dev"),
                                 object("v1", "ConfigMap", "cfg", "monitoring"),
                                 object("rbac.authorization.k8s.io/v1", "ClusterRole", "reader", nil)})
      local ann = store.objects[key("v1", "Secret", "shop-dev", "moonship-applyset-shop-dev")].metadata.annotations
      assert.equal("ClusterRole.rbac.authorization.k8s.io,ConfigMap,Deployment.apps,Job.batch",
        ann["applyset.kubernetes.io/contains-group-kinds"])
      assert.equal("monitoring", ann["applyset.kubernetes.io/additional-namespaces"])
    end)
  end)

  it("reads the parent again when another writer changed it meanwhile (409 on its resourceVersion)", function()
    local store = new_store()
    local set = applyset.new(store, {app = "shop", namespace = "default"})
    sched.run(function()
      assert.is_true(set:record {object("v1", "Service", "web", "default")})
      store.conflicts = 2
      assert.is_true(set:record {object("apps/v1", "Deployment", "web", "default")})
      assert.equal(4, #calls_matching(store, "apply Secret/"), "the first write, two conflicts, the write that passed")
      assert.equal(4, #calls_matching(store, "get Secret/"), "one read per write")
    end)
  end)

  it("refuses another tool's parent and changes nothing", function()
    local store = new_store()
    local set = applyset.new(store, {app = "shop", namespace = "default"})
    store:put {apiVersion = "v1", kind = "Secret", metadata = {name = "moonship-applyset-shop", namespace = "default",
      labels = {["applyset.kubernetes.io/id"] = set.id},
      annotations = {["applyset.kubernetes.io/tooling"] = "kubectl/v1.37.2",
                     ["applyset.kubernetes.io/contains-group-kinds"] = "Service"}}}
    sched.run(function()
      local ok, err = set:record {object("apps/v1", "Deployment", "web", "default")}
      assert.is_nil(ok)
      assert.equal('applyset parent secret/moonship-applyset-shop in namespace default is managed by the tooling '
        .. '"kubectl", not moonship: left alone', err)
      local stale, serr = set:stale({}, "setup")
      assert.is_nil(stale)
      assert.equal(err, serr)
    end)
    assert.same({}, calls_matching(store, "apply"))
  end)
end)

-- ---- stale and prune ------------------------------------------------------------------------

describe("applyset stale", function()
  local store, set
  before_each(function()
    store = new_store()
    set = applyset.new(store, {app = "shop", environment = "dev", namespace = "shop-dev"})
  end)

  it("is empty, after one read, without a parent", function()
    sched.run(function() assert.same({}, set:stale({}, "setup")) end)
    assert.same({"get Secret/moonship-applyset-shop-dev"}, store.calls)
  end)

  it("lists the members the workflow applied last that it no longer produces; Jobs by their job", function()
    local web = object("apps/v1", "Deployment", "web", "shop-dev")
    local worker = object("apps/v1", "Deployment", "worker", "shop-dev")
    local worker_svc = object("v1", "Service", "worker", "shop-dev")
    local patched = object("apps/v1", "Deployment", "api", "shop-dev")
    local old_migrate = object("batch/v1", "Job", "migrate-aaaa1111", "shop-dev", {["moonship.dev/job"] = "migrate"})
    local old_seed = object("batch/v1", "Job", "seed-aaaa1111", "shop-dev", {["moonship.dev/job"] = "seed"})
    local foreign = object("apps/v1", "Deployment", "legacy", "shop-dev")   -- the app's label, not the set's
    sched.run(function()
      assert.is_true(set:record {web, worker, worker_svc, old_migrate})
      for _, o in ipairs {web, worker, worker_svc, old_migrate, old_seed} do live_member(store, set, "setup", o) end
      live_member(store, set, "patch", patched)
      store:put(foreign)
      -- this run's setup produces web and a new Job of migrate; seed and worker are gone
      local produced = {object("apps/v1", "Deployment", "web", "shop-dev"),
                        object("batch/v1", "Job", "migrate-bbbb2222", "shop-dev", {["moonship.dev/job"] = "migrate"})}
      local stale = assert(set:stale(produced, "setup"))
      local names = {}
      for i, o in ipairs(stale) do names[i] = o.kind .. "/" .. o.metadata.name end
      assert.same({"Deployment/worker", "Job/seed-aaaa1111", "Service/worker"}, names)
      assert.equal(worker.metadata.uid, stale[1].metadata.uid)
      -- keep: what other workflows of the template still produce stays
      local kept = assert(set:stale(produced, "setup", {keep = {object("v1", "Service", "worker", "shop-dev")}}))
      assert.equal(2, #kept)
      -- another workflow sees only its own
      local mine = assert(set:stale({}, "patch"))
      assert.equal(1, #mine)
      assert.equal("api", mine[1].metadata.name)
    end)
    assert.same({"list Deployment in shop-dev", "list Job in shop-dev", "list Service in shop-dev"},
      {table.unpack(calls_matching(store, "list"), 1, 3)})
  end)

  it("lists cluster-scoped kinds once and skips kinds the server no longer serves", function()
    store:put {apiVersion = "v1", kind = "Secret", metadata = {name = "moonship-applyset-shop-dev", namespace = "shop-dev",
      labels = {["applyset.kubernetes.io/id"] = set.id},
      annotations = {["applyset.kubernetes.io/tooling"] = "moonship/0.0.1",
                     ["applyset.kubernetes.io/contains-group-kinds"] = "ClusterRole.rbac.authorization.k8s.io,Widget.example.com",
                     ["applyset.kubernetes.io/additional-namespaces"] = "monitoring"}}}
    local role = object("rbac.authorization.k8s.io/v1", "ClusterRole", "reader", nil)
    sched.run(function()
      live_member(store, set, "setup", role)
      local stale = assert(set:stale({}, "setup"))
      assert.equal(1, #stale)
      assert.equal("reader", stale[1].metadata.name)
    end)
    assert.same({"list ClusterRole in (cluster)"}, calls_matching(store, "list"))
  end)
end)

describe("applyset prune", function()
  it("deletes each with Foreground and its uid, waits for each, and says so per object", function()
    local store = new_store()
    local set = applyset.new(store, {app = "shop", namespace = "default"})
    local said = {}
    sched.run(function()
      local a = live_member(store, set, "setup", object("apps/v1", "Deployment", "worker", "default"))
      local b = live_member(store, set, "setup", object("v1", "Service", "worker", "default"))
      local c = live_member(store, set, "setup", object("v1", "Service", "gone", "default"))
      store.objects[key("v1", "Service", "default", "gone")] = nil
      assert.is_true(set:prune({a, b, c}, {on_deleted = function(obj, message) said[#said + 1] = message end}))
    end)
    assert.same({"delete Deployment/worker Foreground", "delete Service/worker Foreground", "delete Service/gone Foreground"},
      calls_matching(store, "delete"))
    assert.same({"wait Deployment/worker", "wait Service/worker"}, calls_matching(store, "wait"))
    assert.same({"service/gone was already gone", "deleted deployment/worker", "deleted service/worker"}, said)
  end)

  it("leaves a newer object of the same name alone (uid precondition), and deletes nothing in a dry run", function()
    local store = new_store()
    local set = applyset.new(store, {app = "shop", namespace = "default"})
    local said = {}
    sched.run(function()
      local old = live_member(store, set, "setup", object("apps/v1", "Deployment", "worker", "default"))
      local stale = {apiVersion = old.apiVersion, kind = old.kind,
                     metadata = {name = "worker", namespace = "default", uid = "an-older-uid"}}
      local web = live_member(store, set, "setup", object("apps/v1", "Deployment", "web", "default"))
      assert.is_true(set:prune({stale, web}, {dry_run = true, on_deleted = function(_, m) said[#said + 1] = m end}))
    end)
    assert.same({"deployment/worker was already gone (the name holds a newer object, left alone)",
                 "would delete deployment/web (the server's dry run passed)"}, said)
    assert.same({}, calls_matching(store, "wait"))
    assert.truthy(store.objects[key("apps/v1", "Deployment", "default", "web")])
    assert.truthy(store.objects[key("apps/v1", "Deployment", "default", "worker")])
  end)
end)
