-- moonship.model.template: templates in ReleaseHub's format (our own, tests/fixtures/templates/
-- releasehub-format) load into the model the engine consumes, and our extensions (hooks,
-- manifests, task options) are read as documented. The public corpus of real templates is
-- tests/lua/compat_releasehub_spec.lua's.
local template = require "moonship.model.template"

local RH = "tests/fixtures/templates/releasehub-format/"

local models = require "support.model"
local load_ok, shape, env_of, names = models.load_ok, models.shape, models.env_of, models.names
local fixture = models.loader(RH)

local function texts(messages)
  local out = {}
  for i, m in ipairs(messages) do out[i] = m.text end
  return out
end

local proc = require "support.proc"
local tmp_root = proc.tmpdir()
local function write(rel, text) return proc.write_file(tmp_root .. "/" .. rel, text) end

describe("ReleaseHub-format fixtures", function()
  -- What each part of tests/fixtures/templates/releasehub-format/ must become; the values are
  -- read off the templates, the comments say which rule gives them.
  it("storefront: services with every field, resources defaults, env file, both workflow forms", function()
    local path = RH .. "storefront/application_template.yaml"
    local envfile = RH .. "storefront/environment_variables.yaml"
    local model, warnings = fixture("storefront", {env = "pr-7"})
    assert.equal("storefront", model.app)
    assert.equal("storefront-pr-7", model.namespace)
    assert.equal("pr-7", model.env_id)
    assert.equal("shop.example.test", model.domain)
    assert.equal("staging-cluster", model.context)
    assert.equal(envfile, model.env_file)
    -- docs is a static site: warned, not in the model
    assert.same({"db", "cache", "api", "Frontend"}, names(model.services))
    assert.is_nil(model.by_name.services.docs)

    local db = model.by_name.services.db
    assert.equal("postgres:15", db.image)
    assert.same({}, db.command)
    assert.same({}, db.args)
    assert.same({{type = "container_port", port = 5432, target_port = 5432, loadbalancer = false}}, db.ports)
    assert.same({exec = {command = {"pg_isready", "-U", "shop"}}, period_seconds = 5, timeout_seconds = 3,
      failure_threshold = 10}, db.readiness_probe)
    assert.is_nil(db.liveness_probe)
    -- own memory; cpu and replicas from `resources`
    assert.same({limits = "1000m", requests = "100m"}, db.cpu)
    assert.same({limits = "2Gi", requests = "1Gi"}, db.memory)
    assert.equal(1, db.replicas)
    assert.equal(2, #db.volumes)
    assert.same({"shm", "shmem", "256Mi", "/dev/shm"},
      {db.volumes[1].name, db.volumes[1].type, db.volumes[1].size, db.volumes[1].mount_path})
    -- a claim is named after the claim when it has no name
    assert.same({"db-data", "claim", "db-data", "/var/lib/postgresql/data"},
      {db.volumes[2].name, db.volumes[2].type, db.volumes[2].claim, db.volumes[2].mount_path})
    assert.is_nil(db.node_selector)
    assert.same({}, db.depends_on)
    -- defaults, then the mapping (resolved against this container's env)
    assert.same({{name = "TZ", value = "UTC"}, {name = "LOG_LEVEL", value = "info"},
      {name = "RELEASE_ENV", value = "pr-7"}, {name = "API_HOST", value = "api.internal"},
      {name = "LOG_SETTING", value = "level=info"}}, db.env)

    local cache = model.by_name.services.cache
    -- port: '6379' (text) is read as the number
    assert.same({{type = "container_port", port = 6379, target_port = 6379, loadbalancer = false}}, cache.ports)
    assert.same({tcp_socket = {port = 6379}, initial_delay_seconds = 5}, cache.liveness_probe)
    -- the default request 100m is over the own limit 50m: lowered to it
    assert.same({limits = "50m", requests = "50m"}, cache.cpu)
    assert.same({limits = "1Gi", requests = "256Mi"}, cache.memory)

    local api = model.by_name.services.api
    assert.equal("registry.example.test/storefront/api:stable", api.image)
    assert.same({"/app/api"}, api.command)
    assert.same({"--listen=:8080", "--env=pr-7", "--public-url=https://api-pr-7.shop.example.test"}, api.args)
    assert.same({{type = "node_port", port = 30080, target_port = 8080, loadbalancer = false},
      {type = "container_port", port = 9090, target_port = 9090, loadbalancer = false}}, api.ports)
    assert.same({http_get = {path = "/healthz", port = 8080, scheme = "HTTP"}, success_threshold = 2},
      api.readiness_probe)
    assert.same({"db", "cache"}, api.depends_on)
    assert.same({["kubernetes.io/arch"] = "amd64"}, api.node_selector)
    assert.equal(2, api.replicas)
    -- defaults, the file's list for api, its own envs (LOG_LEVEL replaced in place; ${app}
    -- substituted), mapping
    assert.same({{name = "TZ", value = "UTC"}, {name = "LOG_LEVEL", value = "debug"},
      {name = "FEATURE_FLAGS", value = "checkout,search"}, {name = "PAYMENT_TOKEN", value = "$secrets.payment_token"},
      {name = "DATABASE_URL", value = "postgres://storefront@db:5432/shop"}, {name = "MAX_CONNECTIONS", value = "20"},
      {name = "RELEASE_ENV", value = "pr-7"}, {name = "API_HOST", value = "api.internal"},
      {name = "LOG_SETTING", value = "level=debug"}}, api.env)
    -- the file marks PAYMENT_TOKEN secret: true (moonship diff hides its values)
    assert.same({PAYMENT_TOKEN = true}, api.secret_env)

    local web = model.by_name.services.Frontend
    assert.equal("frontend", web.k8s_name)
    assert.equal("registry.example.test/storefront/web:stable", web.image)
    assert.same({{type = "node_port", port = 8000, target_port = 3000, loadbalancer = true}}, web.ports)
    assert.same({pool = "web"}, web.node_selector)
    -- the s3 volume is warned and left out
    assert.equal(1, #web.volumes)
    assert.same({"cache", "empty_dir", "/tmp/cache"}, {web.volumes[1].name, web.volumes[1].type, web.volumes[1].mount_path})
    assert.same({"api"}, web.depends_on)
    -- `env` (ext) in the order written (${namespace} substituted), after the file's list for it
    assert.same({{name = "TZ", value = "UTC"}, {name = "LOG_LEVEL", value = "info"},
      {name = "NODE_ENV", value = "production"}, {name = "API_URL", value = "http://api.storefront-pr-7.svc:8080"},
      {name = "PUBLIC_URL", value = "https://frontend-pr-7.shop.example.test"},
      {name = "RELEASE_ENV", value = "pr-7"}, {name = "API_HOST", value = "api.internal"},
      {name = "LOG_SETTING", value = "level=info"}}, web.env)

    -- from_services: api's image, env (before its mapping) and node selector; its own command
    local migrate = model.by_name.jobs.migrate
    assert.same({"migrate"}, names(model.jobs))
    assert.equal("registry.example.test/storefront/api:stable", migrate.image)
    assert.same({"/app/api", "migrate"}, migrate.command)
    assert.same({}, migrate.args)
    assert.is_true(migrate.halt_on_error)
    assert.is_nil(migrate.completed_timeout)
    assert.is_nil(migrate.backoff_limit)
    assert.same({["kubernetes.io/arch"] = "amd64"}, migrate.node_selector)
    assert.same({limits = "1000m", requests = "100m"}, migrate.cpu)
    assert.same({limits = "1Gi", requests = "256Mi"}, migrate.memory)
    assert.same(api.env, migrate.env)

    local setup = model.workflow_by_name.setup
    assert.same({
      {"data", {"services.db", "services.cache"}},
      {"web", {"services.Frontend"}},
      {"api", {"jobs.migrate", "services.api"}},
    }, shape(setup))
    assert.same({true, false, true}, {setup.steps[1].wait_for_finish, setup.steps[2].wait_for_finish,
      setup.steps[3].wait_for_finish})
    assert.is_false(setup.steps[1].halt_on_error)
    assert.is_false(setup.steps[1].tasks[1].halt_on_error)
    local api_step = setup.steps[3]
    assert.is_true(api_step.halt_on_error)
    assert.equal(600, api_step.timeout)
    assert.equal(1, api_step.max_parallel)
    assert.is_nil(setup.steps[1].timeout)
    assert.is_nil(setup.steps[1].max_parallel)
    -- the job's halt_on_error; the step's for a service; a task entry's timeout
    assert.same({id = "jobs.migrate", kind = "jobs", name = "migrate", halt_on_error = true,
      pos = {file = path, line = 145, col = 7}}, api_step.tasks[1])
    assert.same({id = "services.api", kind = "services", name = "api", halt_on_error = true, timeout = 300,
      pos = {file = path, line = 146, col = 7}}, api_step.tasks[2])
    -- services.all: every service not named elsewhere in the workflow, in file order
    assert.same({{"services.all", {"services.db", "services.cache", "services.api", "services.Frontend"}}},
      shape(model.workflow_by_name.patch))
    assert.same({{"release.remove_environment", {"release.remove_environment"}}}, shape(model.workflow_by_name.teardown))

    assert.same({
      -- hostnames name services: the service is 'Frontend'
      path .. ":11:3: hostname 'frontend-pr-7.shop.example.test' skipped: no service 'frontend' (did you mean 'Frontend'?)",
      path .. ":48:5: service 'db': volume claim 'db-data' is no shared volume of the template: it must exist in the namespace",
      path .. ":53:3: service 'cache': cpu requests 100m (from resources) exceed its limit 50m; requests lowered to 50m",
      path .. ":92:7: unsupported key 'host' in http_get, ignored",
      path .. ":99:3: service name 'Frontend' is not a valid Kubernetes name; its objects are named 'frontend'",
      path .. ":116:5: service 'Frontend': volume type 's3' is unsupported (shmem, empty_dir, persistent or claim), ignored",
      path .. ":119:3: unsupported key 'startup_probe' in service 'Frontend', ignored",
      path .. ":123:3: service 'docs' is a static site (static: true): unsupported, its tasks are skipped",
      path .. ":139:13: services.Frontend depends on 'api', which deploys in a later step of workflow 'setup' ('api'): it may crash-loop until step 3",
      path .. ":148:7: task 'services.docs' skipped: service 'docs' is a static site (unsupported)",
      envfile .. ":12:5: secret reference '$secrets.payment_token' is unsupported; it is passed as the literal value of PAYMENT_TOKEN",
      envfile .. ":21:3: mapping 'COMMIT': 'RELEASE_COMMIT_SHA' is set by ReleaseHub at run time, not by moonship; COMMIT is left unset",
    }, texts(warnings))
  end)

  it("batch-jobs: jobs with every field, jobs.all, a chart, the app from the directory", function()
    local path = RH .. "batch-jobs/application_template.yaml"
    local model, warnings = fixture("batch-jobs")
    assert.equal("batch-jobs", model.app)
    assert.equal("default", model.namespace)
    assert.equal("local", model.env_id)
    assert.is_nil(model.domain)
    assert.same({"worker", "queue"}, names(model.services))
    assert.same({"migrate", "import", "report"}, names(model.jobs))

    local worker = model.by_name.services.worker
    assert.same({"python", "-m", "worker"}, worker.command)
    -- uppercase ${...} is the container's to expand: left as written
    assert.same({"--queue=${QUEUE:-default}"}, worker.args)
    -- limits: 2 (a number) is the quantity "2"; no `resources` to merge with
    assert.same({limits = "2", requests = "500m"}, worker.cpu)
    assert.same({limits = "4Gi", requests = "2Gi"}, worker.memory)
    assert.same({workload = "batch"}, worker.node_selector)
    assert.same({{name = "APP_ENV", value = "local"}, {name = "WORKERS", value = "4"},
      {name = "QUEUE_URL", value = "redis://queue:6379/0"}, {name = "ENVIRONMENT", value = "local"},
      {name = "APP", value = "batch-jobs"}}, worker.env)
    local queue = model.by_name.services.queue
    -- a port without a type is a container port
    assert.same({{type = "container_port", port = 6379, target_port = 6379, loadbalancer = false}}, queue.ports)
    assert.is_nil(queue.cpu)
    assert.is_nil(queue.memory)
    assert.equal(1, queue.replicas)

    -- from_services with its own command: no args of the service's
    local migrate = model.by_name.jobs.migrate
    assert.equal("registry.example.test/batch/worker:1.4", migrate.image)
    assert.same({"python", "-m", "migrate"}, migrate.command)
    assert.same({}, migrate.args)
    assert.is_true(migrate.halt_on_error)
    assert.equal(600, migrate.completed_timeout)
    assert.same({limits = "2", requests = "500m"}, migrate.cpu)
    assert.same({limits = "4Gi", requests = "2Gi"}, migrate.memory)
    assert.same({workload = "batch"}, migrate.node_selector)
    assert.same({{name = "APP_ENV", value = "local"}, {name = "WORKERS", value = "4"},
      {name = "QUEUE_URL", value = "redis://queue:6379/0"}, {name = "ENVIRONMENT", value = "local"},
      {name = "APP", value = "batch-jobs"}}, migrate.env)
    -- from_services without a command: the service's command and args; own memory
    local import = model.by_name.jobs.import
    assert.same({"python", "-m", "worker"}, import.command)
    assert.same({"--queue=${QUEUE:-default}"}, import.args)
    assert.is_false(import.halt_on_error)
    assert.equal(2, import.backoff_limit)
    assert.same({limits = "2", requests = "500m"}, import.cpu)
    assert.same({limits = "8Gi", requests = "4Gi"}, import.memory)
    assert.same({{name = "APP_ENV", value = "local"}, {name = "WORKERS", value = "4"},
      {name = "QUEUE_URL", value = "redis://queue:6379/0"}, {name = "DATASET", value = "2024-q4"},
      {name = "ENVIRONMENT", value = "local"}, {name = "APP", value = "batch-jobs"}}, import.env)
    -- its own image; defaults and the file's list of the same name; `env` (ext); an alias
    local report = model.by_name.jobs.report
    assert.equal("registry.example.test/batch/report:1.0", report.image)
    assert.same({"./report.sh"}, report.command)
    assert.same({"--format", "pdf"}, report.args)
    assert.same({workload = "batch"}, report.node_selector)
    assert.same({limits = "500m", requests = "250m"}, report.cpu)
    assert.is_nil(report.memory)
    assert.same({{name = "APP_ENV", value = "local"}, {name = "BUCKET", value = "reports-local"},
      {name = "FORMAT", value = "pdf"}, {name = "PAGES", value = "12"}, {name = "ENVIRONMENT", value = "local"},
      {name = "APP", value = "batch-jobs"}}, report.env)

    -- order_from: a step per task; jobs.all the jobs not named elsewhere
    assert.same({
      {"services.queue", {"services.queue"}},
      {"jobs.migrate", {"jobs.migrate"}},
      {"services.worker", {"services.worker"}},
      {"charts.monitoring", {"charts.monitoring"}},
      {"jobs.all", {"jobs.import", "jobs.report"}},
    }, shape(model.workflow_by_name.setup))
    assert.is_true(model.workflow_by_name.setup.steps[2].tasks[1].halt_on_error)
    assert.is_false(model.workflow_by_name.setup.steps[5].tasks[1].halt_on_error)
    -- the chart: its directory relative to the repository (here the template's), values to it
    local dir = template.absolute(RH .. "batch-jobs/charts/monitoring")
    assert.same({name = "monitoring", release = "monitoring", directory = dir, values = dir .. "/values.yaml",
      pos = {file = path, line = 56, col = 3}}, model.by_name.charts.monitoring)
    local nightly = model.workflow_by_name.nightly.steps[1]
    assert.same({"import", {"jobs.import", "jobs.report"}}, shape(model.workflow_by_name.nightly)[1])
    -- the entry's halt_on_error: false wins over the step's true; report gets the step's
    assert.is_false(nightly.tasks[1].halt_on_error)
    assert.equal(5400, nightly.tasks[1].timeout)
    assert.is_true(nightly.tasks[2].halt_on_error)
    assert.is_nil(nightly.tasks[2].timeout)

    assert.same({}, texts(warnings))
  end)

  it("batch-jobs with --env: the namespace is <app>-<env> and ${env_id} follows", function()
    local model = fixture("batch-jobs", {env = "pr-7"})
    assert.equal("batch-jobs-pr-7", model.namespace)
    assert.equal("reports-pr-7", env_of(model.by_name.jobs.report).BUCKET)
    assert.equal("pr-7", env_of(model.by_name.services.queue).ENVIRONMENT)
  end)
end)

describe("ReleaseHub's other keys (classifieds)", function()
  local path = RH .. "classifieds/application_template.yaml"
  local IMAGE = "registry.example.test/classifieds/api:abc123"

  it("hostnames, rules and ingress settings become each service's routes", function()
    local model, warnings = fixture("classifieds", {env = "pr-3", images = {api = IMAGE}})
    assert.same({}, texts(warnings))
    local function routes(svc)
      local out = {}
      for i, r in ipairs(svc.hostnames or {}) do out[i] = r.host .. r.path end
      return out
    end
    -- ${env_id} from --env, ${domain} from the template's domain
    assert.same({"api-pr-3.ads.example.test/", "www-pr-3.ads.example.test/api"}, routes(model.by_name.services.api))
    assert.same({"www-pr-3.ads.example.test/"}, routes(model.by_name.services.web))
    assert.same({}, routes(model.by_name.services.db))
    assert.same({["nginx.ingress.kubernetes.io/proxy-body-size"] = "30m",
      ["nginx.ingress.kubernetes.io/proxy-read-timeout"] = "180",
      ["nginx.ingress.kubernetes.io/proxy-buffering"] = "on"}, model.ingress_annotations)
    -- --domain wins over the template's; the Release variables follow the hostnames
    local other = fixture("classifieds", {env = "pr-3", images = {api = IMAGE}, domain = "ads.internal"})
    assert.same({"api-pr-3.ads.internal/", "www-pr-3.ads.internal/api"}, routes(other.by_name.services.api))
    assert.equal("https://api-pr-3.ads.internal", env_of(other.by_name.services.db).API_URL)
    assert.equal("www-pr-3.ads.internal", env_of(other.by_name.services.db).SITE_HOST)
  end)

  it("shared volumes, service accounts, cron jobs and charts", function()
    local model = fixture("classifieds", {images = {api = IMAGE}})
    assert.same({{name = "photos", k8s_name = "photos", size = "5Gi", access_mode = "ReadWriteMany",
      pos = {file = path, line = 48, col = 3}}}, model.shared_volumes)
    -- `type: persistent` by name, and `claim`: the same shared volume
    local api, web = model.by_name.services.api, model.by_name.services.web
    assert.same({"photos", "claim", "photos", "/srv/photos"},
      {api.volumes[1].name, api.volumes[1].type, api.volumes[1].claim, api.volumes[1].mount_path})
    assert.equal(model.shared_volumes[1], web.volumes[1].shared)
    assert.same({{"uploader", "eks.amazonaws.com/role-arn", "arn:aws:iam::123456789012:role/classifieds-uploader"},
      {"indexer", "iam.gke.io/gcp-service-account", "indexer@classifieds-prod.iam.gserviceaccount.com"}},
      {{model.service_accounts[1].name, model.service_accounts[1].annotation, model.service_accounts[1].cloud_role},
       {model.service_accounts[2].name, model.service_accounts[2].annotation, model.service_accounts[2].cloud_role}})
    assert.equal("uploader", api.service_account)
    assert.is_nil(web.service_account)
    -- a job from a service runs as its account
    assert.equal("uploader", model.by_name.jobs.migrate.service_account)
    assert.same({"reindex", "expire"}, names(model.cron_jobs))
    local reindex = model.by_name.cron_jobs.reindex
    assert.same({"*/30 * * * *", IMAGE, "indexer"}, {reindex.schedule, reindex.image, reindex.service_account})
    assert.same({"./reindex"}, reindex.command)
    assert.equal("Forbid", model.by_name.cron_jobs.expire.concurrency_policy)
    assert.same({{"data", {"services.db", "charts.search"}}, {"migrate", {"jobs.migrate"}},
      {"app", {"services.api", "services.web", "cron_jobs.reindex", "cron_jobs.expire"}}},
      shape(model.workflow_by_name.setup))
    local dir = template.absolute(RH .. "classifieds/charts/search")
    assert.same({dir, dir .. "/values.yaml", "search"},
      {model.by_name.charts.search.directory, model.by_name.charts.search.values, model.by_name.charts.search.release})
  end)

  it("--env permanent applies that environment template's overrides", function()
    local model, warnings = fixture("classifieds", {env = "permanent", images = {api = IMAGE}})
    assert.same({}, texts(warnings))
    assert.equal("permanent", model.environment_template)
    -- resources.replicas for every service, a service's own replicas and memory limit, an env
    -- entry replaced by key, hostnames replaced as a whole
    assert.equal(2, model.by_name.services.db.replicas)
    assert.equal(3, model.by_name.services.web.replicas)
    assert.same({limits = "1Gi", requests = "128Mi"}, model.by_name.services.web.memory)
    assert.same({limits = "512Mi", requests = "128Mi"}, model.by_name.services.api.memory)
    assert.equal("warn", env_of(model.by_name.services.api).LOG_LEVEL)
    assert.equal("api.ads.example.test", model.by_name.services.api.hostnames[1].host)
    assert.equal("www.ads.example.test", model.by_name.services.web.hostnames[1].host)
    -- an --env that names no environment template changes nothing
    local plain = fixture("classifieds", {env = "pr-3", images = {api = IMAGE}})
    assert.is_nil(plain.environment_template)
    assert.equal(1, plain.by_name.services.web.replicas)
    assert.equal("info", env_of(plain.by_name.services.api).LOG_LEVEL)
  end)

  it("reports a merged value where the environment template wrote it", function()
    local p = write("envtpl/app.yaml", [[
app: shop
environment_templates:
- name: permanent
  services:
  - name: web
    replicas: many
services:
- name: web
  image: nginx
workflows:
- name: deploy
  order_from: [services.web]
]])
    local model, errors = template.load(p, {env = "permanent"})
    assert.is_nil(model)
    assert.same({p .. ":6:5: 'replicas' must be an integer (got \"many\")"}, texts(errors))
    assert.is_table(template.load(p, {env = "pr-1"}))
  end)

  it("a service ReleaseHub builds: a warning, --image gives it, and what a deploy of a workflow lacks", function()
    local model, warnings = fixture("classifieds")
    assert.same({path .. ":62:3: service 'api' is built from 'api' by ReleaseHub: pass --image api=REF"}, texts(warnings))
    assert.is_nil(model.by_name.services.api.image)
    local function blocked(wf)
      local out = {}
      for i, b in ipairs(template.undeployable(model, wf)) do out[i] = b.text end
      return out
    end
    -- the job and the cron job from it need it too; the frontend workflow does not
    assert.same({
      path .. ":87:3: error: jobs.migrate runs service 'api' (from_services): service 'api' is built from 'api' by ReleaseHub: pass --image api=REF",
      path .. ":62:3: error: services.api: service 'api' is built from 'api' by ReleaseHub: pass --image api=REF",
      path .. ":91:3: error: cron_jobs.reindex runs service 'api' (from_services): service 'api' is built from 'api' by ReleaseHub: pass --image api=REF",
    }, blocked(model.workflow_by_name.setup))
    assert.same({}, blocked(model.workflow_by_name.frontend))
    -- --image names the image of a service (and of the jobs from it) or of a job
    local given = fixture("classifieds", {images = {api = IMAGE, migrate = "registry.example.test/migrate:1"}})
    assert.equal(IMAGE, given.by_name.services.api.image)
    assert.equal("registry.example.test/migrate:1", given.by_name.jobs.migrate.image)
    assert.equal(IMAGE, given.by_name.cron_jobs.reindex.image)
    assert.same({}, template.undeployable(given, given.workflow_by_name.setup))
    local none, errors = template.load(path, {images = {apii = IMAGE}})
    assert.is_nil(none)
    assert.same({path .. ":56:1: --image apii=" .. IMAGE .. ": the template has no service or job 'apii' (did you mean 'api'?)"},
      texts(errors))
  end)

  it("template.parse_images reads NAME=REF", function()
    assert.same({api = "r/api:1", web = "r/web@sha256:ab=="}, template.parse_images {"api=r/api:1", "web=r/web@sha256:ab=="})
    assert.same({}, template.parse_images(nil))
    assert.same({nil, "--image must be NAME=REF, like backend=registry.example/backend:1.2 (got 'api')"},
      {template.parse_images {"api"}})
    assert.same({nil, "--image api given twice ('r/a:1' and 'r/a:2')"}, {template.parse_images {"api=r/a:1", "api=r/a:2"}})
  end)

  it("a chart whose directory is not there is warned, and stops a deploy of a workflow with it", function()
    local p = write("chart1/app.yaml", [[
app: shop
charts:
- name: redis
  directory: charts/redis
workflows:
- name: deploy
  order_from: [charts.redis]
]])
    local model, warnings = load_ok(p)
    assert.same({p .. ":3:3: chart 'redis': no Chart.yaml in " .. tmp_root .. "/chart1/charts/redis"}, texts(warnings))
    assert.same({p .. ":3:3: error: charts.redis: chart 'redis': no Chart.yaml in " .. tmp_root .. "/chart1/charts/redis"},
      {template.undeployable(model, model.workflow_by_name.deploy)[1].text})
    -- the repository of a template in .release/ is the directory above it
    write("chart2/charts/redis/Chart.yaml", "apiVersion: v2\nname: redis\nversion: 1.0.0\n")
    local q = write("chart2/.release/application_template.yaml", proc.read_file(p))
    local m2, w2 = load_ok(q)
    assert.same({}, texts(w2))
    assert.equal(tmp_root .. "/chart2/charts/redis", m2.by_name.charts.redis.directory)
  end)
end)

describe("a large template", function()
  -- Loading takes time linear in the template's size (scripts/bench-template measures it);
  -- this checks the result at a size where a quadratic step would show: nothing lost, in order.
  it("keeps 20,000 env entries of a service, in order, with the defaults replaced in place", function()
    local n = 20000
    local t = {"app: big\nservices:\n- name: web\n  image: nginx\n  envs:\n"}
    for i = 1, n do t[#t + 1] = ("  - key: VAR_%d\n    value: v%d\n"):format(i, i) end
    t[#t + 1] = "workflows:\n- name: deploy\n  order_from: [services.web]\n"
    local path = write("big/app.yaml", table.concat(t))
    -- the file's defaults name every 100th variable first, so those keep the defaults' order
    local e = {"defaults:\n"}
    for i = 100, n, 100 do e[#e + 1] = ("- key: VAR_%d\n  value: default\n"):format(i) end
    write("big/environment_variables.yaml", table.concat(e))
    local model = load_ok(path)
    local env = model.by_name.services.web.env
    assert.equal(n, #env)
    local want = {}
    for i = 100, n, 100 do want[#want + 1] = i end
    for i = 1, n do
      if i % 100 ~= 0 then want[#want + 1] = i end
    end
    for k, i in ipairs(want) do
      local entry = env[k]
      if entry.name ~= "VAR_" .. i or entry.value ~= "v" .. i then
        error(("entry %d is %s=%s, want VAR_%d=v%d"):format(k, entry.name, entry.value, i, i))
      end
    end
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
      timeout: 1.5m
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

  it("reads prune (ext): false unless the template says true", function()
    local body = "app: shop\nservices:\n- {name: web, image: nginx}\nworkflows:\n- {name: deploy, order_from: [services.web]}\n"
    assert.is_true(load_ok(write("prune1/moonship.yaml", "prune: true\n" .. body)).prune)
    assert.is_false(load_ok(write("prune2/moonship.yaml", "prune: false\n" .. body)).prune)
    assert.is_false(load_ok(write("prune3/moonship.yaml", body)).prune)
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

  it("reports a hooks file that does not load at its own line, named beside the template", function()
    write("ext10/broken.lua", "return {tasks = \n")
    local path = write("ext10/app.yaml", "app: shop\nhooks: broken.lua\nservices: []\n")
    local model, errors = template.load(path)
    assert.is_nil(model)
    assert.equal(tmp_root .. "/ext10/broken.lua:2: unexpected symbol near <eof>", errors[1].text)
    assert.equal(tmp_root .. "/ext10/broken.lua:2: error: unexpected symbol near <eof>",
                 template.format_message(errors[1]))
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
