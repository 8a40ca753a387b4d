-- moonship.run.diff and moonship.output.diff_text on a scripted API server: the objects of a
-- workflow in its order, compared with what a first deploy left; a job's Job with the last one;
-- tasks it cannot compare said so; objects given as deleted; secret values in neither output;
-- the exit codes of kubectl diff.
local diff = require "moonship.run.diff"
local diff_text = require "moonship.output.diff_text"
local json = require "moonship.json"
local manifests = require "moonship.model.manifests"
local sched = require "moonship.sched"
local template = require "moonship.model.template"

local dir = os.tmpname()
os.remove(dir)
os.execute("mkdir -p " .. dir .. "/charts/cache")
local function write(rel, text)
  local f = assert(io.open(dir .. "/" .. rel, "w"))
  f:write(text)
  f:close()
  return dir .. "/" .. rel
end
write("charts/cache/Chart.yaml", "apiVersion: v2\nname: cache\nversion: 0.1.0\n")

local SECRET_VALUE = "s3cr3t-payment-token-value"

local function template_text(image, token)
  return ([[
app: shop
services:
- name: web
  image: %s
  ports: [{type: container_port, port: 80}]
  envs:
  - {key: MODE, value: fast}
  - {key: PAYMENT_TOKEN, value: %s, secret: true}
jobs:
- {name: migrate, image: %s, command: [migrate]}
charts:
- {name: cache, directory: charts/cache}
workflows:
- name: up
  parallelize:
  - step: first
    tasks: [jobs.migrate, charts.cache]
  - step: second
    tasks: [services.web, lua.notify]
]]):format(image, token, image)
end

local function load(image, token)
  local path = write("app.yaml", template_text(image, token or SECRET_VALUE))
  local model, problems = template.load(path, {namespace = "shop", custom_kinds = {lua = true}})
  assert(model, problems and problems[1] and problems[1].text)
  return model, assert(template.workflow(model, "up"))
end

-- A copy of a decoded value with its JSON marks.
local copy = manifests.deep_copy

-- An API server in a table: objects by kind/name; apply answers as a server would, with its
-- defaults and server fields, and stores unless it is a dry run.
local function server()
  local s = {objects = {}, seq = 0, refuse = {}, requests = {}}
  function s:describe() return "the scripted server" end
  function s:get(_, kind, name)
    self.requests[#self.requests + 1] = "get " .. kind .. "/" .. name
    local o = self.objects[kind .. "/" .. name]
    if o then return copy(o) end
    return nil, "GET " .. kind .. "/" .. name .. ": NotFound (404)", "not_found"
  end
  function s:list(_, kind, opts)
    local want = {}
    for pair in opts.label_selector:gmatch("[^,]+") do
      local k, v = pair:match("^(.-)=(.*)$")
      want[k] = v
    end
    local items = {}
    for _, o in pairs(self.objects) do
      local ok = o.kind == kind
      for k, v in pairs(want) do ok = ok and (o.metadata.labels or {})[k] == v end
      if ok then items[#items + 1] = copy(o) end
    end
    return {items = items, metadata = {}}
  end
  function s:apply(obj, opts)
    local key = obj.kind .. "/" .. obj.metadata.name
    self.requests[#self.requests + 1] = (opts and opts.dry_run and "dry-run " or "apply ") .. key
    if self.refuse[key] then return nil, "apply " .. key:lower() .. ": " .. self.refuse[key], "invalid" end
    local live = self.objects[key]
    local o = json.decode(json.encode(obj))
    self.seq = self.seq + 1
    o.metadata.uid = live and live.metadata.uid or ("uid-" .. self.seq)
    o.metadata.resourceVersion = tostring(self.seq)
    o.metadata.creationTimestamp = live and live.metadata.creationTimestamp or string.format("2024-05-01T10:00:%02dZ", self.seq)
    o.metadata.managedFields = json.array {{manager = "moonship", operation = "Apply", time = "now"}}
    if o.kind == "Deployment" then
      o.spec.revisionHistoryLimit = 10 -- a default the server adds
      o.status = {replicas = 1}
    elseif o.kind == "Job" then
      o.spec.selector = {matchLabels = {["batch.kubernetes.io/controller-uid"] = o.metadata.uid}}
      o.spec.template.metadata.labels["batch.kubernetes.io/job-name"] = o.metadata.name
      o.status = {succeeded = 1}
    end
    if not (opts and opts.dry_run) then self.objects[key] = o end
    return copy(o), live == nil
  end
  return s
end

-- Deploys the workflow's objects as a run would: applied for real, under run id run_id.
-- What a deploy leaves: the workflow's objects, labelled members of the app's ApplySet.
local function deploy(s, model, wf, run_id)
  local set = diff.applyset(s, model)
  for _, obj in ipairs(manifests.for_workflow(model, wf, {run_id = run_id, namespace = "shop"})) do
    assert(s:apply(set:label(obj, wf.name)))
  end
end

local function compare(s, model, wf, opts)
  return sched.run(function() return diff.compare(s, model, wf, nil, opts) end)
end

local function actions(result)
  local out = {}
  for _, e in ipairs(result.objects) do out[#out + 1] = e.action .. " " .. e.kind:lower() .. "/" .. e.name end
  return out
end

local function states(result)
  local out = {}
  for _, te in ipairs(result.tasks) do out[te.task] = te.state end
  return out
end

describe("moonship diff", function()
  teardown(function() os.execute("rm -rf " .. dir) end)

  it("against an empty namespace: every object created, every task new, exit 1", function()
    local model, wf = load("shop/web:1")
    local result = compare(server(), model, wf, {run_id = "run2"})
    assert.same({"created job/migrate-run2", "created deployment/web", "created service/web"}, actions(result))
    assert.same({["jobs.migrate"] = "new", ["charts.cache"] = "not_compared", ["services.web"] = "new",
                 ["lua.notify"] = "not_compared"}, states(result))
    assert.equal(1, diff.exit_code(result))
    local text = diff_text.text(result)
    assert.matches("^%+ created job/migrate%-run2 %(first run of jobs%.migrate: no earlier Job of it in the namespace%)\n", text)
  end)

  it("after a deploy of the same template: all unchanged (the run id and server fields aside), exit 0", function()
    local s = server()
    local model, wf = load("shop/web:1")
    deploy(s, model, wf, "run1")
    local result = compare(s, model, wf, {run_id = "run2"})
    assert.same({"unchanged job/migrate-run2", "unchanged deployment/web", "unchanged service/web"}, actions(result))
    assert.equal("migrate-run1", result.objects[1].previous)
    assert.is_false(result.objects[1].spec_changed)
    assert.equal(0, diff.exit_code(result))
    assert.is_false(result.differences)
    -- in the engine's order: step by step, each task's objects; the tasks it cannot compare in their place
    assert.equal(table.concat({
      "= unchanged job/migrate-run2 (reruns job/migrate-run1 with the same spec)",
      "? not compared charts.cache: a helm chart (helm upgrade --install): moonship diff does not render charts",
      "= unchanged deployment/web",
      "= unchanged service/web",
      "? not compared lua.notify: a custom task kind (the hooks file's tasks.lua): what it changes is not known",
      "workflow up of shop in namespace shop: 0 changed, 0 created, 3 unchanged, 0 deleted, 2 not compared",
    }, "\n") .. "\n", diff_text.text(result))
    -- nothing but GETs, lists and dry runs
    for _, r in ipairs(s.requests) do assert.is_nil(r:match("^apply .*run2"), r) end
  end)

  it("a changed image: the Deployment changed with the image line in its hunk, the Job created anew", function()
    local s = server()
    local model, wf = load("shop/web:1")
    deploy(s, model, wf, "run1")
    model, wf = load("shop/web:2")
    local result = compare(s, model, wf, {run_id = "run2"})
    assert.same({"created job/migrate-run2", "changed deployment/web", "unchanged service/web"}, actions(result))
    assert.same({["jobs.migrate"] = "changed", ["charts.cache"] = "not_compared", ["services.web"] = "changed",
                 ["lua.notify"] = "not_compared"}, states(result))
    assert.is_true(result.objects[1].spec_changed)
    assert.equal(1, diff.exit_code(result))
    local text = diff_text.text(result)
    assert.matches("^%+ created job/migrate%-run2 %(reruns job/migrate%-run1 with a changed spec%)\n%-%-%- live\n", text)
    assert.matches("\n~ changed deployment/web\n%-%-%- live\n%+%+%+ moonship\n@@ [^\n]+ @@\n", text)
    assert.matches("\n%-        image: shop/web:1\n%+        image: shop/web:2\n", text)
  end)

  it("a secret env value changed: the variable named, neither value in the text or the JSON", function()
    local s = server()
    local model, wf = load("shop/web:1")
    deploy(s, model, wf, "run1")
    model, wf = load("shop/web:1", "another-" .. SECRET_VALUE)
    local result = compare(s, model, wf, {run_id = "run2"})
    assert.same({"unchanged job/migrate-run2", "changed deployment/web", "unchanged service/web"}, actions(result))
    local text, doc = diff_text.text(result), diff_text.json(result)
    for _, out in ipairs {text, doc} do
      assert.is_nil(out:find(SECRET_VALUE, 1, true))
      assert.truthy(out:find("PAYMENT_TOKEN", 1, true))
      assert.truthy(out:find("*** (before)", 1, true))
      assert.truthy(out:find("*** (after)", 1, true))
    end
  end)

  it("objects given as deleted: '- deleted' after the rest, counted, exit 1; in the JSON without a task", function()
    local s = server()
    local model, wf = load("shop/web:1")
    deploy(s, model, wf, "run1")
    local gone = {apiVersion = "apps/v1", kind = "Deployment", metadata = {name = "old-api", namespace = "shop",
                  uid = "u-old", resourceVersion = "4"}, spec = {replicas = 1}}
    local result = compare(s, model, wf, {run_id = "run2", deleted = {gone}})
    assert.equal("deleted deployment/old-api", actions(result)[4])
    assert.equal(1, result.counts.deleted)
    assert.equal(1, diff.exit_code(result))
    local text = diff_text.text(result)
    assert.matches("\n%- deleted deployment/old%-api\nworkflow up of shop in namespace shop: 0 changed, 0 created, "
      .. "3 unchanged, 1 deleted, 2 not compared\n$", text)
    local doc = json.decode(diff_text.json(result))
    local last = doc.objects[#doc.objects]
    assert.same({action = "deleted", apiVersion = "apps/v1", kind = "Deployment", name = "old-api", namespace = "shop",
                 diff = {}}, last)
    assert.is_true(doc.differences)
    assert.equal(1, doc.counts.deleted)
  end)

  it("deleted as a function: given the workflow's objects, in order; its list comes out '- deleted'", function()
    local s = server()
    local model, wf = load("shop/web:1")
    deploy(s, model, wf, "run1")
    local seen
    local result = compare(s, model, wf, {run_id = "run2", deleted = function(objects)
      seen = {}
      for i, o in ipairs(objects) do seen[i] = o.kind .. "/" .. o.metadata.name end
      return {{apiVersion = "v1", kind = "Service", metadata = {name = "old-api", namespace = "shop"}}}
    end})
    assert.same({"Job/migrate-run2", "Deployment/web", "Service/web"}, seen)
    assert.equal("deleted service/old-api", actions(result)[4])
    assert.equal(1, diff.exit_code(result))
  end)

  it("an object the server refuses: '! error' naming it, the others compared, exit 2", function()
    local s = server()
    local model, wf = load("shop/web:1")
    deploy(s, model, wf, "run1")
    s.refuse["Service/web"] = "Invalid (422): spec.ports[0].port: Invalid value"
    local result = compare(s, model, wf, {run_id = "run2"})
    assert.same({"unchanged job/migrate-run2", "unchanged deployment/web", "error service/web"}, actions(result))
    assert.equal("error", states(result)["services.web"])
    assert.equal(2, diff.exit_code(result))
    assert.matches("\n! error service/web: apply service/web: Invalid %(422%): spec%.ports%[0%]%.port: Invalid value\n",
      diff_text.text(result))
  end)

  it("the JSON document: every object with its action, identity, task and diff lines; the tasks' states", function()
    local s = server()
    local model, wf = load("shop/web:1")
    deploy(s, model, wf, "run1")
    model, wf = load("shop/web:2")
    local doc = json.decode(diff_text.json(compare(s, model, wf, {run_id = "run2"})))
    assert.same({"app", "counts", "differences", "left_behind", "namespace", "objects", "server", "tasks", "workflow"},
      (function() local k = {} for key in pairs(doc) do k[#k + 1] = key end table.sort(k) return k end)())
    assert.equal("shop", doc.app)
    assert.equal("up", doc.workflow)
    assert.same({created = 1, changed = 1, unchanged = 1, deleted = 0, errors = 0, not_compared = 2}, doc.counts)
    local web = doc.objects[2]
    assert.equal("changed", web.action)
    assert.equal("apps/v1", web.apiVersion)
    assert.equal("Deployment", web.kind)
    assert.equal("web", web.name)
    assert.equal("shop", web.namespace)
    assert.equal("services.web", web.task)
    assert.equal("--- live", web.diff[1])
    local job = doc.objects[1]
    assert.equal("migrate-run1", job.previous)
    assert.is_true(job.spec_changed)
    assert.same({task = "charts.cache", state = "not_compared",
                 reason = "a helm chart (helm upgrade --install): moonship diff does not render charts"}, doc.tasks[2])
  end)

  it("colours like git: the action words, ---/+++ bold, @@ cyan, - red, + green; context plain", function()
    local s = server()
    local model, wf = load("shop/web:1")
    deploy(s, model, wf, "run1")
    model, wf = load("shop/web:2")
    local text = diff_text.text(compare(s, model, wf, {run_id = "run2"}), {color = true})
    assert.truthy(text:find("\27[33m~ changed deployment/web\27[0m\n\27[1m--- live\27[0m\n\27[1m+++ moonship\27[0m\n\27[36m@@", 1, true))
    assert.truthy(text:find("\27[31m-        image: shop/web:1\27[0m\n\27[32m+        image: shop/web:2\27[0m\n", 1, true))
    assert.truthy(text:find("\27[2m= unchanged service/web\27[0m", 1, true))
    assert.is_nil(diff_text.text(compare(s, model, wf, {run_id = "run2"})):find("\27", 1, true))
  end)
end)
