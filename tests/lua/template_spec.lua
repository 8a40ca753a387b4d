-- moonship.template: the real ReleaseHub templates of shared/fixtures load into the model the
-- engine consumes, and our extensions (hooks, manifests, task options) are read as documented.
local template = require "moonship.template"

local SHARED = os.getenv("MOONSHIP_SHARED_DIR") or "../shared"
local RH = SHARED .. "/fixtures/releasehub/"

local function load_ok(path, opts)
  local model, warnings = template.load(path, opts)
  if not model then
    local lines = {}
    for _, e in ipairs(warnings) do lines[#lines + 1] = e.text end
    error("template rejected:\n" .. table.concat(lines, "\n"))
  end
  return model, warnings
end

local function fixture(name, opts)
  return load_ok(RH .. name .. "/application_template.yaml", opts)
end

-- {"services.a", ...} per step, for compact assertions on workflows.
local function shape(wf)
  local out = {}
  for i, step in ipairs(wf.steps) do
    local ids = {}
    for j, t in ipairs(step.tasks) do ids[j] = t.id end
    out[i] = {step.name, ids}
  end
  return out
end

local function env_of(unit)
  local out = {}
  for _, e in ipairs(unit.env) do out[e.name] = e.value end
  return out
end

local function names(list)
  local out = {}
  for i, u in ipairs(list) do out[i] = u.name end
  return out
end

local tmp_root = os.tmpname()
os.remove(tmp_root)
os.execute("mkdir -p " .. tmp_root)
local function write(rel, text)
  local path = tmp_root .. "/" .. rel
  os.execute("mkdir -p " .. (path:match("^(.*)/[^/]*$")))
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
  return path
end

describe("ReleaseHub fixtures", function()
  local dirs = {}
  local p = io.popen("ls " .. RH)
  for d in p:lines() do
    if d ~= "SOURCES.tsv" then dirs[#dirs + 1] = d end
  end
  p:close()

  it("all load with no error, and every workflow has steps or only skipped tasks", function()
    assert.is_true(#dirs >= 8)
    for _, d in ipairs(dirs) do
      local model = fixture(d, {env = "pr-7"})
      assert.is_true(#model.services > 0, d)
      assert.is_table(model.workflow_by_name.setup, d)
      assert.is_true(#model.workflow_by_name.setup.steps > 0, d)
    end
  end)

  it("amundsen: resources, env file defaults, from_services, skipped charts", function()
    local model, warnings = fixture("amundsen-io__amundsen", {env = "pr-7"})
    assert.equal("amemsenennn", model.app)
    assert.equal("amemsenennn-pr-7", model.namespace)
    assert.equal("pr-7", model.env_id)
    assert.equal("amemsenennn.releaseapp.gethandsup.com", model.domain)
    assert.same({"postgres", "redis", "backend"}, names(model.services))
    local pg = model.by_name.services.postgres
    assert.equal("postgres:11", pg.image)
    assert.same({limits = "1000m", requests = "100m"}, pg.cpu)
    assert.same({limits = "1Gi", requests = "100Mi"}, pg.memory)
    assert.equal(1, pg.replicas)
    assert.same({{name = "POSTGRES_HOST_AUTH_METHOD", value = "trust"}, {name = "TEST_ENV", value = "true"}}, pg.env)
    local migrate = model.by_name.jobs.migrate
    assert.equal("dustyspace/amundsen/nginx", migrate.image)
    assert.same({"sh", "-c", "sleep 5"}, migrate.command)
    assert.is_true(migrate.halt_on_error)
    assert.same({
      {"data", {"services.postgres", "services.redis"}},
      {"migrate", {"jobs.migrate"}},
    }, shape(model.workflow_by_name.setup))
    -- The job's halt_on_error makes its task halt.
    assert.is_true(model.workflow_by_name.setup.steps[2].tasks[1].halt_on_error)
    assert.is_false(model.workflow_by_name.setup.steps[1].tasks[1].halt_on_error)
    assert.same({}, shape(model.workflow_by_name.patch))
    local texts = {}
    for _, w in ipairs(warnings) do texts[#texts + 1] = w.message end
    assert.is_truthy(table.concat(texts, "\n"):find("task 'charts.amundsen' skipped", 1, true))
  end)

  it("genai-stack: parameters, probes, node selector, volumes, static service skipped", function()
    local model = fixture("awesome-release__genai-stack", {env = "pr-7"})
    assert.equal("awesome-release--genai-stack", model.app)
    assert.same({"ollama", "api", "bot", "database", "loader", "pdf-bot", "pull-model"}, names(model.services))
    assert.is_nil(model.by_name.services["front-end"])
    local ollama = model.by_name.services.ollama
    assert.same({"/bin/ollama"}, ollama.command)
    assert.same({"serve"}, ollama.args)
    assert.same({{name = "LLM", value = "llama2"}, {name = "EMBEDDING_MODEL", value = "sentence_transformer"}}, ollama.env)
    assert.same({limits = "128", requests = "12"}, ollama.cpu)
    assert.same({limits = "64Gi", requests = "16Gi"}, ollama.memory)
    assert.same({{type = "node_port", port = 11434, target_port = 11434, loadbalancer = false}}, ollama.ports)
    assert.same({["nvidia.com/gpu"] = "true", ["beta.kubernetes.io/instance-type"] = "g5.12xlarge"}, ollama.node_selector)
    assert.equal(2, #ollama.volumes)
    assert.equal("shmem", ollama.volumes[1].type)
    assert.equal("16Gi", ollama.volumes[1].size)
    assert.equal("/dev/shm", ollama.volumes[1].mount_path)
    assert.equal("claim", ollama.volumes[2].type)
    assert.equal("models", ollama.volumes[2].claim)
    local api = model.by_name.services.api
    assert.same({http_get = {path = "/", port = 8504}, period_seconds = 5, timeout_seconds = 3,
      failure_threshold = 5, initial_delay_seconds = 0}, api.readiness_probe)
    local env = env_of(api)
    assert.equal("neo4j://database:7687", env.NEO4J_URI)
    assert.equal("llama2", env.LLM)
    local job = model.by_name.jobs["pull-model"]
    assert.equal("awesome-release/genai-stack/pull-model", job.image)
    assert.same({"bb", "-f", "pull_model.clj"}, job.command)
    assert.equal("http://ollama:11434", env_of(job).OLLAMA_BASE_URL)
    assert.equal("llama2", env_of(job).LLM)
    assert.same({
      {"services-0", {"services.database", "services.ollama"}},
      {"services-1", {"jobs.pull-model"}},
      {"services-2", {"services.api", "services.bot", "services.loader", "services.pdf-bot"}},
    }, shape(model.workflow_by_name.setup))
    assert.same({{"remove-environment", {"release.remove_environment"}}}, shape(model.workflow_by_name.teardown))
  end)

  it("opentelemetry-demo: 25 services, uppercase names lowered, per-service resources", function()
    local model, warnings = fixture("awesome-release__opentelemetry-demo")
    assert.equal(25, #model.services)
    assert.equal(0, #model.jobs)
    assert.equal("default", model.namespace)
    assert.equal("frontendtests", model.by_name.services.frontendTests.k8s_name)
    local acct = model.by_name.services.accountingservice
    assert.same({limits = "20Mi", requests = "10Mi"}, acct.memory)
    assert.same({limits = "1000m", requests = "100m"}, acct.cpu)
    assert.same({"otelcol", "kafkaservice"}, acct.depends_on)
    assert.same({limits = "300Mi", requests = "100Mi"}, model.by_name.services.adservice.memory)
    local pg = model.by_name.services.ffspostgres
    assert.same({exec = {command = {"pg_isready", "-d", "ffs", "-U", "ffs"}}, period_seconds = 10,
      timeout_seconds = 5, failure_threshold = 5, initial_delay_seconds = 0}, pg.readiness_probe)
    local setup = model.workflow_by_name.setup
    assert.equal(7, #setup.steps)
    assert.same({"services-6", {"services.frontendproxy"}}, shape(setup)[7])
    assert.equal(5, #model.workflow_by_name.patch.steps)
    -- Every step waits and nothing halts in this template.
    for _, step in ipairs(setup.steps) do
      assert.is_true(step.wait_for_finish)
      assert.is_false(step.halt_on_error)
    end
    assert.is_true(#warnings > 0)
  end)

  it("docker-create-react-app: services.all and the app key", function()
    local model = fixture("elanderholm__docker-create-react-app")
    assert.equal("docker-create-react-app", model.app)
    assert.same({{"services.all", {"services.app"}}}, shape(model.workflow_by_name.setup))
    assert.same({{"services.app", {"services.app"}}}, shape(model.workflow_by_name.patch))
    assert.same({"npm", "start"}, model.by_name.services.app.args)
    assert.same({{type = "node_port", port = 4000, target_port = 4000, loadbalancer = false}}, model.by_name.services.app.ports)
  end)

  it("example-voting-app: the app name from the directory; target ports", function()
    local model = fixture("releasehub-com__example-voting-app", {namespace = "votes"})
    assert.equal("releasehub-com--example-voting-app", model.app)
    assert.equal("votes", model.namespace)
    assert.same({{type = "node_port", port = 5001, target_port = 80, loadbalancer = false},
      {type = "node_port", port = 5858, target_port = 5858, loadbalancer = false}}, model.by_name.services.result.ports)
    assert.same({{name = "POSTGRES_HOST_AUTH_METHOD", value = "trust"}}, model.by_name.services.db.env)
    assert.same({{"services-0", {"services.db", "services.redis", "services.result", "services.vote", "services.worker"}}},
      shape(model.workflow_by_name.setup))
  end)

  it("terraform: order_from steps, completed_timeout, mapping to Release variables", function()
    local model = fixture("releasehub-samples__bring-your-own-terraform-example", {env = "pr-7"})
    assert.same({
      {"jobs.terraform-destroy", {"jobs.terraform-destroy"}},
      {"release.remove_environment", {"release.remove_environment"}},
    }, shape(model.workflow_by_name.teardown))
    local apply = model.by_name.jobs["terraform-apply"]
    assert.equal(600, apply.completed_timeout)
    assert.is_false(apply.halt_on_error)
    assert.is_nil(apply.backoff_limit)
    assert.equal("releasehub-samples/release-with-terraform/terraform", apply.image)
    assert.same({"./bin/apply.sh"}, apply.command)
    local env = env_of(apply)
    assert.equal("true", env.IS_RELEASE_ENVIRONMENT)
    assert.equal("us-west-2", env.TF_VAR_AWS_DEFAULT_REGION)
    assert.equal("pr-7", env.TF_VAR_RELEASE_ENV_ID)
    assert.equal(model.app, env.TF_VAR_RELEASE_APP_NAME)
    assert.is_nil(env.TF_VAR_RELEASE_COMMIT_SHA)
    local step = model.workflow_by_name.setup.steps[1]
    assert.equal("deploy", step.name)
    assert.is_true(step.wait_for_finish)
    assert.is_nil(step.timeout)
    assert.is_nil(step.max_parallel)
  end)

  it("mssql: services.all expands to the services not named elsewhere; mapping defaults", function()
    local model = fixture("releasehub-samples__mssql-stored-procedures-automated-testing-with-releasehub")
    assert.same({
      {"services.all", {"services.sql-runner", "services.database"}},
      {"jobs.run-sql-tests", {"jobs.run-sql-tests"}},
    }, shape(model.workflow_by_name.setup))
    local env = env_of(model.by_name.services.database)
    assert.equal("Pass@word", env.SA_PASSWORD)
    assert.equal("database", env.DB_HOST)
    assert.equal("sa", env.DB_USER)
    assert.same({limits = "2Gi", requests = "2Gi"}, model.by_name.services.database.memory)
  end)

  it("posthog: numbers in env values become text; $RELEASE_ENV_ID mapping", function()
    local model = fixture("releasehub-samples__posthog", {env = "pr-7"})
    local kafka = env_of(model.by_name.services.kafka)
    assert.equal("1001", kafka.KAFKA_BROKER_ID)
    assert.equal("false", kafka.DEBUG)
    assert.equal("pr-7", kafka.SECRET_KEY)
    assert.is_nil(kafka.SITE_URL)
    local migrations = model.by_name.jobs.migrations
    assert.equal("releasehub-samples/posthog/web", migrations.image)
    assert.equal("true", env_of(migrations).SECURE_COOKIES)
    assert.same({
      {"prerequisites", {"services.db", "services.redis", "services.zookeeper", "services.clickhouse"}},
      {"middleware", {"jobs.migrations", "services.kafka", "services.maildev", "services.object-storage"}},
      {"services-0", {"services.plugins", "services.web", "services.worker"}},
    }, shape(model.workflow_by_name.setup))
  end)
end)

describe("template.find", function()
  it("prefers .release/application_template.yaml, then moonship.yaml", function()
    write("find1/moonship.yaml", "app: x\n")
    assert.equal(tmp_root .. "/find1/moonship.yaml", template.find(tmp_root .. "/find1"))
    write("find1/.release/application_template.yaml", "app: x\n")
    assert.equal(tmp_root .. "/find1/.release/application_template.yaml", template.find(tmp_root .. "/find1"))
    local path, err = template.find(tmp_root .. "/nothing")
    assert.is_nil(path)
    assert.matches("no template in", err)
  end)
end)

describe("the seed example", function()
  it("examples/shop validates into the documented workflow", function()
    local model, warnings = load_ok("examples/shop/moonship.yaml", {env = "pr-42"})
    assert.same({}, warnings)
    assert.equal("shop", model.app)
    assert.equal("shop-pr-42", model.namespace)
    local wf = assert(template.workflow(model, "deploy"))
    assert.same({
      {"frontend", {"services.frontend"}},
      {"migrate", {"jobs.migrate", "jobs.scrub"}},
      {"backend", {"services.backend"}},
    }, shape(wf))
    assert.is_false(wf.steps[1].wait_for_finish)
    assert.is_true(wf.steps[2].halt_on_error)
    assert.is_true(wf.steps[2].tasks[1].halt_on_error)
    assert.is_true(wf.steps[2].tasks[2].halt_on_error)
    assert.is_false(wf.steps[3].tasks[1].halt_on_error)
    assert.equal("https://frontend-pr-42.shop.example.com", env_of(model.by_name.services.frontend).PUBLIC_URL)
  end)
end)

describe("extensions and options", function()
  it("reads task entries, step options and job options", function()
    local path = write("ext1/app.yaml", [[
app: shop
services:
- name: web
  image: nginx
  env:
    B: two
    A: 1
  replicas: 3
jobs:
- name: migrate
  image: api
  halt_on_error: true
  backoff_limit: 2
- name: seed
  image: api
workflows:
- name: deploy
  parallelize:
  - step: prepare
    timeout: 5m
    max_parallel: 2
    tasks:
    - name: jobs.migrate
      halt_on_error: false
      timeout: 90s
    - jobs.seed
  - step: serve
    halt_on_error: true
    wait_for_finish: false
    timeout: 120
    tasks:
    - services.web
]])
    local model = load_ok(path)
    local web = model.by_name.services.web
    assert.same({{name = "B", value = "two"}, {name = "A", value = "1"}}, web.env)
    assert.equal(3, web.replicas)
    assert.is_nil(web.cpu)
    assert.equal(2, model.by_name.jobs.migrate.backoff_limit)
    local wf = model.workflow_by_name.deploy
    local prepare, serve = wf.steps[1], wf.steps[2]
    assert.equal(300, prepare.timeout)
    assert.equal(2, prepare.max_parallel)
    -- An entry's halt_on_error wins over the job's.
    assert.same({id = "jobs.migrate", kind = "jobs", name = "migrate", halt_on_error = false, timeout = 90,
      pos = {file = path, line = 23, col = 7}}, prepare.tasks[1])
    assert.is_false(prepare.tasks[2].halt_on_error)
    assert.is_nil(prepare.tasks[2].timeout)
    assert.equal(120, serve.timeout)
    assert.is_false(serve.wait_for_finish)
    assert.is_true(serve.tasks[1].halt_on_error)
    assert.same({file = path, line = 17, col = 3}, wf.pos)
    assert.same({file = path, line = 19, col = 5}, prepare.pos)
  end)

  it("reads raw manifests relative to the template", function()
    write("ext2/k8s/config.yaml", [[
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data:
  mode: fast
---
apiVersion: v1
kind: Secret
metadata:
  name: token
stringData:
  token: abc
]])
    local path = write("ext2/moonship.yaml", [[
app: shop
services:
- name: web
  image: nginx
manifests:
- name: config
  path: k8s/config.yaml
workflows:
- name: deploy
  order_from:
  - manifests.config
  - services.web
]])
    local model = load_ok(path)
    local m = model.by_name.manifests.config
    assert.equal(tmp_root .. "/ext2/k8s/config.yaml", m.path)
    assert.equal(2, #m.objects)
    assert.equal("ConfigMap", m.objects[1].kind)
    assert.equal("token", m.objects[2].metadata.name)
    assert.same({{"manifests.config", {"manifests.config"}}, {"services.web", {"services.web"}}},
      shape(model.workflow_by_name.deploy))
  end)

  it("reports errors inside a raw manifest at their position in that file", function()
    write("ext3/k8s/bad.yaml", "apiVersion: v1\nmetadata:\n  name: x\n")
    local path = write("ext3/moonship.yaml", "app: shop\nmanifests:\n- name: bad\n  path: k8s/bad.yaml\n")
    local model, errors = template.load(path)
    assert.is_nil(model)
    assert.equal(tmp_root .. "/ext3/k8s/bad.yaml:1:1: object has no 'kind' string", errors[1].text)
  end)

  it("accepts custom task kinds the caller's hooks define", function()
    local path = write("ext4/app.yaml", [[
app: shop
charts:
- name: redis
  directory: charts/redis
workflows:
- name: deploy
  order_from:
  - lua.notify
  - charts.redis
]])
    local model, errors = template.load(path)
    assert.is_nil(model)
    assert.equal(path .. ":8:5: no task handler for kind 'lua' (define tasks.lua in the hooks file)", errors[1].text)
    model = load_ok(path, {custom_kinds = {lua = true, charts = true}})
    local steps = model.workflow_by_name.deploy.steps
    assert.same({id = "lua.notify", kind = "lua", name = "notify", halt_on_error = false,
      pos = {file = path, line = 8, col = 5}}, steps[1].tasks[1])
    -- A custom task gets its entry of the template's section of that kind as spec.
    assert.equal("charts/redis", steps[2].tasks[1].spec.directory)
  end)

  it("finds custom task kinds in the template's hooks file", function()
    write("ext5/hooks.lua", "return {tasks = {lua = function() return true end}}\n")
    local path = write("ext5/app.yaml", [[
app: shop
hooks: hooks.lua
workflows:
- name: deploy
  order_from:
  - lua.notify
]])
    local model = load_ok(path)
    assert.equal(tmp_root .. "/ext5/hooks.lua", model.hooks_path)
    assert.equal("lua.notify", model.workflow_by_name.deploy.steps[1].tasks[1].id)
  end)

  it("uses hooks.lua beside the template when nothing names a hooks file", function()
    write("ext9/hooks.lua", "return {tasks = {notify = function() return true end}}\n")
    local path = write("ext9/app.yaml", "app: shop\nworkflows:\n- name: deploy\n  order_from:\n  - notify.slack\n")
    local model = load_ok(path)
    assert.equal(tmp_root .. "/ext9/hooks.lua", model.hooks_path)
    assert.equal("notify.slack", model.workflow_by_name.deploy.steps[1].tasks[1].id)
  end)

  it("reports a hooks file that does not load at the hooks key", function()
    write("ext10/broken.lua", "return {tasks = \n")
    local path = write("ext10/app.yaml", "app: shop\nhooks: broken.lua\n")
    local model, errors = template.load(path)
    assert.is_nil(model)
    assert.matches("^" .. path:gsub("%p", "%%%0") .. ":2:1: hooks file: ", errors[1].text)
  end)

  it("substitutes ${app}, ${namespace}, ${env_id}, ${domain} and leaves other ${...} alone", function()
    local path = write("ext6/app.yaml", [[
app: shop
domain: example.com
services:
- name: web
  image: registry/${app}:${env_id}
  args: ["--ns=${namespace}", "--host=web-${env_id}.${domain}", "${HOME}"]
workflows:
- name: deploy
  order_from: [services.web]
]])
    local model = load_ok(path, {env = "pr-1", namespace = "team"})
    local web = model.by_name.services.web
    assert.equal("registry/shop:pr-1", web.image)
    assert.same({"--ns=team", "--host=web-pr-1.example.com", "${HOME}"}, web.args)
  end)

  it("reads the environment variables file beside the template, with its own positions", function()
    write("ext7/environment_variables.yaml", [[
defaults:
- key: MODE
  value: base
services:
  web:
  - key: MODE
    value: web
  wbe:
  - key: X
    value: y
mapping:
  MY_ENV: RELEASE_ENV_ID
]])
    local path = write("ext7/app.yaml", [[
app: shop
services:
- name: web
  image: nginx
  envs:
  - key: EXTRA
    value: ${env_id}
workflows:
- name: deploy
  order_from: [services.web]
]])
    local model, warnings = load_ok(path, {env = "pr-9"})
    assert.same({{name = "MODE", value = "web"}, {name = "EXTRA", value = "pr-9"}, {name = "MY_ENV", value = "pr-9"}},
      model.by_name.services.web.env)
    assert.equal(tmp_root .. "/ext7/environment_variables.yaml:8:3: environment variables for unknown service 'wbe' (did you mean 'web'?)",
      warnings[1].text)
  end)

  it("warns when a service depends on one deployed in a later step", function()
    local path = write("ext8/app.yaml", [[
app: shop
services:
- name: api
  image: api
- name: web
  image: nginx
  depends_on: [api]
workflows:
- name: deploy
  order_from:
  - services.web
  - services.api
- name: fine
  order_from:
  - services.api
  - services.web
]])
    local _, warnings = load_ok(path)
    assert.equal(1, #warnings)
    assert.equal(path .. ":11:5: services.web depends on 'api', which deploys in a later step of workflow 'deploy' ('services.api'): it may crash-loop until step 2",
      warnings[1].text)
  end)
end)

describe("template.workflow", function()
  it("finds a workflow or suggests one", function()
    local model = load_ok("examples/shop/moonship.yaml")
    assert.equal("deploy", template.workflow(model, "deploy").name)
    local wf, err = template.workflow(model, "deplyo")
    assert.is_nil(wf)
    assert.equal("unknown workflow 'deplyo' (did you mean 'deploy'?)", err)
    wf, err = template.workflow(model, "setup")
    assert.is_nil(wf)
    assert.equal("unknown workflow 'setup' (workflows: deploy, teardown)", err)
  end)
end)

describe("template.load misuse", function()
  it("raises without a path", function()
    assert.has_error(function() template.load(nil) end, "template.load: path must be a string")
  end)

  it("reports a missing file as an error, not a raise", function()
    local model, errors = template.load(tmp_root .. "/missing.yaml")
    assert.is_nil(model)
    assert.matches("^" .. tmp_root:gsub("%p", "%%%0") .. "/missing.yaml:1:1: cannot read the template: ", errors[1].text)
  end)
end)
