-- moonship.kube.watch and moonship.kube.informer against kubesim: a watch lists, then watches
-- from the list's resourceVersion, resumes from the last one it saw when the server ends the
-- stream, and lists again after 410 Expired, giving only what changed; an informer's cache,
-- its SYNCED event, its subscribers and its index by owner. The server's faults are made by the
-- spec itself, in the watch's own requests (a spy on client:request), so nothing is timed.
local sched = require "moonship.sched"
local kubesim = require "support.kubesim"

local function configmap(name, namespace, fields)
  local obj = {apiVersion = "v1", kind = "ConfigMap", metadata = {name = name, namespace = namespace}}
  for k, v in pairs(fields or {}) do obj[k] = v end
  return obj
end

local function event_text(ev)
  return ev.type .. (ev.object and (" " .. ev.object.metadata.name) or "")
end

-- The next event of a watch, waited for at most 10 s.
local function next_within(next_event, w)
  local ev, err = sched.timeout(10, next_event, w)
  if err == "timeout" then error("no watch event within 10 s", 2) end
  return ev
end

-- Calls before(n, resource_version) in the watch's task as it sends its n-th watch request.
local function spy_watches(c, before)
  local request, n = c.request, 0
  c.request = function(self, method, path, body, opts)
    local q = opts and opts.query
    if q and q.watch then
      n = n + 1
      before(n, q.resourceVersion)
    end
    return request(self, method, path, body, opts)
  end
end

describe("kube watch", function()
  local sim
  before_each(function() sim = kubesim.start {args = {"--history", "5"}} end)
  after_each(function() sim:stop() end)

  it("lists, then resumes from the last resourceVersion it saw when the server ends the stream", function()
    sim:with_namespace(function(c, ns)
      assert(c:apply(configmap("a", ns)))
      local from = {}
      spy_watches(c, function(n, rv)
        from[n] = rv
        -- made while no stream is open: only a watch that resumes from where it was hears it
        if n == 2 then assert(c:apply(configmap("b", ns))) end
      end)
      -- the server ends each watch request after 0.2 s
      local next_event, w = c:watch("v1", "ConfigMap", {namespace = ns, timeout_seconds = 0.2})
      assert.equal("ADDED a", event_text(next_within(next_event, w)))
      assert.equal("ADDED b", event_text(next_within(next_event, w)))
      assert.equal(1, w.stats.lists)
      assert.equal(0, w.stats.expired)
      assert.is_true(w.stats.watches >= 2)
      assert.is_string(from[1])
      assert.is_true(tonumber(from[2]) >= tonumber(from[1]), "the second watch from " .. tostring(from[2]))
      w:close()
      assert.is_nil(next_event(w))
    end)
  end)

  it("after 410 Expired lists again and gives only the differences", function()
    sim:with_namespace(function(c, ns)
      for _, name in ipairs {"same", "changed", "gone"} do assert(c:apply(configmap(name, ns, {data = {v = "1"}}))) end
      spy_watches(c, function(n)
        if n ~= 1 then return end
        -- between the list and its watch: three changes, then more than the server's history
        -- of 5 events holds, so the watch from the list's resourceVersion gets 410
        assert(c:apply(configmap("changed", ns, {data = {v = "2"}})))
        assert(c:delete("v1", "ConfigMap", "gone", ns))
        assert(c:apply(configmap("new", ns)))
        for i = 1, 6 do assert(c:apply(configmap("filler" .. i, "default"))) end
      end)
      local next_event, w = c:watch("v1", "ConfigMap", {namespace = ns})
      local listed = {}
      for i = 1, 3 do listed[i] = event_text(next_within(next_event, w)) end
      table.sort(listed)
      assert.same({"ADDED changed", "ADDED gone", "ADDED same"}, listed)
      local after = {}
      local by_name = {}
      for i = 1, 3 do
        local ev = next_within(next_event, w)
        after[i] = event_text(ev)
        by_name[ev.object.metadata.name] = ev.object
      end
      table.sort(after)
      assert.same({"ADDED new", "DELETED gone", "MODIFIED changed"}, after)
      assert.equal("2", by_name.changed.data.v)
      assert.equal("1", by_name.gone.data.v) -- its last known state
      assert.equal(2, w.stats.lists)
      assert.equal(1, w.stats.expired)
      w:close()
    end)
  end)

  it("ends with the error of a kind the server does not serve", function()
    sim:with_namespace(function(c, ns)
      local next_event, w = c:watch("example.com/v1", "Widget", {namespace = ns})
      local ok, err = pcall(next_event, w)
      assert.is_false(ok)
      assert.equal("watch Widget: unknown apiVersion example.com/v1 (for kind Widget)", err)
    end)
  end)
end)

describe("kube informer", function()
  local sim
  setup(function() sim = kubesim.start() end)
  teardown(function() sim:stop() end)

  it("is shared per namespace and kind, says SYNCED after the list, then passes on events", function()
    sim:with_namespace(function(c, ns)
      assert(c:apply(configmap("before", ns, {data = {v = "1"}})))
      local inf = c:informer("v1", "ConfigMap", ns)
      assert.equal(inf, c:informer("v1", "ConfigMap", ns))
      assert.not_equal(inf, c:informer("v1", "ConfigMap", "default"))
      local all, named = {}, {}
      local synced, later = sched.event(), sched.event()
      inf:subscribe(nil, function(t, obj)
        all[#all + 1] = t .. (obj and (" " .. obj.metadata.name) or "")
        if t == "SYNCED" then synced:set() end
      end)
      -- a subscriber of one name hears SYNCED too, with the object (nil: not there yet)
      local unsubscribe = inf:subscribe("later", function(t, obj)
        named[#named + 1] = t .. " " .. (obj and obj.metadata.name or "nil")
        if obj then later:set() end
      end)
      assert.is_false(inf.synced)
      assert.is_true(synced:wait(10))
      assert.is_true(inf.synced)
      assert.same({"ADDED before", "SYNCED"}, all)
      assert.equal("1", inf:get("before").data.v)
      assert.is_nil(inf:get("before").metadata.managedFields) -- not even decoded
      assert(c:apply(configmap("later", ns)))
      assert.is_true(later:wait(10))
      assert.same({"SYNCED nil", "ADDED later"}, named)
      assert.same({"ADDED before", "SYNCED", "ADDED later"}, all)
      unsubscribe()
      assert(c:delete("v1", "ConfigMap", "later", ns))
      assert(c:wait_deleted(configmap("later", ns), {timeout = 10}))
      assert.same({"SYNCED nil", "ADDED later"}, named) -- unsubscribed
      assert.equal("DELETED later", all[#all])
      assert.is_nil(inf:get("later"))
      local picked = inf:select(function(obj) return obj.metadata.name == "before" end)
      assert.equal(1, #picked)
    end)
  end)

  it("indexes its objects by owner, and keeps the index as they change", function()
    sim:with_namespace(function(c, ns)
      local parent = assert(c:apply(configmap("parent", ns)))
      local uid = parent.metadata.uid
      local owned = {metadata = {ownerReferences = {{apiVersion = "v1", kind = "ConfigMap", name = "parent", uid = uid}}}}
      local function child(name, refs)
        local obj = configmap(name, ns, {data = {v = name}})
        obj.metadata.ownerReferences = refs and owned.metadata.ownerReferences
        return obj
      end
      assert(c:apply(child("one", true)))
      assert(c:apply(child("two", true)))
      assert(c:apply(child("other")))
      local inf = c:informer("v1", "ConfigMap", ns)
      local heard = {}
      local changed = sched.event()
      inf:subscribe_owned(uid, function(t, obj)
        heard[#heard + 1] = t .. " " .. (obj and obj.metadata.name or "")
        if t == "DELETED" then changed:set() end
      end)
      local synced = sched.event()
      inf:subscribe(nil, function(t) if t == "SYNCED" then synced:set() end end)
      assert.is_true(synced:wait(10))
      local function owned_names()
        local names = {}
        for i, obj in ipairs(inf:owned_by(uid)) do names[i] = obj.metadata.name end
        table.sort(names)
        return names
      end
      assert.same({"one", "two"}, owned_names())
      table.sort(heard)
      assert.same({"ADDED one", "ADDED two", "SYNCED "}, heard)
      -- "two" no longer has the owner (the apply leaves out what it applied before)
      local moved = sched.event()
      local unsub = inf:subscribe("two", function(t, obj)
        if t == "MODIFIED" and #(obj.metadata.ownerReferences or {}) == 0 then moved:set() end
      end)
      assert(c:apply(child("two")))
      assert.is_true(moved:wait(10))
      unsub()
      assert.same({"one"}, owned_names())
      assert(c:delete("v1", "ConfigMap", "one", ns))
      assert.is_true(changed:wait(10))
      assert.same({}, owned_names())
      assert.same({}, inf:owned_by("no-such-uid"))
    end)
  end)
end)
