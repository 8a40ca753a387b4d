-- moonship.run.history: the run record as bytes (gzip of JSON) and as a Secret, its name and
-- labels, writing with revisions and keeping the newest N, which record a rollback goes to,
-- and a record as the workflow of a rollback.
local history = require "moonship.run.history"
local codec = require("moonship.core").codec
local json = require "moonship.json"
local sched = require "moonship.sched"
local fake_client = require "support.fake_client"

-- A record as the engine writes one.
local function record(fields)
  local r = {
    version = 1, run = "20261203-104800-a1b2c3", app = "shop", env = "pr-42", namespace = "shop-pr-42",
    workflow = "deploy", state = "succeeded", template_hash = "7978a18c",
    started_at = "2026-12-03T10:48:00Z", finished_at = "2026-12-03T10:48:31Z",
    steps = json.array {
      {step = "migrate", halt_on_error = true, tasks = json.array {
        {id = "jobs.migrate", kind = "jobs", name = "migrate", state = "succeeded", spec_hash = "11111111",
         objects = json.array {{apiVersion = "batch/v1", kind = "Job", metadata = {name = "migrate-a1b2c3"}}}}}},
      {step = "web", background = true, max_parallel = 2, timeout = 90, tasks = json.array {
        {id = "services.web", kind = "services", name = "web", state = "succeeded", halt_on_error = true,
         timeout = 60, spec_hash = "22222222", objects = json.array {
           {apiVersion = "apps/v1", kind = "Deployment",
            metadata = {name = "web", labels = {app = "web"}, annotations = json.object {}},
            spec = {replicas = 2, template = {spec = {containers = json.array {
              {name = "web", image = "example/web:1", args = json.array {}}}}}}},
           {apiVersion = "v1", kind = "Service", metadata = {name = "web"}}}},
        {id = "lua.notify", kind = "lua", name = "notify", state = "succeeded", objects = json.array {}}}},
    },
  }
  for k, v in pairs(fields or {}) do r[k] = v end
  return r
end

describe("history: the record as bytes", function()
  it("round-trips through gzip and JSON, keeping [] and {} apart and integers as integers", function()
    local r = record()
    local bytes = history.encode(r)
    assert.equal("\31\139", bytes:sub(1, 2))
    local back = assert(history.decode(bytes))
    assert.same(r, back)
    local web = back.steps[2].tasks[1].objects[1]
    assert.equal("[]", json.encode(web.spec.template.spec.containers[1].args))
    assert.equal("{}", json.encode(web.metadata.annotations))
    assert.equal("integer", math.type(web.spec.replicas))
    -- the same record gives the same bytes (sorted keys, gzip without a time)
    assert.equal(bytes, history.encode(record()))
  end)

  it("says what is wrong with bytes that are no record", function()
    local cases = {
      {"not gzip at all", "gunzip: incorrect header check"},
      {history.encode(record()):sub(1, 20), "gunzip: unexpected end of the gzip data"},
      {codec.gzip("{\"run\": "), "the record is not JSON: "},
      {codec.gzip("[1, 2]"), "not a run record (no run id or steps)"},
      {codec.gzip(json.encode(record {version = 2})), "a run record of version 2 (this moonship reads version 1)"},
    }
    for _, c in ipairs(cases) do
      local r, err = history.decode(c[1])
      assert.is_nil(r)
      assert.equal(c[2], err:sub(1, #c[2]))
    end
  end)
end)

describe("history: the record as a Secret", function()
  it("is moonship.run.v1.<app>.<env>.<revision>, typed, labelled, its data the base64 of the gzip", function()
    local r = record {revision = 7, rollback_of = "20261202-090000-ffffff"}
    local s = history.secret(r)
    assert.equal("moonship.run.v1.shop.pr-42.7", s.metadata.name)
    assert.equal("shop-pr-42", s.metadata.namespace)
    assert.equal("moonship.dev/run.v1", s.type)
    assert.is_true(s.immutable)
    assert.same({["moonship.dev/app"] = "shop", ["moonship.dev/env"] = "pr-42", ["moonship.dev/workflow"] = "deploy",
                 ["moonship.dev/state"] = "succeeded", ["moonship.dev/revision"] = "7",
                 ["moonship.dev/run"] = "20261203-104800-a1b2c3", ["app.kubernetes.io/managed-by"] = "moonship"},
      s.metadata.labels)
    assert.same(r, assert(history.from_secret(s)))
    assert.same({revision = 7, run = "20261203-104800-a1b2c3", workflow = "deploy", state = "succeeded",
                 started_at = "2026-12-03T10:48:00Z", finished_at = "2026-12-03T10:48:31Z", template_hash = "7978a18c",
                 rollback_of = "20261202-090000-ffffff", secret = "moonship.run.v1.shop.pr-42.7"}, history.summary(s))
  end)

  it("makes any app and environment a DNS subdomain name of at most 253 characters", function()
    assert.equal("moonship.run.v1.my-app.feature-x.3", history.secret_name("My_App", "Feature/X", 3))
    assert.equal("moonship.run.v1.x.local.1", history.secret_name("__", "local", 1))
    local long = history.secret_name(("a"):rep(80), ("b"):rep(80), 123456)
    assert.is_true(#long <= 253)
    assert.matches("^[a-z0-9][a-z0-9%.%-]*[a-z0-9]$", long)
    -- a workflow name that is no label value is still one on the label, exact in the annotation
    local s = history.secret(record {revision = 1, workflow = "deploy now!"})
    assert.equal("deploy-now", s.metadata.labels["moonship.dev/workflow"])
    assert.equal("deploy now!", history.summary(s).workflow)
  end)

  it("refuses a Secret whose data is missing, not base64, or not a record", function()
    local s = history.secret(record {revision = 1})
    local cases = {
      {{metadata = {name = "x"}, data = {}}, "secret/x: no run.json.gz in its data"},
      {{metadata = {name = "x"}, data = {["run.json.gz"] = "not*base64"}}, "secret/x: its run.json.gz is not base64"},
      {{metadata = {name = "x"}, data = {["run.json.gz"] = codec.base64_encode("plain")}},
       "secret/x: gunzip: incorrect header check"},
    }
    for _, c in ipairs(cases) do
      local r, err = history.from_secret(c[1])
      assert.is_nil(r)
      assert.equal(c[2], err)
    end
    assert.is_table(history.from_secret(s))
  end)
end)

describe("history: writing and keeping records", function()
  it("gives each record the next revision and keeps the newest `keep` of the app and environment", function()
    local client = fake_client.new()
    sched.run(function()
      for i = 1, 4 do
        local summary, prune_err = history.write(client, record {run = "run-" .. i}, {keep = 2})
        assert.equal(i, summary.revision)
        assert.is_nil(prune_err)
      end
      -- another environment's records are its own
      assert.equal(1, history.write(client, record {run = "other", env = "pr-43"}, {keep = 2}).revision)
      local list = assert(history.list(client, {namespace = "shop-pr-42", app = "shop", env = "pr-42"}))
      assert.same({4, 3}, {list[1].revision, list[2].revision})
      assert.same({"run-4", "run-3"}, {list[1].run, list[2].run})
      assert.is_nil(client.secrets["moonship.run.v1.shop.pr-42.2"])
      assert.is_table(client.secrets["moonship.run.v1.shop.pr-43.1"])
      -- keep 0: every record stays
      history.write(client, record {run = "run-5"}, {keep = 0})
      history.write(client, record {run = "run-6"}, {keep = 0})
      assert.equal(4, #history.list(client, {namespace = "shop-pr-42", app = "shop", env = "pr-42"}))
      -- only the workflow's, when asked
      history.write(client, record {run = "run-7", workflow = "setup"}, {keep = 0})
      local setup = history.list(client, {namespace = "shop-pr-42", app = "shop", env = "pr-42", workflow = "setup"})
      assert.same({"run-7"}, {setup[1].run})
      assert.equal(1, #setup)
      assert.equal("run-7", assert(history.fetch(client, "shop-pr-42", setup[1])).run)
    end)
  end)

  it("takes the next revision when another run took this one first", function()
    local client = fake_client.new()
    local create = client.request
    local raced = false
    client.request = function(self, method, path, body)
      if not raced then -- another run creates this very revision between our list and our create
        raced = true
        create(self, method, path, history.secret(record {run = "theirs", revision = body.metadata.labels["moonship.dev/revision"] + 0}))
      end
      return create(self, method, path, body)
    end
    sched.run(function()
      assert.equal(2, history.write(client, record {run = "mine"}).revision)
    end)
  end)
end)

describe("history.target", function()
  local function runs(...)
    local out = {}
    for i, spec in ipairs {...} do
      out[i] = {revision = select("#", ...) - i + 1, run = spec[1], state = spec[2]}
    end
    return out
  end

  it("goes to the newest run before the current one that succeeded", function()
    local list = runs({"R4", "halted"}, {"R3", "failed"}, {"R2", "succeeded"}, {"R1", "succeeded"})
    assert.equal("R2", history.target(list).run)
    -- the current one succeeded: the one before it (a second rollback returns)
    list = runs({"R3", "succeeded"}, {"R2", "succeeded"}, {"R1", "succeeded"})
    assert.equal("R2", history.target(list).run)
  end)

  it("after a halt whose on_error asked for it: the newest successful record of another run", function()
    local list = runs({"R3", "halted"}, {"R2", "succeeded"}, {"R1", "succeeded"})
    assert.equal("R2", history.target(list, {exclude_run = "R3"}).run)
    -- the halted run's record may be missing (it could not be written): still the last good one
    assert.equal("R2", history.target(runs({"R2", "succeeded"}), {exclude_run = "R3"}).run)
  end)

  it("goes to --to, by run id or revision, only when that run succeeded", function()
    local list = runs({"R3", "succeeded"}, {"R3", "halted"}, {"R2", "halted"}, {"R1", "succeeded"})
    assert.equal("R1", history.target(list, {to = "R1"}).run)
    assert.equal(1, history.target(list, {to = "1"}).revision)
    -- a run recorded twice (halted, then its rollback): the part that succeeded
    assert.equal(4, history.target(list, {to = "R3"}).revision)
    assert.same({nil, "run R2 ended halted: a rollback goes back to a run that succeeded"},
      {history.target(list, {to = "R2"})})
    assert.same({nil, "no run R9 is recorded (moonship history lists them)"}, {history.target(list, {to = "R9"})})
  end)

  it("says why when there is nothing to go back to", function()
    assert.same({nil, "no runs are recorded"}, {history.target({})})
    assert.same({nil, "no run before the current one (revision 2, run R2, halted) succeeded"},
      {history.target(runs({"R2", "halted"}, {"R1", "failed"}))})
    assert.same({nil, "no earlier run succeeded"}, {history.target(runs({"R1", "halted"}), {exclude_run = "R2"})})
  end)
end)

describe("history.rollback_workflow", function()
  it("is the record's steps and tasks, as tasks of kind rollback; jobs and tasks without objects skipped", function()
    local r = record()
    local wf = history.rollback_workflow(r)
    assert.equal("deploy", wf.name)
    assert.equal(r, wf.rollback_of)
    assert.same({"rollback.migrate", "rollback.web"}, {wf.steps[1].name, wf.steps[2].name})
    local web = wf.steps[2]
    assert.is_false(web.wait_for_finish)
    assert.same({2, 90}, {web.max_parallel, web.timeout})
    assert.is_true(wf.steps[1].halt_on_error)
    local t = web.tasks[1]
    assert.same({"rollback.services.web", "rollback", "services.web", "services", true, 60},
      {t.id, t.kind, t.name, t.of, t.halt_on_error, t.timeout})
    assert.equal(r.steps[2].tasks[1].objects, t.objects)
    assert.is_nil(t.skip)
    assert.matches("^not re%-run: a rollback restores what runs", wf.steps[1].tasks[1].skip)
    assert.matches("^not re%-run: it applied no objects", web.tasks[2].skip)
  end)
end)
