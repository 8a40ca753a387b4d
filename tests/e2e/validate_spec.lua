-- `moonship validate` and `moonship render` on the binary: exit codes, positioned messages,
-- and YAML that parses back into the objects, on our templates in ReleaseHub's format (the
-- public corpus of real ones is tests/e2e/compat_releasehub_spec.lua's).
local proc = require "support.proc"
local yaml = require "moonship.yaml"

local RH = "tests/fixtures/templates/releasehub-format/"
local BAD = "tests/fixtures/templates/bad/"

-- The binary with no kubeconfig to read: the namespace is the template's default.
local NO_KUBECONFIG = {KUBECONFIG = "/nonexistent/kubeconfig"}
local function moonship(...)
  return proc.run {proc.moonship, env = NO_KUBECONFIG, ...}
end

describe("moonship validate", function()
  it("accepts the ReleaseHub-format fixtures, printing each warning as file:line:col: warning:", function()
    local path = RH .. "storefront/application_template.yaml"
    local envfile = RH .. "storefront/environment_variables.yaml"
    local r = moonship("validate", path, "-w", "setup", "--env", "pr-7")
    assert.equal(0, r.code, r.stderr)
    assert.equal(path .. ": ok (app 'storefront' in namespace storefront-pr-7; workflow 'setup': 3 steps, 5 tasks; 12 warnings)\n", r.stdout)
    -- by position within a file; the files' messages in the order they were found
    assert.equal(table.concat({
      path .. ":11:3: warning: hostname 'frontend-pr-7.shop.example.test' skipped: no service 'frontend' (did you mean 'Frontend'?)",
      path .. ":48:5: warning: service 'db': volume claim 'db-data' is no shared volume of the template: it must exist in the namespace",
      path .. ":53:3: warning: service 'cache': cpu requests 100m (from resources) exceed its limit 50m; requests lowered to 50m",
      path .. ":92:7: warning: unsupported key 'host' in http_get, ignored",
      path .. ":99:3: warning: service name 'Frontend' is not a valid Kubernetes name; its objects are named 'frontend'",
      path .. ":116:5: warning: service 'Frontend': volume type 's3' is unsupported (shmem, empty_dir, persistent or claim), ignored",
      path .. ":119:3: warning: unsupported key 'startup_probe' in service 'Frontend', ignored",
      path .. ":123:3: warning: service 'docs' is a static site (static: true): unsupported, its tasks are skipped",
      envfile .. ":12:5: warning: secret reference '$secrets.payment_token' is unsupported; it is passed as the literal value of PAYMENT_TOKEN",
      envfile .. ":21:3: warning: mapping 'COMMIT': 'RELEASE_COMMIT_SHA' is set by ReleaseHub at run time, not by moonship; COMMIT is left unset",
      path .. ":139:13: warning: services.Frontend depends on 'api', which deploys in a later step of workflow 'setup' ('api'): it may crash-loop until step 3",
      path .. ":148:7: warning: task 'services.docs' skipped: service 'docs' is a static site (unsupported)",
    }, "\n") .. "\n", r.stderr)

    path = RH .. "batch-jobs/application_template.yaml"
    r = moonship("validate", path)
    assert.equal(0, r.code, r.stderr)
    assert.equal(path .. ": ok (app 'batch-jobs' in namespace default; 2 services, 3 jobs, 3 workflows; 0 warnings)\n", r.stdout)
    assert.equal("", r.stderr)
    r = moonship("validate", path, "-w", "nightly")
    assert.equal(0, r.code, r.stderr)
    assert.equal(path .. ": ok (app 'batch-jobs' in namespace default; workflow 'nightly': 1 step, 2 tasks; 0 warnings)\n", r.stdout)
  end)

  it("validates the seed example", function()
    local r = moonship("validate", "examples/shop/moonship.yaml", "-w", "deploy")
    assert.equal(0, r.code, r.stderr)
    assert.equal("", r.stderr)
    assert.equal("examples/shop/moonship.yaml: ok (app 'shop' in namespace default; workflow 'deploy': 3 steps, 4 tasks; 0 warnings)\n", r.stdout)
  end)

  it("exits 2 with the positioned error for a malformed template", function()
    local r = moonship("validate", BAD .. "unknown-service-task.yaml")
    assert.equal(2, r.code)
    assert.equal(BAD .. "unknown-service-task.yaml:8:5: error: unknown task 'services.fronted' (did you mean 'services.frontend'?)\n"
      .. BAD .. "unknown-service-task.yaml: invalid: 1 error, 0 warnings\n", r.stderr)
    assert.equal("", r.stdout)
  end)

  it("exits 2 for an unknown workflow, with a suggestion", function()
    local r = moonship("validate", "examples/shop/moonship.yaml", "-w", "deplyo")
    assert.equal(2, r.code)
    assert.equal("examples/shop/moonship.yaml: error: unknown workflow 'deplyo' (did you mean 'deploy'?)\n", r.stderr)
  end)

  it("finds the template in a directory", function()
    local r = moonship("validate", "examples/shop")
    assert.equal(0, r.code, r.stderr)
    assert.matches("^examples/shop/moonship.yaml: ok", r.stdout)
    local empty = proc.tmpdir()
    r = moonship("validate", empty)
    assert.equal(2, r.code)
    assert.matches("no template in", r.stderr)
  end)

  it("takes custom task kinds from --hooks", function()
    local dir = proc.tmpdir()
    local tpl = proc.write_file(dir .. "/app.yaml",
      "app: x\nworkflows:\n- name: deploy\n  order_from:\n  - lua.notify\n")
    local r = moonship("validate", tpl)
    assert.equal(2, r.code)
    assert.matches("5:5: error: no task handler for kind 'lua' %(define tasks.lua in the hooks file%)", r.stderr)
    local hooks = proc.write_file(dir .. "/hooks.lua", "return {tasks = {lua = function() return true end}}\n")
    r = moonship("validate", tpl, "--hooks", hooks)
    assert.equal(0, r.code, r.stderr)
  end)
end)

describe("moonship validate and render: --image, --domain, --env", function()
  local CLASSIFIEDS = RH .. "classifieds/application_template.yaml"
  local WARNING = CLASSIFIEDS .. ":62:3: warning: service 'api' is built from 'api' by ReleaseHub: pass --image api=REF\n"

  it("validate warns about a service ReleaseHub builds; --image (repeatable) gives it", function()
    local r = moonship("validate", CLASSIFIEDS, "-w", "setup")
    assert.equal(0, r.code, r.stderr)
    assert.equal(WARNING, r.stderr)
    assert.equal(CLASSIFIEDS .. ": ok (app 'classifieds' in namespace default; workflow 'setup': 3 steps, 7 tasks; 1 warning)\n", r.stdout)
    r = moonship("validate", CLASSIFIEDS, "--image", "api=registry.example.test/api:1", "--image=migrate=registry.example.test/m:1")
    assert.equal(0, r.code, r.stderr)
    assert.equal("", r.stderr)
    r = moonship("validate", CLASSIFIEDS, "--image", "api")
    assert.equal(2, r.code)
    assert.equal("moonship validate: --image must be NAME=REF, like backend=registry.example/backend:1.2 (got 'api')\n"
      .. "Run 'moonship validate --help' for its options.\n", r.stderr)
  end)

  it("render exits 2 when an object it prints would have no image", function()
    local r = moonship("render", CLASSIFIEDS, "-w", "frontend")
    assert.equal(0, r.code, r.stderr)
    r = moonship("render", CLASSIFIEDS)
    assert.equal(2, r.code)
    assert.equal("", r.stdout)
    assert.equal(WARNING
      .. CLASSIFIEDS .. ":62:3: error: services.api: service 'api' is built from 'api' by ReleaseHub: pass --image api=REF\n"
      .. CLASSIFIEDS .. ":87:3: error: jobs.migrate runs service 'api' (from_services): service 'api' is built from 'api' by ReleaseHub: pass --image api=REF\n"
      .. CLASSIFIEDS .. ":91:3: error: cron_jobs.reindex runs service 'api' (from_services): service 'api' is built from 'api' by ReleaseHub: pass --image api=REF\n",
      r.stderr)
  end)

  it("render: --domain and --env pick the hosts and the environment template", function()
    local r = moonship("render", CLASSIFIEDS, "-w", "frontend", "--env", "permanent", "--domain", "ads.internal")
    assert.equal(0, r.code, r.stderr)
    local docs = assert(yaml.load(r.stdout))
    local by = {}
    for _, d in ipairs(docs) do by[d.kind .. "/" .. d.metadata.name] = d end
    assert.equal("www.ads.internal", by["Ingress/web"].spec.rules[1].host)
    assert.equal(3, by["Deployment/web"].spec.replicas)
    assert.equal("classifieds-permanent", by["Deployment/web"].metadata.namespace)
    assert.same({"ReadWriteMany"}, by["PersistentVolumeClaim/photos"].spec.accessModes)
  end)
end)

describe("moonship render", function()
  it("prints the workflow's objects as parseable YAML, in workflow order", function()
    local r = moonship("render", "examples/shop/moonship.yaml", "-w", "deploy", "--env", "pr-42")
    assert.equal(0, r.code, r.stderr)
    local docs = assert(yaml.load(r.stdout))
    local ids = {}
    for i, d in ipairs(docs) do ids[i] = d.kind .. "/" .. d.metadata.name end
    assert.same({"Deployment/frontend", "Service/frontend", "Job/migrate-render", "Job/scrub-render",
      "Deployment/backend", "Service/backend"}, ids)
    for _, d in ipairs(docs) do assert.equal("shop-pr-42", d.metadata.namespace) end
    assert.equal(2, docs[5].spec.replicas)
  end)

  it("honours -n and --run-id", function()
    local r = moonship("render", "examples/shop/moonship.yaml", "-n", "staging", "--run-id", "r42")
    assert.equal(0, r.code, r.stderr)
    local docs = assert(yaml.load(r.stdout))
    assert.equal("staging", docs[1].metadata.namespace)
    assert.equal("r42", docs[1].metadata.annotations["moonship.dev/run"])
    assert.equal("Job", docs[5].kind)
    assert.equal("migrate-r42", docs[5].metadata.name)
  end)

  it("renders the storefront's setup workflow: each object as the template says", function()
    local r = moonship("render", RH .. "storefront/application_template.yaml", "-w", "setup", "--env", "pr-7")
    assert.equal(0, r.code, r.stderr)
    local docs = assert(yaml.load(r.stdout))
    local ids, by = {}, {}
    for i, d in ipairs(docs) do
      ids[i] = d.kind .. "/" .. d.metadata.name
      by[ids[i]] = d
      assert.equal("storefront-pr-7", d.metadata.namespace)
      assert.equal("storefront", d.metadata.labels["app.kubernetes.io/part-of"])
    end
    -- in workflow order; docs (static) has none; Frontend's objects are named in lowercase
    assert.same({"Deployment/db", "Service/db", "Deployment/cache", "Service/cache", "Deployment/frontend",
      "Service/frontend", "Job/migrate-render", "Deployment/api", "Service/api"}, ids)
    -- the Service's type: any loadbalancer, else any node_port, else ClusterIP; nodePort only
    -- for a port in 30000-32767
    assert.equal("ClusterIP", by["Service/db"].spec.type)
    assert.equal("LoadBalancer", by["Service/frontend"].spec.type)
    assert.same({{name = "port-8000", port = 8000, targetPort = 3000, protocol = "TCP"}}, by["Service/frontend"].spec.ports)
    assert.equal("NodePort", by["Service/api"].spec.type)
    assert.same({{name = "port-30080", port = 30080, targetPort = 8080, protocol = "TCP", nodePort = 30080},
      {name = "port-9090", port = 9090, targetPort = 9090, protocol = "TCP"}}, by["Service/api"].spec.ports)

    local api = by["Deployment/api"].spec
    assert.equal(2, api.replicas)
    assert.same({["kubernetes.io/arch"] = "amd64"}, api.template.spec.nodeSelector)
    local c = api.template.spec.containers[1]
    assert.equal("registry.example.test/storefront/api:stable", c.image)
    assert.same({{containerPort = 8080}, {containerPort = 9090}}, c.ports)
    assert.same({httpGet = {path = "/healthz", port = 8080, scheme = "HTTP"}, successThreshold = 2}, c.readinessProbe)
    assert.same({limits = {cpu = "1000m", memory = "1Gi"}, requests = {cpu = "100m", memory = "256Mi"}}, c.resources)
    assert.same({name = "LOG_LEVEL", value = "debug"}, c.env[2])

    local db = by["Deployment/db"].spec.template.spec
    assert.same({{name = "shm", emptyDir = {medium = "Memory", sizeLimit = "256Mi"}},
      {name = "db-data", persistentVolumeClaim = {claimName = "db-data"}}}, db.volumes)
    assert.same({{name = "shm", mountPath = "/dev/shm"}, {name = "db-data", mountPath = "/var/lib/postgresql/data"}},
      db.containers[1].volumeMounts)
    assert.same({exec = {command = {"pg_isready", "-U", "shop"}}, periodSeconds = 5, timeoutSeconds = 3,
      failureThreshold = 10}, db.containers[1].readinessProbe)
    assert.same({tcpSocket = {port = 6379}, initialDelaySeconds = 5},
      by["Deployment/cache"].spec.template.spec.containers[1].livenessProbe)

    local job = by["Job/migrate-render"].spec
    assert.equal(0, job.backoffLimit)
    assert.is_nil(job.activeDeadlineSeconds)
    assert.equal("Never", job.template.spec.restartPolicy)
    assert.same({"/app/api", "migrate"}, job.template.spec.containers[1].command)
  end)

  it("renders the batch jobs: backoff_limit, completed_timeout, from_services", function()
    local r = moonship("render", RH .. "batch-jobs/application_template.yaml", "-w", "setup", "--run-id", "r1")
    assert.equal(0, r.code, r.stderr)
    local docs = assert(yaml.load(r.stdout))
    local ids, by = {}, {}
    for i, d in ipairs(docs) do
      ids[i] = d.kind .. "/" .. d.metadata.name
      by[ids[i]] = d
    end
    assert.same({"Deployment/queue", "Service/queue", "Job/migrate-r1", "Deployment/worker", "Job/import-r1",
      "Job/report-r1"}, ids)
    assert.equal(600, by["Job/migrate-r1"].spec.activeDeadlineSeconds)
    assert.equal(2, by["Job/import-r1"].spec.backoffLimit)
    local import = by["Job/import-r1"].spec.template.spec
    assert.same({workload = "batch"}, import.nodeSelector)
    assert.same({"python", "-m", "worker"}, import.containers[1].command)
    assert.same({limits = {cpu = "2", memory = "8Gi"}, requests = {cpu = "500m", memory = "4Gi"}},
      import.containers[1].resources)
    assert.equal("ClusterIP", by["Service/queue"].spec.type)
  end)

  it("exits 2 without output for a malformed template", function()
    local r = moonship("render", BAD .. "replicas-string.yaml")
    assert.equal(2, r.code)
    assert.equal("", r.stdout)
    assert.matches("replicas%-string.yaml:5:3: error: 'replicas' must be an integer %(got \"x\"%)", r.stderr)
  end)
end)
