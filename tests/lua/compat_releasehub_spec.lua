-- The public corpus of real ReleaseHub templates ($MOONSHIP_COMPAT_DIR/releasehub, see
-- tests/support/compat.lua) through moonship.yaml and moonship.template: each loads unchanged,
-- dumps and loads back to the same value, and builds the model the engine consumes. Skipped,
-- saying so, when the corpus is absent; tests/fixtures/templates/releasehub-format holds the
-- templates of our own that the rest of the suite reads.
local compat = require "support.compat"
local proc = require "support.proc"
local template = require "moonship.model.template"
local yaml = require "moonship.yaml"

local RH, why = compat.corpus("releasehub", "ReleaseHub corpus")
if not RH then pending(why) return end
RH = RH .. "/"
local DIRS = compat.entries(RH)

local models = require "support.model"
local load_ok, shape, env_of, names = models.load_ok, models.shape, models.env_of, models.names
local fixture = models.loader(RH)

-- Every YAML file of the corpus.
local function yaml_files()
  local files = {}
  for _, d in ipairs(DIRS) do
    for _, f in ipairs {"application_template.yaml", "environment_variables.yaml"} do
      local path = RH .. d .. "/" .. f
      if proc.exists(path) then files[#files + 1] = path end
    end
  end
  return files
end

local same = require("support.values").same

describe("the ReleaseHub corpus through moonship.yaml", function()
  local dir = RH

  it("load unchanged", function()
    local n = 0
    for _, path in ipairs(yaml_files()) do
      local docs, err = yaml.load_file(path)
      assert(docs, err)
      assert.is_true(#docs >= 1, path)
      n = n + 1
    end
    assert.is_true(n >= 16)
  end)

  it("give values and positions", function()
    local path = dir .. "releasehub-com__example-voting-app/application_template.yaml"
    local app = assert(yaml.load_file(path))[1]
    assert.is_true(app.auto_deploy)
    assert.equal("rls.sh", app.domain)
    assert.equal(1, app.resources.replicas)
    assert.equal("100Mi", app.resources.memory.requests)
    assert.equal("db", app.services[1].name)
    assert.equal("6379", app.services[2].ports[1].port)
    assert.same({path, 5, 1}, {yaml.where(app, "repo_name")})
    assert.same({path, 21, 3}, {yaml.where(app.services, 1)})
    assert.same({path, 23, 3}, {yaml.where(app.services[1], "has_repo")})

    local amundsen = dir .. "amundsen-io__amundsen/application_template.yaml"
    local docs = assert(yaml.load_file(amundsen))
    assert.equal("amemsenennn", docs[1].app)
    assert.same({amundsen, 3, 1}, {yaml.where(docs[1], "app")})
  end)

  it("round-trip through dump(load(x))", function()
    for _, path in ipairs(yaml_files()) do
      local docs = assert(yaml.load_file(path))
      for _, doc in ipairs(docs) do
        local text = yaml.dump(doc)
        local back = assert(yaml.load(text))
        assert(same(back[1], doc), path .. ": round trip changed the value:\n" .. text)
      end
      local again = assert(yaml.load(yaml.dump_all(docs)))
      assert.equal(#docs, #again)
    end
  end)
end)

describe("the ReleaseHub corpus through moonship.model.template", function()
  local dirs = DIRS

  it("all load with no error, and every workflow has steps or only skipped tasks", function()
    assert.is_true(#dirs >= 8)
    for _, d in ipairs(dirs) do
      local model = fixture(d, {env = "pr-7"})
      assert.is_true(#model.services > 0, d)
      assert.is_table(model.workflow_by_name.setup, d)
      assert.is_true(#model.workflow_by_name.setup.steps > 0, d)
    end
  end)

  it("none is warned about a key that moonship maps to objects", function()
    local mapped = {"hostnames", "ingress", "rules", "shared_volumes", "environment_templates", "cron_jobs",
      "service_accounts", "charts"}
    for _, d in ipairs(dirs) do
      for _, env in ipairs {"pr-7", "ephemeral", "permanent"} do
        local _, warnings = fixture(d, {env = env})
        for _, w in ipairs(warnings) do
          for _, key in ipairs(mapped) do
            assert.is_nil(w.message:find("unsupported key '" .. key .. "'", 1, true), w.text)
          end
          assert.is_nil(w.message:find("environment template", 1, true), w.text)
        end
      end
    end
  end)

  it("amundsen: resources, env file defaults, from_services, charts", function()
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
      {"amundsen", {"charts.amundsen", "charts.ingress"}},
    }, shape(model.workflow_by_name.setup))
    -- The job's halt_on_error makes its task halt.
    assert.is_true(model.workflow_by_name.setup.steps[2].tasks[1].halt_on_error)
    assert.is_false(model.workflow_by_name.setup.steps[1].tasks[1].halt_on_error)
    assert.same({{"amundsen-stepz", {"charts.amundsen"}}}, shape(model.workflow_by_name.patch))
    -- The charts' directories are in amundsen's repository, not in the corpus: a deploy of
    -- setup stops there, validate warns.
    local chart = model.by_name.charts.amundsen
    assert.equal(RH .. "amundsen-io__amundsen/amundsen-kube-helm/templates/helm", chart.directory)
    assert.equal(chart.directory .. "/values.yaml", chart.values)
    local texts = {}
    for _, w in ipairs(warnings) do texts[#texts + 1] = w.message end
    assert.is_truthy(table.concat(texts, "\n"):find("chart 'amundsen': no Chart.yaml in ", 1, true))
    assert.equal(2, #template.undeployable(model, model.workflow_by_name.setup))
    -- its hostname names a service of the chart, not of the template
    assert.is_truthy(table.concat(texts, "\n"):find("hostname 'frontend-pr-7-amemsenennn.releaseapp.gethandsup.com' skipped: no service 'frontend'", 1, true))
  end)

  it("genai-stack: parameters, probes, node selector, volumes, static service skipped", function()
    local model = fixture("awesome-release__genai-stack", {env = "pr-7"})
    assert.equal("awesome-release--genai-stack", model.app)
    assert.same({"ollama", "api", "bot", "database", "loader", "pdf-bot", "pull-model"}, names(model.services))
    assert.is_nil(model.by_name.services["front-end"])
    local ollama = model.by_name.services.ollama
    assert.same({"/bin/ollama"}, ollama.command)
    assert.same({"serve"}, ollama.args)
    -- the mapping's $API_INGRESS_URL is api's hostname
    assert.same({{name = "LLM", value = "llama2"}, {name = "EMBEDDING_MODEL", value = "sentence_transformer"},
      {name = "VITE_API_BASE_URL", value = "https://api-pr-7.ai-playground.releaseapp.io"}}, ollama.env)
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
    -- shared_volumes: the claim ollama mounts
    assert.same({"models", "40Gi", "ReadWriteOnce"}, {model.shared_volumes[1].name, model.shared_volumes[1].size,
      model.shared_volumes[1].access_mode})
    assert.equal(model.shared_volumes[1], ollama.volumes[2].shared)
    -- hostnames with ${env_id} and ${domain}; the ingress settings as nginx annotations
    assert.equal("ollama-pr-7.ai-playground.releaseapp.io", ollama.hostnames[1].host)
    assert.equal("api-pr-7.ai-playground.releaseapp.io", model.by_name.services.api.hostnames[1].host)
    assert.equal("30m", model.ingress_annotations["nginx.ingress.kubernetes.io/proxy-body-size"])
    assert.equal("on", model.ingress_annotations["nginx.ingress.kubernetes.io/proxy-buffering"])
    assert.equal("180", model.ingress_annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"])
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
    -- $WEB_INGRESS_URL: web's hostname
    assert.equal("https://web-pr-7.releaseapp.gethandsup.com", kafka.SITE_URL)
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
