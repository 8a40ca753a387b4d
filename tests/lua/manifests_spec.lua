-- moonship.model.manifests: the exact Kubernetes objects of a service, a job and a raw manifest.
local template = require "moonship.model.template"
local manifests = require "moonship.model.manifests"
local json = require "moonship.json"

local proc = require "support.proc"

local tmp_root = proc.tmpdir()
local function write(rel, text) return proc.write_file(tmp_root .. "/" .. rel, text) end

write("k8s/extra.yaml", [[
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  labels:
    team: web
data:
  mode: fast
  list: []
---
apiVersion: v1
kind: Namespace
metadata:
  name: shared-tools
---
apiVersion: v1
kind: Secret
metadata:
  name: token
  namespace: vault
]])

local PATH = write("app.yaml", [[
app: shop
resources:
  cpu:
    limits: 500m
    requests: 50m
  memory:
    limits: 256Mi
    requests: 64Mi
  replicas: 1
services:
- name: web
  image: nginx:1.27
  command: [nginx]
  args: ["-g", "daemon off;"]
  envs:
  - key: MODE
    value: ${env_id}
  ports:
  - type: container_port
    port: 80
    target_port: 8080
  - type: node_port
    port: 30080
    target_port: 8080
  - type: node_port
    port: 9090
  readiness_probe:
    http_get:
      path: /healthz
      port: 8080
    period_seconds: 5
    timeout_seconds: 2
    failure_threshold: 3
    initial_delay_seconds: 1
  liveness_probe:
    exec:
      command: [cat, /tmp/alive]
  node_selector:
  - key: pool
    value: web
  replicas: 2
  memory:
    limits: 512Mi
- name: lb
  image: haproxy
  ports:
  - type: container_port
    port: 443
    loadbalancer: true
  readiness_probe:
    tcp_socket:
      port: 443
- name: worker
  image: worker
jobs:
- name: migrate
  from_services: web
  command: [migrate, up]
  completed_timeout: 600
  backoff_limit: 1
- name: once
  image: busybox
manifests:
- name: extra
  path: k8s/extra.yaml
workflows:
- name: deploy
  parallelize:
  - step: config
    tasks: [manifests.extra]
  - step: migrate
    tasks: [jobs.migrate]
  - step: apps
    tasks: [services.all, release.remove_environment]
]])

local model = assert(template.load(PATH, {env = "pr-5"}))
local OPTS = {run_id = "20261126-104951-a1b2", namespace = "shop-pr-5"}
local SHORT = manifests.short_run_id(OPTS.run_id)

local function labels(name, component)
  return {
    ["app.kubernetes.io/name"] = name,
    ["app.kubernetes.io/part-of"] = "shop",
    ["app.kubernetes.io/managed-by"] = "moonship",
    ["app.kubernetes.io/component"] = component,
  }
end
local SELECTOR = {["app.kubernetes.io/name"] = "web", ["app.kubernetes.io/part-of"] = "shop",
  ["app.kubernetes.io/component"] = "service"}
local ANNOTATIONS = {["moonship.dev/run"] = OPTS.run_id}

local function task(id)
  local kind, name = id:match("^(%w+)%.(.+)$")
  return {id = id, kind = kind, name = name}
end

describe("manifests.short_run_id", function()
  it("keeps a short DNS-safe id and hashes a long one to 8 hex digits, stably", function()
    assert.equal("render", manifests.short_run_id("render"))
    assert.equal("ab12cd34", manifests.short_run_id("AB12CD34"))
    assert.matches("^%x%x%x%x%x%x%x%x$", SHORT)
    assert.equal(SHORT, manifests.short_run_id(OPTS.run_id))
    assert.not_equal(SHORT, manifests.short_run_id(OPTS.run_id .. "x"))
  end)
end)

describe("a service", function()
  it("is a Deployment and a Service with its ports, probes, resources, env and selector", function()
    local objects = manifests.for_task(model, task("services.web"), OPTS)
    assert.equal(2, #objects)
    assert.same({
      apiVersion = "apps/v1", kind = "Deployment",
      metadata = {name = "web", namespace = "shop-pr-5", labels = labels("web", "service"), annotations = ANNOTATIONS},
      spec = {
        replicas = 2,
        selector = {matchLabels = SELECTOR},
        template = {
          metadata = {labels = labels("web", "service")},
          spec = {
            containers = {{
              name = "web", image = "nginx:1.27",
              command = {"nginx"}, args = {"-g", "daemon off;"},
              env = {{name = "MODE", value = "pr-5"}},
              ports = {{containerPort = 8080}, {containerPort = 9090}},
              resources = {limits = {cpu = "500m", memory = "512Mi"}, requests = {cpu = "50m", memory = "64Mi"}},
              readinessProbe = {httpGet = {path = "/healthz", port = 8080}, periodSeconds = 5,
                timeoutSeconds = 2, failureThreshold = 3, initialDelaySeconds = 1},
              livenessProbe = {exec = {command = {"cat", "/tmp/alive"}}},
            }},
            nodeSelector = {pool = "web"},
          },
        },
      },
    }, objects[1])
    assert.same({
      apiVersion = "v1", kind = "Service",
      metadata = {name = "web", namespace = "shop-pr-5", labels = labels("web", "service"), annotations = ANNOTATIONS},
      spec = {
        type = "NodePort", selector = SELECTOR,
        ports = {
          {name = "port-80", port = 80, targetPort = 8080, protocol = "TCP"},
          -- in the NodePort range: kept as the node port; 9090 is not, so Kubernetes picks one.
          {name = "port-30080", port = 30080, targetPort = 8080, protocol = "TCP", nodePort = 30080},
          {name = "port-9090", port = 9090, targetPort = 9090, protocol = "TCP"},
        },
      },
    }, objects[2])
    -- Lists stay lists in JSON, even with one element.
    assert.is_true(json.is_array(objects[1].spec.template.spec.containers))
    assert.matches('"containers":%[', json.encode(objects[1]))
  end)

  it("never puts the run id into the pod template (that would roll the pods every run)", function()
    local a = manifests.for_task(model, task("services.web"), {run_id = "one", namespace = "x"})[1]
    local b = manifests.for_task(model, task("services.web"), {run_id = "two", namespace = "x"})[1]
    assert.same(a.spec, b.spec)
    assert.not_same(a.metadata.annotations, b.metadata.annotations)
  end)

  it("with loadbalancer: true is a LoadBalancer Service; a tcp_socket probe", function()
    local objects = manifests.for_task(model, task("services.lb"), OPTS)
    assert.equal("LoadBalancer", objects[2].spec.type)
    assert.same({tcpSocket = {port = 443}}, objects[1].spec.template.spec.containers[1].readinessProbe)
    assert.same({{containerPort = 443}}, objects[1].spec.template.spec.containers[1].ports)
  end)

  it("without ports has no Service, and takes the resources defaults", function()
    local objects = manifests.for_task(model, task("services.worker"), OPTS)
    assert.equal(1, #objects)
    local c = objects[1].spec.template.spec.containers[1]
    assert.same({name = "worker", image = "worker",
      resources = {limits = {cpu = "500m", memory = "256Mi"}, requests = {cpu = "50m", memory = "64Mi"}}}, c)
    assert.equal(1, objects[1].spec.replicas)
  end)
end)

describe("a job", function()
  it("is a Job named per run, with backoffLimit, activeDeadlineSeconds and a TTL", function()
    local objects = manifests.for_task(model, task("jobs.migrate"), OPTS)
    assert.equal(1, #objects)
    local job_labels = labels("migrate", "job")
    job_labels["moonship.dev/job"] = "migrate"
    assert.same({
      apiVersion = "batch/v1", kind = "Job",
      metadata = {name = "migrate-" .. SHORT, namespace = "shop-pr-5", labels = job_labels, annotations = ANNOTATIONS},
      spec = {
        backoffLimit = 1, activeDeadlineSeconds = 600, ttlSecondsAfterFinished = 3600,
        template = {
          metadata = {labels = job_labels},
          spec = {
            restartPolicy = "Never",
            containers = {{
              name = "migrate", image = "nginx:1.27", command = {"migrate", "up"},
              env = {{name = "MODE", value = "pr-5"}},
              -- from_services: the service's image, env, node selector and own resources.
              resources = {limits = {cpu = "500m", memory = "512Mi"}, requests = {cpu = "50m", memory = "64Mi"}},
            }},
            nodeSelector = {pool = "web"},
          },
        },
      },
    }, objects[1])
  end)

  it("runs once by default (backoffLimit 0) and has no deadline without completed_timeout", function()
    local job = manifests.for_task(model, task("jobs.once"), OPTS)[1]
    assert.equal(0, job.spec.backoffLimit)
    assert.is_nil(job.spec.activeDeadlineSeconds)
    assert.equal("once-" .. SHORT, job.metadata.name)
  end)

  it("needs a run id", function()
    assert.has_error(function() manifests.for_task(model, task("jobs.once"), {}) end)
  end)
end)

describe("a raw manifest", function()
  it("keeps its objects, namespaced into the environment unless cluster-scoped or set", function()
    local objects = manifests.for_task(model, task("manifests.extra"), OPTS)
    assert.equal(3, #objects)
    assert.same({
      apiVersion = "v1", kind = "ConfigMap",
      metadata = {name = "settings", namespace = "shop-pr-5", annotations = ANNOTATIONS, labels = {
        team = "web", ["app.kubernetes.io/part-of"] = "shop", ["app.kubernetes.io/managed-by"] = "moonship",
        ["moonship.dev/manifest"] = "extra"}},
      data = {mode = "fast", list = {}},
    }, objects[1])
    assert.equal('[]', json.encode(objects[1].data.list))
    assert.is_nil(objects[2].metadata.namespace)
    assert.equal("vault", objects[3].metadata.namespace)
  end)

  it("gives fresh copies: changing one does not change the model", function()
    local a = manifests.for_task(model, task("manifests.extra"), OPTS)
    a[1].data.mode = "slow"
    local b = manifests.for_task(model, task("manifests.extra"), OPTS)
    assert.equal("fast", b[1].data.mode)
    assert.is_nil(model.by_name.manifests.extra.objects[1].metadata.namespace)
  end)
end)

describe("other tasks", function()
  it("apply nothing", function()
    assert.same({}, manifests.for_task(model, task("release.remove_environment"), OPTS))
    assert.same({}, manifests.for_task(model, {id = "lua.notify", kind = "lua", name = "notify"}, OPTS))
  end)
end)

describe("manifests.all and manifests.for_workflow", function()
  local function ids(objects)
    local out = {}
    for i, o in ipairs(objects) do out[i] = o.kind .. "/" .. o.metadata.name end
    return out
  end

  it("render every object in file order, or a workflow's in step order", function()
    assert.same({"Deployment/web", "Service/web", "Deployment/lb", "Service/lb", "Deployment/worker",
      "Job/migrate-" .. SHORT, "Job/once-" .. SHORT, "ConfigMap/settings", "Namespace/shared-tools", "Secret/token"},
      ids(manifests.all(model, OPTS)))
    assert.same({"ConfigMap/settings", "Namespace/shared-tools", "Secret/token", "Job/migrate-" .. SHORT,
      "Deployment/web", "Service/web", "Deployment/lb", "Service/lb", "Deployment/worker"},
      ids(manifests.for_workflow(model, model.workflow_by_name.deploy, OPTS)))
  end)

  it("uses the model's namespace when none is given", function()
    local objects = manifests.all(model, {run_id = "r"})
    assert.equal("shop-pr-5", objects[1].metadata.namespace)
  end)
end)

-- The objects of ReleaseHub's other keys, from our classifieds fixture in ReleaseHub's format.
describe("hostnames, shared volumes, service accounts and cron jobs", function()
  local CLASSIFIEDS = "tests/fixtures/templates/releasehub-format/classifieds/application_template.yaml"
  local IMAGE = "registry.example.test/classifieds/api:abc123"
  local m = assert(template.load(CLASSIFIEDS, {env = "pr-3", images = {api = IMAGE}}))
  local O = {run_id = "r3"}

  local function by_id(objects)
    local out, order = {}, {}
    for i, o in ipairs(objects) do
      order[i] = o.kind .. "/" .. o.metadata.name
      out[order[i]] = o
    end
    return out, order
  end

  it("a service: its ServiceAccount and claims first, then Deployment, Service and Ingress", function()
    local objects, order = by_id(manifests.for_task(m, {kind = "services", name = "api"}, O))
    assert.same({"ServiceAccount/uploader", "PersistentVolumeClaim/photos", "Deployment/api", "Service/api",
      "Ingress/api"}, order)
    local labels = {["app.kubernetes.io/name"] = "uploader", ["app.kubernetes.io/part-of"] = "classifieds",
      ["app.kubernetes.io/managed-by"] = "moonship", ["app.kubernetes.io/component"] = "service-account"}
    -- an IAM role ARN is the annotation EKS reads
    assert.same({apiVersion = "v1", kind = "ServiceAccount", metadata = {name = "uploader", namespace = "classifieds-pr-3",
      labels = labels, annotations = {["moonship.dev/run"] = "r3",
        ["eks.amazonaws.com/role-arn"] = "arn:aws:iam::123456789012:role/classifieds-uploader"}}},
      objects["ServiceAccount/uploader"])
    -- mounted by two services: ReadWriteMany
    local claim = objects["PersistentVolumeClaim/photos"]
    assert.same({accessModes = {"ReadWriteMany"}, resources = {requests = {storage = "5Gi"}}}, claim.spec)
    assert.equal("volume", claim.metadata.labels["app.kubernetes.io/component"])
    local pod = objects["Deployment/api"].spec.template.spec
    assert.equal("uploader", pod.serviceAccountName)
    assert.same({{name = "photos", persistentVolumeClaim = {claimName = "photos"}}}, pod.volumes)
    assert.same({{name = "photos", mountPath = "/srv/photos"}}, pod.containers[1].volumeMounts)
    assert.equal(IMAGE, pod.containers[1].image)
    -- one rule per host: its hostname at /, the rule's path on another host; the first port
    local ing = objects["Ingress/api"]
    assert.same({["moonship.dev/run"] = "r3", ["nginx.ingress.kubernetes.io/proxy-body-size"] = "30m",
      ["nginx.ingress.kubernetes.io/proxy-read-timeout"] = "180", ["nginx.ingress.kubernetes.io/proxy-buffering"] = "on"},
      ing.metadata.annotations)
    local backend = {service = {name = "api", port = {number = 8080}}}
    assert.same({rules = {
      {host = "api-pr-3.ads.example.test", http = {paths = {{path = "/", pathType = "Prefix", backend = backend}}}},
      {host = "www-pr-3.ads.example.test", http = {paths = {{path = "/api", pathType = "Prefix", backend = backend}}}},
    }}, ing.spec)
  end)

  it("a cron job: a CronJob whose pods are a job's, and its ServiceAccount (a Google one)", function()
    local objects, order = by_id(manifests.for_task(m, {kind = "cron_jobs", name = "reindex"}, O))
    assert.same({"ServiceAccount/indexer", "CronJob/reindex"}, order)
    assert.same({["moonship.dev/run"] = "r3",
      ["iam.gke.io/gcp-service-account"] = "indexer@classifieds-prod.iam.gserviceaccount.com"},
      objects["ServiceAccount/indexer"].metadata.annotations)
    local cron = objects["CronJob/reindex"]
    assert.equal("*/30 * * * *", cron.spec.schedule)
    assert.is_nil(cron.spec.concurrencyPolicy)
    local job = cron.spec.jobTemplate.spec
    assert.equal(0, job.backoffLimit)
    assert.equal("Never", job.template.spec.restartPolicy)
    assert.equal("indexer", job.template.spec.serviceAccountName)
    assert.same({"./reindex"}, job.template.spec.containers[1].command)
    assert.equal(IMAGE, job.template.spec.containers[1].image)
    assert.equal("cron-job", job.template.metadata.labels["app.kubernetes.io/component"])
    local expire = manifests.for_task(m, {kind = "cron_jobs", name = "expire"}, O)
    assert.equal(1, #expire)
    assert.equal("Forbid", expire[1].spec.concurrencyPolicy)
  end)

  it("a chart applies nothing itself; a workflow's render has each shared object once", function()
    assert.same({}, manifests.for_task(m, {kind = "charts", name = "search"}, O))
    local _, order = by_id(manifests.for_workflow(m, m.workflow_by_name.setup, O))
    assert.same({"Deployment/db", "Service/db", "ServiceAccount/uploader", "Job/migrate-r3",
      "PersistentVolumeClaim/photos", "Deployment/api", "Service/api", "Ingress/api", "Deployment/web",
      "Service/web", "Ingress/web", "ServiceAccount/indexer", "CronJob/reindex", "CronJob/expire"}, order)
  end)
end)
