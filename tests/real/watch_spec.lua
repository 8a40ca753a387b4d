-- moonship's watches against kube-apiserver when it cuts them and expires their
-- resourceVersion: a `moonship run` script watches ConfigMaps and Secrets through the client
-- (client:watch) while kubectl changes them, and must see every change; a deploy whose shared
-- watches are cut every few seconds must still see its rollouts become ready.
--
-- The cluster: --drop-watches-after 3s cuts the connection of every watch of a client outside
-- the control plane after 3 s (HTTP/2 stream reset: what a load balancer or a network failure
-- does, not the clean end of a watch); ConfigMaps have no watch cache
-- (--watch-cache-sizes=configmaps#0), so their watches are served by etcd, which the apiserver
-- compacts every second (--etcd-compaction-interval=1s): a watch resumed from a resourceVersion
-- older than that gets 410 Expired and the client must re-list. Secrets keep the watch cache,
-- so their watch resumes from its resourceVersion without a re-list.
local events = require "support.events"
local proc = require "support.proc"
local realcluster = require "support.realcluster"

local q = proc.quote

local cluster, why = realcluster.start {
  time_scale = 0.05,
  scenario = [[
defaults: {start_delay: 0.2, ready_delay: 0.3, jitter: 0}
workloads:
  slow-a: {start_delay: 20, ready_delay: 100}
  slow-b: {start_delay: 20, ready_delay: 100}
  slow-c: {start_delay: 20, ready_delay: 100}
]],
  args = {"--drop-watches-after", "3s", "--apiserver-arg", "--watch-cache-sizes=configmaps#0",
          "--apiserver-arg", "--etcd-compaction-interval=1s"},
}
if not cluster then pending(why) return end

-- Two watches, each with its own client so that each one's counters are its own. Every event
-- is a line (kind, type, name, resourceVersion; SYNCED after each (re-)list), and so is every
-- change of the watches' counters: lists, watch requests, 410s, requests and the client's
-- retries (a watch cut before it delivered anything is retried by the client's request loop).
local SCRIPT = [=[
local moonship = require "moonship"
local sched = moonship.sched
local kubeconfig, ns, deadline = arg[1], arg[2], tonumber(arg[3])
local fmt = string.format
local function out(...) io.stdout:write(fmt(...), "\n") io.stdout:flush() end

local watches, order = {}, {}
local function follow(label, api_version, kind)
  local client = assert(moonship.connect {kubeconfig = kubeconfig})
  local iter, w = client:watch(api_version, kind, {namespace = ns, sync_events = true,
                                                   drop = {"metadata.managedFields"}})
  watches[label] = {w = w, client = client}
  order[#order + 1] = label
  for ev in iter, w do
    if ev.type == "SYNCED" then
      out("%s SYNCED", label)
    else
      out("%s %s %s %s", label, ev.type, ev.object.metadata.name, ev.object.metadata.resourceVersion)
    end
  end
end

-- Reports the counters when they change (they live in this process: reading them is not
-- waiting for anything).
local function report()
  local last
  while true do
    local parts = {"stats"}
    for _, label in ipairs(order) do
      local x = watches[label]
      parts[#parts + 1] = fmt("%s lists=%d watches=%d expired=%d requests=%d retries=%d", label,
        x.w.stats.lists, x.w.stats.watches, x.w.stats.expired, x.client.counters.requests, x.client.counters.retries)
    end
    local line = table.concat(parts, " ")
    if line ~= last then out("%s", line) last = line end
    sched.sleep(0.05)
  end
end

pcall(sched.timeout, deadline, sched.all, {
  function() follow("configmaps", "v1", "ConfigMap") end,
  function() follow("secrets", "v1", "Secret") end,
  report,
})
out("deadline")
]=]

local NS = "watched"
local DEADLINE = 240 -- seconds: the script ends by itself, so a spec waiting on it cannot hang

local function kubectl(...)
  local ok, out, err = cluster:kubectl("-n", NS, ...)
  assert(ok, table.concat({...}, " ") .. ": " .. err)
  return out
end

-- name -> resourceVersion of a kind as the API server lists it now.
local function server_view(resource)
  local view = {}
  local out = kubectl("get", resource, "-o", 'jsonpath={range .items[*]}{.metadata.name}={.metadata.resourceVersion}{"\\n"}{end}')
  for name, rv in out:gmatch("([^=\n]+)=(%d+)") do view[name] = rv end
  return view
end

local function same(a, b)
  for k, v in pairs(a) do if b[k] ~= v then return false end end
  for k, v in pairs(b) do if a[k] ~= v then return false end end
  return true
end

local function show(view)
  local parts = {}
  for k, v in pairs(view) do parts[#parts + 1] = k .. "=" .. v end
  table.sort(parts)
  return "{" .. table.concat(parts, " ") .. "}"
end

local dirs = {}

describe("watches on the real control plane", function()
  teardown(function()
    cluster:stop()
    for _, dir in ipairs(dirs) do os.execute("rm -rf " .. q(dir)) end
  end)

  it("see every change through cut connections and 410 Expired (moonship run + client:watch)", function()
    kubectl("create", "namespace", NS)
    kubectl("create", "configmap", "a", "--from-literal=v=1")
    kubectl("create", "secret", "generic", "s1", "--from-literal=v=1")

    local dir = proc.tmpdir()
    dirs[#dirs + 1] = dir
    local script = proc.write_file(dir .. "/watch.lua", SCRIPT)
    local p = assert(io.popen(("echo $$; exec env -u LD_PRELOAD %s run %s %s %s %d 2>%s"):format(
      q(proc.moonship), q(script), q(cluster.kubeconfig), NS, DEADLINE, q(dir .. "/stderr"))))
    local pid = p:read("l")
    local _ <close> = setmetatable({}, {__close = function()
      os.execute("kill " .. pid .. " 2>/dev/null")
      p:close()
    end})

    -- What the script reported so far: each watch's view (name -> resourceVersion), its
    -- (re-)lists and its counters.
    local view = {configmaps = {}, secrets = {}}
    local synced = {configmaps = 0, secrets = 0}
    local stats = {}
    local lines = {}
    local function restarts(label)
      -- watch requests after the first, plus the client's retries of a cut request
      local s = stats[label]
      return s and (s.watches - 1 + s.retries) or 0
    end
    local function read_until(done, what)
      while not done() do
        local line = p:read("l")
        if not line or line == "deadline" then
          error(("the watch script ended before %s:\n%s\n%s"):format(what, table.concat(lines, "\n"),
            proc.read_file(dir .. "/stderr")))
        end
        lines[#lines + 1] = line
        local label, kind, name, rv = line:match("^(%a+) (%u+) (%S+) (%d+)$")
        if label then
          view[label][name] = kind ~= "DELETED" and rv or nil
        elseif line:match("^%a+ SYNCED$") then
          label = line:match("^%a+")
          synced[label] = synced[label] + 1
        elseif line:match("^stats ") then
          for l, lists, watches, expired, requests, retries in
              line:gmatch("(%a+) lists=(%d+) watches=(%d+) expired=(%d+) requests=(%d+) retries=(%d+)") do
            stats[l] = {lists = tonumber(lists), watches = tonumber(watches), expired = tonumber(expired),
                        requests = tonumber(requests), retries = tonumber(retries)}
          end
        end
      end
    end
    local function caught_up(what)
      local want = {configmaps = server_view("configmaps"), secrets = server_view("secrets")}
      read_until(function() return same(view.configmaps, want.configmaps) and same(view.secrets, want.secrets) end,
        what .. ": configmaps " .. show(want.configmaps) .. ", secrets " .. show(want.secrets))
    end

    read_until(function() return synced.configmaps >= 1 and synced.secrets >= 1 end, "the first lists")
    caught_up("the first lists")
    local changes = {
      function()
        kubectl("create", "configmap", "b", "--from-literal=v=1")
        kubectl("patch", "configmap", "a", "-p", '{"data":{"v":"2"}}')
        kubectl("create", "secret", "generic", "s2", "--from-literal=v=1")
        kubectl("delete", "secret", "s1")
      end,
      function()
        kubectl("delete", "configmap", "a")
        kubectl("patch", "configmap", "b", "-p", '{"data":{"v":"3"}}')
        kubectl("patch", "secret", "s2", "-p", '{"stringData":{"v":"2"}}')
        kubectl("create", "secret", "generic", "s3", "--from-literal=v=1")
      end,
    }
    for round, change in ipairs(changes) do
      -- The server's clock: each watch is cut every 3 s; the ConfigMaps' one then resumes from a
      -- resourceVersion that etcd has compacted (410) and re-lists.
      read_until(function()
        return stats.configmaps and stats.configmaps.expired >= round and restarts("secrets") >= round
      end, ("round %d: the server cutting both watches and expiring the ConfigMaps' resourceVersion"):format(round))
      change()
      caught_up(("round %d: every change"):format(round))
    end

    -- ConfigMaps: re-listed after each 410 (the first list and at least two more)
    assert.is_true(stats.configmaps.expired >= 2, lines[#lines])
    assert.is_true(stats.configmaps.lists >= 3 and synced.configmaps == stats.configmaps.lists, lines[#lines])
    -- Secrets: cut and resumed from their resourceVersion, never re-listed
    assert.same({1, 0, 1}, {stats.secrets.lists, stats.secrets.expired, synced.secrets})
    assert.is_true(restarts("secrets") >= 2, lines[#lines])
    -- the server says it cut them
    local cut = {}
    for path in cluster:stderr():gmatch("dropped a watch after 3s: GET (%S+) %(moonship%)") do
      local resource = path:match("^/api/v1/namespaces/" .. NS .. "/(%a+)%?")
      if resource then cut[resource] = (cut[resource] or 0) + 1 end
    end
    assert.is_true((cut.configmaps or 0) >= 2 and (cut.secrets or 0) >= 2,
      ("cut: configmaps %s, secrets %s"):format(cut.configmaps, cut.secrets))
  end)

  it("a deploy whose shared watches are cut every 3 s still sees every rollout complete", function()
    local dir = proc.tmpdir()
    dirs[#dirs + 1] = dir
    proc.write_file(dir .. "/moonship.yaml", [[
app: cut
services:
- {name: slow-a, image: example/a:1}
- {name: slow-b, image: example/b:1}
- {name: slow-c, image: example/c:1}
workflows:
- name: up
  parallelize:
  - step: one
    tasks: [services.slow-a, services.slow-b]
  - step: two
    tasks: [services.slow-c]
]])
    local before = #cluster:stderr()
    local code, ev, stderr = events.deploy(cluster, {dir .. "/moonship.yaml", "-w", "up", "-n", "cut"})
    assert.equal(0, code, stderr)
    for _, task in ipairs {"services.slow-a", "services.slow-b", "services.slow-c"} do
      assert.equal("succeeded", events.final_state(ev, task), task)
    end
    assert.same({"succeeded", 0}, {ev[#ev].state, ev[#ev].exit_code})
    for _, name in ipairs {"slow-a", "slow-b", "slow-c"} do
      local ok, out, err = cluster:kubectl("-n", "cut", "get", "deployment", name, "-o",
        "jsonpath={.status.availableReplicas}/{.spec.replicas}")
      assert(ok, err)
      assert.equal("1/1", out, name)
    end
    -- the deploy's own watches (Deployments, ReplicaSets, Pods of the namespace) were cut
    local cut = {}
    for path in cluster:stderr():sub(before + 1):gmatch("dropped a watch after 3s: GET (%S+) %(moonship%)") do
      local resource = path:match("/namespaces/cut/(%a+)%?")
      if resource then cut[resource] = (cut[resource] or 0) + 1 end
    end
    for _, resource in ipairs {"deployments", "replicasets", "pods"} do
      assert.is_true((cut[resource] or 0) >= 1, resource .. " watch never cut")
    end
  end)
end)
