-- `moonship diff` and `moonship plan --diff` on kubesim: the shop deployed once, then diffed as it
-- is (exit 0, every object '='), with one image changed (exit 1, '~' and the image line in the
-- hunk), with a service added ('+ created'); secret values changed (named, never shown); bad
-- input and an unreachable cluster (exit 2). A diff applies nothing.
local kubesim = require "support.kubesim"
local events = require "support.events"
local json = require "moonship.json"
local proc = require "support.proc"

local SHOP = proc.source_dir .. "/examples/shop"

local function lines(text)
  local out = {}
  for l in text:gmatch("[^\n]+") do out[#out + 1] = l end
  return out
end

-- The lines of a diff's text that name an object (not its hunks, not the summary).
local function object_lines(text)
  local out = {}
  for _, l in ipairs(lines(text)) do
    if l:match("^[%+~=%-!%?] %a") and not l:match("^%-%-%- ") then out[#out + 1] = l end
  end
  return out
end

-- The lines of the object whose line is `head`: that line and its diff, up to the next object
-- line or the summary.
local function section(text, head)
  local out
  for _, l in ipairs(lines(text)) do
    if out and (l:match("^[%+~=%-!%?] %a") or l:match("^workflow ")) then break end
    if l == head then out = {} end
    if out then out[#out + 1] = l end
  end
  return out
end

-- The shop template with replacements {from, to} (plain text), written to dir/name.
local function shop_with(dir, name, edits)
  local text = proc.read_file(SHOP .. "/moonship.yaml")
  for _, e in ipairs(edits) do
    local i, j = text:find(e[1], 1, true)
    assert(i, "not in the shop template: " .. e[1])
    text = text:sub(1, i - 1) .. e[2] .. text:sub(j + 1)
  end
  return proc.write_file(dir .. "/" .. name, text)
end

local NEW_IMAGE = {"image: ghcr.io/example/shop-api:1.4.2", "image: ghcr.io/example/shop-api:1.5.0"}
local NEW_SERVICE = {
  {"\njobs:\n", "- name: admin\n  image: ghcr.io/example/shop-admin:0.9\n  ports:\n  - type: container_port\n"
    .. "    port: 9000\n\njobs:\n"},
  {"    tasks:\n    - services.backend\n", "    tasks:\n    - services.backend\n    - services.admin\n"},
}

describe("moonship diff", function()
  local sim, dir, stats_after_deploy
  setup(function()
    sim = kubesim.start {scenario = SHOP .. "/scenario.yaml", time_scale = 0.02}
    dir = proc.tmpdir()
    os.execute("cp " .. proc.quote(SHOP .. "/moonship.yaml") .. " " .. proc.quote(dir))
    local code, _, stderr = events.deploy(sim, {dir .. "/moonship.yaml", "-w", "deploy", "-n", "shop"})
    assert.equal(0, code, stderr)
    stats_after_deploy = sim:stats()
  end)
  teardown(function()
    sim:stop()
    os.execute("rm -rf " .. proc.quote(dir))
  end)

  local function diff(path, ...)
    local argv = {proc.moonship, "diff", path, "-w", "deploy", "--kubeconfig", sim.kubeconfig, "-n", "shop"}
    for _, a in ipairs {...} do argv[#argv + 1] = a end
    return proc.run(argv)
  end

  -- Nothing was stored: the same objects, the same resourceVersion as after the deploy.
  local function nothing_stored()
    local stats = sim:stats()
    assert.equal(stats_after_deploy.objects, stats.objects)
    assert.equal(stats_after_deploy.resource_version, stats.resource_version)
  end

  it("the template as deployed: exit 0, every object '=' (the Jobs rerun with the same spec)", function()
    local r = diff(dir .. "/moonship.yaml")
    assert.equal(0, r.code, r.stderr)
    assert.equal("", r.stderr)
    local objects = object_lines(r.stdout)
    assert.equal(6, #objects, r.stdout)
    for _, l in ipairs(objects) do assert.matches("^= unchanged ", l) end
    assert.same({"= unchanged deployment/frontend", "= unchanged service/frontend"}, {objects[1], objects[2]})
    assert.matches("^= unchanged job/migrate%-%x+ %(reruns job/migrate%-%x+ with the same spec%)$", objects[3])
    assert.matches("^= unchanged job/scrub%-%x+ %(reruns job/scrub%-%x+ with the same spec%)$", objects[4])
    assert.same({"= unchanged deployment/backend", "= unchanged service/backend"}, {objects[5], objects[6]})
    assert.matches("\nworkflow deploy of shop in namespace shop: 0 changed, 0 created, 6 unchanged, 0 deleted\n$", r.stdout)
    -- no hunk, no colour off a terminal
    assert.is_nil(r.stdout:find("@@", 1, true))
    assert.is_nil(r.stdout:find("\27", 1, true))
    nothing_stored()
  end)

  it("one image changed: exit 1, '~ changed deployment/backend' with the image line in its hunk", function()
    local path = shop_with(dir, "image.yaml", {NEW_IMAGE})
    local r = diff(path)
    assert.equal(1, r.code, r.stderr)
    local l = section(r.stdout, "~ changed deployment/backend")
    assert(l, r.stdout)
    assert.same({"~ changed deployment/backend", "--- live", "+++ moonship"}, {l[1], l[2], l[3]})
    assert.matches("^@@ %-%d+,7 %+%d+,7 @@$", l[4])
    assert.same({"-        image: ghcr.io/example/shop-api:1.4.2", "+        image: ghcr.io/example/shop-api:1.5.0"},
      {l[8], l[9]})
    assert.equal(12, #l) -- the line, ---, +++, @@, 3 + 2 + 3 lines
    -- the jobs take their image from the backend: new Jobs, with a changed spec
    assert.matches("\n%+ created job/migrate%-%x+ %(reruns job/migrate%-%x+ with a changed spec%)\n%-%-%- live\n", r.stdout)
    assert.matches("\n= unchanged deployment/frontend\n", "\n" .. r.stdout)
    assert.matches("\nworkflow deploy of shop in namespace shop: 1 changed, 2 created, 3 unchanged, 0 deleted\n$", r.stdout)
    nothing_stored()
  end)

  it("-o json: one document, each object with its action, identity, task and diff lines", function()
    local r = diff(shop_with(dir, "image.yaml", {NEW_IMAGE}), "-o", "json")
    assert.equal(1, r.code, r.stderr)
    local doc = assert(json.decode(r.stdout))
    assert.is_true(doc.differences)
    assert.same({changed = 1, created = 2, unchanged = 3, deleted = 0, errors = 0, not_compared = 0}, doc.counts)
    local got = {}
    for _, o in ipairs(doc.objects) do got[#got + 1] = o.action .. " " .. o.kind .. " " .. o.task end
    assert.same({"unchanged Deployment services.frontend", "unchanged Service services.frontend",
                 "created Job jobs.migrate", "created Job jobs.scrub",
                 "changed Deployment services.backend", "unchanged Service services.backend"}, got)
    local backend = doc.objects[5]
    assert.equal("apps/v1", backend.apiVersion)
    assert.equal("backend", backend.name)
    assert.equal("shop", backend.namespace)
    assert.equal("--- live", backend.diff[1])
    local found = false
    for i, line in ipairs(backend.diff) do
      if line == "-        image: ghcr.io/example/shop-api:1.4.2" then
        found = backend.diff[i + 1] == "+        image: ghcr.io/example/shop-api:1.5.0"
      end
    end
    assert.is_true(found)
    assert.is_true(doc.objects[3].spec_changed)
    assert.matches("^migrate%-%x+$", doc.objects[3].previous)
    assert.same({"services.frontend", "unchanged"}, {doc.tasks[1].task, doc.tasks[1].state})
  end)

  it("a service added: '+ created' for its Deployment and Service", function()
    local r = diff(shop_with(dir, "added.yaml", NEW_SERVICE))
    assert.equal(1, r.code, r.stderr)
    local objects = object_lines(r.stdout)
    assert.same({"+ created deployment/admin", "+ created service/admin"}, {objects[7], objects[8]})
    for i = 1, 6 do assert.matches("^= unchanged ", objects[i]) end
  end)

  it("a job dropped: listed as left behind; with --prune, '- deleted' and a difference", function()
    local dropped = shop_with(dir, "dropped.yaml", {
      {'- name: scrub\n  from_services: backend\n  command: ["/app/api", "scrub-test-data"]\n  completed_timeout: 300\n', ""},
      {"    - jobs.scrub\n", ""},
    })
    local r = diff(dropped)
    assert.equal(0, r.code, r.stdout .. r.stderr)
    assert.matches("\nleft behind %(no longer in the workflow; deploy %-%-prune would delete them%): job/scrub%-%x+\n$",
      r.stdout)
    r = diff(dropped, "--prune")
    assert.equal(1, r.code, r.stderr)
    local objects = object_lines(r.stdout)
    assert.matches("^%- deleted job/scrub%-%x+$", objects[#objects])
    assert.matches("1 deleted\n$", r.stdout)
    local doc = json.decode(diff(dropped, "-o", "json").stdout)
    assert.equal(1, #doc.left_behind)
    assert.equal("Job", doc.left_behind[1].kind)
    nothing_stored()
  end)

  it("coloured with --color always: the action words, and the hunks as git colours them", function()
    local r = diff(shop_with(dir, "image.yaml", {NEW_IMAGE}), "--color", "always")
    assert.equal(1, r.code, r.stderr)
    assert.truthy(r.stdout:find("\27[33m~ changed deployment/backend\27[0m\n\27[1m--- live\27[0m\n", 1, true))
    assert.truthy(r.stdout:find("\27[31m-        image: ghcr.io/example/shop-api:1.4.2\27[0m\n"
      .. "\27[32m+        image: ghcr.io/example/shop-api:1.5.0\27[0m\n", 1, true))
    -- NO_COLOR does not outweigh --color always; it does turn auto off (stdout is no terminal anyway)
    local plain = proc.run {proc.moonship, "diff", dir .. "/image.yaml", "-w", "deploy", "--kubeconfig", sim.kubeconfig,
                            "-n", "shop", env = {NO_COLOR = "1"}}
    assert.is_nil(plain.stdout:find("\27", 1, true))
  end)

  it("plan --diff marks each task new, changed or unchanged, in the text and the JSON plan", function()
    local path = shop_with(dir, "both.yaml", {NEW_IMAGE, NEW_SERVICE[1], NEW_SERVICE[2]})
    local argv = {proc.moonship, "plan", path, "-w", "deploy", "--diff", "--kubeconfig", sim.kubeconfig, "-n", "shop",
                  "--width", "120"}
    local r = proc.run(argv)
    assert.equal(0, r.code, r.stderr)
    assert.matches("services%.frontend  = unchanged", r.stdout)
    assert.matches("jobs%.migrate  ~ changed", r.stdout)
    assert.matches("services%.backend  ~ changed", r.stdout)
    assert.matches("services%.admin  %+ new", r.stdout)
    assert.matches("against the cluster: %+ new  ~ changed  = unchanged", r.stdout)
    argv[#argv + 1] = "-f"
    argv[#argv + 1] = "json"
    r = proc.run(argv)
    assert.equal(0, r.code, r.stderr)
    local marks = {}
    for _, step in ipairs(json.decode(r.stdout).steps) do
      for _, t in ipairs(step.tasks) do marks[t.id] = t.diff end
    end
    assert.same({["services.frontend"] = "unchanged", ["jobs.migrate"] = "changed", ["jobs.scrub"] = "changed",
                 ["services.backend"] = "changed", ["services.admin"] = "new"}, marks)
    -- without --diff, no marks and no cluster
    r = proc.run {proc.moonship, "plan", path, "-w", "deploy", "-f", "json"}
    assert.equal(0, r.code, r.stderr)
    assert.is_nil(r.stdout:find('"diff"', 1, true))
    nothing_stored()
  end)

  it("a namespace that does not exist: every object '+ created', said on stderr, the namespace not made", function()
    local r = proc.run {proc.moonship, "diff", dir .. "/moonship.yaml", "-w", "deploy", "--kubeconfig", sim.kubeconfig,
                        "-n", "fresh"}
    assert.equal(1, r.code, r.stderr)
    assert.equal("moonship: namespace fresh does not exist yet: every object would be created (and is not checked "
      .. "by the server)\n", r.stderr)
    for _, l in ipairs(object_lines(r.stdout)) do assert.matches("^%+ created ", l) end
    assert.equal(404, (sim:request("GET", "/api/v1/namespaces/fresh")))
  end)

  it("a bad template: exit 2 with file:line:col, before any request", function()
    local bad = proc.write_file(dir .. "/bad.yaml", "app: shop\nservices:\n- name: web\n  image: [nginx\n")
    local r = diff(bad)
    assert.equal(2, r.code)
    assert.equal("", r.stdout)
    assert.matches(dir:gsub("%p", "%%%0") .. "/bad%.yaml:%d+:%d+: ", r.stderr)
  end)

  it("an unknown workflow: exit 2, naming it", function()
    local r = proc.run {proc.moonship, "diff", dir .. "/moonship.yaml", "-w", "deplyo", "--kubeconfig", sim.kubeconfig}
    assert.equal(2, r.code)
    assert.matches("deplyo", r.stderr)
  end)

  it("an unreachable cluster: exit 2, one line naming the server", function()
    local gone = kubesim.start {}
    local url, kc = gone.url, proc.read_file(gone.kubeconfig)
    gone:stop()
    local path = proc.write_file(dir .. "/gone.kubeconfig", kc)
    local r = proc.run {proc.moonship, "diff", dir .. "/moonship.yaml", "-w", "deploy", "--kubeconfig", path, "-n", "shop"}
    assert.equal(2, r.code)
    assert.equal("", r.stdout)
    assert.matches("^moonship: cannot use context '[^']+' %(server " .. url:gsub("%p", "%%%0") .. "%): connection refused\n$",
      r.stderr)
  end)

  it("--sim: an empty kubesim of its own, every object to be created", function()
    local r = proc.run {proc.moonship, "diff", dir .. "/moonship.yaml", "-w", "deploy", "--sim"}
    assert.equal(1, r.code, r.stderr)
    assert.equal(6, #object_lines(r.stdout))
    for _, l in ipairs(object_lines(r.stdout)) do assert.matches("^%+ created ", l) end
  end)
end)

-- Secret values: an env variable marked `secret: true` and a Secret of a raw manifest
-- (stringData), both changed; the diff names them and shows neither the old nor the new value.
describe("moonship diff of secrets", function()
  local OLD_KEY, NEW_KEY = "sk-live-0ld-4f9a2c", "sk-live-n3w-7b1d8e"
  local OLD_PASSWORD, NEW_PASSWORD = "hunter2-0ld-pw", "correct-horse-n3w-pw"
  local APP = [[
app: vault
services:
- name: api
  image: example/api:1
  envs:
  - {key: LOG_LEVEL, value: info}
  - {key: STRIPE_KEY, value: %s, secret: true}
manifests:
- {name: db, path: db.yaml}
workflows:
- name: up
  order_from: [manifests.db, services.api]
]]
  local SECRET = [[
apiVersion: v1
kind: Secret
metadata: {name: db-credentials}
type: Opaque
stringData:
  username: shop
  password: %s
]]
  local sim, dir
  setup(function()
    sim = kubesim.start {time_scale = 0.02}
    dir = proc.tmpdir()
    proc.write_file(dir .. "/moonship.yaml", APP:format(OLD_KEY))
    proc.write_file(dir .. "/db.yaml", SECRET:format(OLD_PASSWORD))
    local code, _, stderr = events.deploy(sim, {dir .. "/moonship.yaml", "-w", "up", "-n", "vault"})
    assert.equal(0, code, stderr)
  end)
  teardown(function()
    sim:stop()
    os.execute("rm -rf " .. proc.quote(dir))
  end)

  local function diff(...)
    local argv = {proc.moonship, "diff", dir .. "/moonship.yaml", "-w", "up", "--kubeconfig", sim.kubeconfig, "-n", "vault"}
    for _, a in ipairs {...} do argv[#argv + 1] = a end
    return proc.run(argv)
  end

  it("unchanged: exit 0, and no value in the output", function()
    local r = diff()
    assert.equal(0, r.code, r.stderr .. r.stdout)
    assert.same({"= unchanged secret/db-credentials", "= unchanged deployment/api"}, object_lines(r.stdout))
  end)

  it("changed: the key and the variable named, no value of either in the text or the JSON", function()
    proc.write_file(dir .. "/moonship.yaml", APP:format(NEW_KEY))
    proc.write_file(dir .. "/db.yaml", SECRET:format(NEW_PASSWORD))
    local text, doc = diff(), diff("-o", "json")
    for _, r in ipairs {text, doc} do
      assert.equal(1, r.code, r.stderr)
      for _, value in ipairs {OLD_KEY, NEW_KEY, OLD_PASSWORD, NEW_PASSWORD} do
        assert.is_nil(r.stdout:find(value, 1, true), value .. " shown:\n" .. r.stdout)
      end
      for _, word in ipairs {"password", "STRIPE_KEY", "*** (before)", "*** (after)"} do
        assert.truthy(r.stdout:find(word, 1, true), word)
      end
    end
    assert.same({"~ changed secret/db-credentials", "~ changed deployment/api"}, object_lines(text.stdout))
    assert.matches('\n%-  password: "%*%*%* %(before%)"\n%+  password: "%*%*%* %(after%)"\n', text.stdout)
    assert.matches('\n         %- name: STRIPE_KEY\n%-          value: "%*%*%* %(before%)"\n'
      .. '%+          value: "%*%*%* %(after%)"\n', text.stdout)
    -- the key whose value did not change is there, masked as well
    assert.matches('\n   username: "%*%*%*"\n', text.stdout)
    assert.is_nil(text.stdout:find("c2hvcA==", 1, true)) -- "shop", base64
  end)
end)
