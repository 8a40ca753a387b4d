-- `moonship deploy` on kubesim of ReleaseHub's keys beyond services and jobs (our classifieds
-- fixture in ReleaseHub's format): hostnames and rules as Ingresses, shared volumes as claims,
-- service accounts with their cloud role, cron jobs, an environment template picked by --env,
-- --image for a service ReleaseHub builds, and charts installed by helm. No helm package is in
-- the registries this project installs from (Debian bookworm, PyPI and npm have none), so the
-- charts tests put a helm of their own on PATH: a script that records its arguments, fails, or
-- hangs, as each test needs.
local events = require "support.events"
local kubesim = require "support.kubesim"
local proc = require "support.proc"

local deploy, find, final_states = events.deploy, events.find, events.final_states

local FIXTURE = proc.source_dir .. "/tests/fixtures/templates/releasehub-format/classifieds"
local IMAGE = "registry.example.test/classifieds/api:abc123"
local SCENARIO = [[
defaults: {start_delay: 0.2, ready_delay: 0.3, duration: 0.5}
]]

-- A copy of the fixture (journals stay out of the tree) and a bin/ for a helm of our own.
local function copy()
  local dir = proc.tmpdir()
  os.execute(("cp -r %s/. %s && mkdir -p %s/bin"):format(proc.quote(FIXTURE), proc.quote(dir), proc.quote(dir)))
  return dir, dir .. "/application_template.yaml"
end

-- A helm on PATH that runs body (sh), with $LOG naming where it may write.
local function fake_helm(dir, body)
  local path = proc.write_file(dir .. "/bin/helm", "#!/bin/sh\nLOG=" .. proc.quote(dir .. "/helm.log") .. "\n" .. body)
  os.execute("chmod +x " .. proc.quote(path))
  return {PATH = dir .. "/bin:/usr/bin:/bin"}
end

local RECORD = [[
for a in "$@"; do printf '%s\n' "$a"; done >"$LOG"
printf 'KUBECONFIG=%s\n' "$KUBECONFIG" >>"$LOG"
echo 'Release "search" has been upgraded. Happy Helming!'
]]

local function lines(path)
  local out = {}
  for line in io.lines(path) do out[#out + 1] = line end
  return out
end

describe("moonship deploy: ReleaseHub's hostnames, volumes, accounts, cron jobs and charts", function()
  local sim
  after_each(function() if sim then sim:stop() sim = nil end end)

  it("deploys each as its objects, and installs the chart with helm", function()
    sim = kubesim.start {scenario = SCENARIO, time_scale = 0.05}
    local dir, tpl = copy()
    local env = fake_helm(dir, RECORD)
    local code, ev, stderr = deploy(sim, {tpl, "-w", "setup", "--env", "pr-3", "--image", "api=" .. IMAGE}, env)
    assert.equal(0, code, stderr)
    assert.same({["services.db"] = "succeeded", ["charts.search"] = "succeeded", ["jobs.migrate"] = "succeeded",
      ["services.api"] = "succeeded", ["services.web"] = "succeeded", ["cron_jobs.reindex"] = "succeeded",
      ["cron_jobs.expire"] = "succeeded"}, final_states(ev))

    local ns = "/namespaces/classifieds-pr-3/"
    -- hostnames and the rule: the api's Ingress, with an address from kubesim's controller
    local status, ing = sim:get_json("/apis/networking.k8s.io/v1" .. ns .. "ingresses/api")
    assert.equal(200, status)
    assert.equal("api-pr-3.ads.example.test", ing.spec.rules[1].host)
    assert.equal("www-pr-3.ads.example.test", ing.spec.rules[2].host)
    assert.equal("/api", ing.spec.rules[2].http.paths[1].path)
    assert.equal(8080, ing.spec.rules[1].http.paths[1].backend.service.port.number)
    assert.equal("30m", ing.metadata.annotations["nginx.ingress.kubernetes.io/proxy-body-size"])
    assert.equal("192.0.2.1", ing.status.loadBalancer.ingress[1].ip)
    assert.equal("www-pr-3.ads.example.test", select(2, sim:get_json("/apis/networking.k8s.io/v1" .. ns .. "ingresses/web")).spec.rules[1].host)
    -- the shared volume: one claim, bound, mounted by both services
    local _, pvc = sim:get_json("/api/v1" .. ns .. "persistentvolumeclaims/photos")
    assert.equal("Bound", pvc.status.phase)
    assert.same({"ReadWriteMany"}, pvc.spec.accessModes)
    assert.equal("5Gi", pvc.spec.resources.requests.storage)
    for _, name in ipairs {"api", "web"} do
      local _, d = sim:get_json("/apis/apps/v1" .. ns .. "deployments/" .. name)
      assert.equal("photos", d.spec.template.spec.volumes[1].persistentVolumeClaim.claimName)
    end
    -- service accounts with their cloud role; the api runs as its own, with --image's image
    local _, sa = sim:get_json("/api/v1" .. ns .. "serviceaccounts/uploader")
    assert.equal("arn:aws:iam::123456789012:role/classifieds-uploader", sa.metadata.annotations["eks.amazonaws.com/role-arn"])
    local _, api = sim:get_json("/apis/apps/v1" .. ns .. "deployments/api")
    assert.equal("uploader", api.spec.template.spec.serviceAccountName)
    assert.equal(IMAGE, api.spec.template.spec.containers[1].image)
    -- cron jobs
    local _, cron = sim:get_json("/apis/batch/v1" .. ns .. "cronjobs/reindex")
    assert.equal("*/30 * * * *", cron.spec.schedule)
    assert.equal("indexer", cron.spec.jobTemplate.spec.template.spec.serviceAccountName)
    local _, gsa = sim:get_json("/api/v1" .. ns .. "serviceaccounts/indexer")
    assert.equal("indexer@classifieds-prod.iam.gserviceaccount.com", gsa.metadata.annotations["iam.gke.io/gcp-service-account"])
    assert.equal("Forbid", select(2, sim:get_json("/apis/batch/v1" .. ns .. "cronjobs/expire")).spec.concurrencyPolicy)
    -- helm: the chart into the environment's namespace, on the run's cluster; its output logged
    assert.same({"upgrade", "--install", "search", dir .. "/charts/search", "--namespace", "classifieds-pr-3",
      "--wait", "--timeout", "600s", "--values", dir .. "/charts/search/values.yaml", "--kube-context", "kubesim",
      "KUBECONFIG=" .. sim.kubeconfig}, lines(dir .. "/helm.log"))
    assert.truthy(find(ev, {event = "log", task = "charts.search", message = 'Release "search" has been upgraded. Happy Helming!'}))

    -- release.remove_environment deletes them all
    code, ev, stderr = deploy(sim, {tpl, "-w", "teardown", "--env", "pr-3"}, env)
    assert.equal(0, code, stderr)
    for _, path in ipairs {"/apis/networking.k8s.io/v1" .. ns .. "ingresses/api", "/api/v1" .. ns .. "persistentvolumeclaims/photos",
        "/api/v1" .. ns .. "serviceaccounts/uploader", "/apis/batch/v1" .. ns .. "cronjobs/reindex"} do
      assert.equal(404, (sim:request("GET", path)), path)
    end
  end)

  it("--env permanent deploys that environment template's overrides", function()
    sim = kubesim.start {scenario = SCENARIO, time_scale = 0.05}
    local dir, tpl = copy()
    local code, _, stderr = deploy(sim, {tpl, "-w", "frontend", "--env", "permanent"}, fake_helm(dir, RECORD))
    assert.equal(0, code, stderr)
    local ns = "/namespaces/classifieds-permanent/"
    local _, web = sim:get_json("/apis/apps/v1" .. ns .. "deployments/web")
    assert.equal(3, web.spec.replicas)
    assert.equal("1Gi", web.spec.template.spec.containers[1].resources.limits.memory)
    local _, ing = sim:get_json("/apis/networking.k8s.io/v1" .. ns .. "ingresses/web")
    assert.equal("www.ads.example.test", ing.spec.rules[1].host)
  end)

  it("a workflow that needs a service ReleaseHub builds exits 2 without --image; one that does not deploys", function()
    sim = kubesim.start {scenario = SCENARIO, time_scale = 0.05}
    local dir, tpl = copy()
    local env = fake_helm(dir, RECORD)
    local code, ev, stderr = deploy(sim, {tpl, "-w", "setup", "--env", "pr-3"}, env)
    assert.equal(2, code)
    assert.same({}, ev)
    assert.equal(table.concat({
      tpl .. ":87:3: error: jobs.migrate runs service 'api' (from_services): service 'api' is built from 'api' by ReleaseHub: pass --image api=REF",
      tpl .. ":62:3: error: services.api: service 'api' is built from 'api' by ReleaseHub: pass --image api=REF",
      tpl .. ":91:3: error: cron_jobs.reindex runs service 'api' (from_services): service 'api' is built from 'api' by ReleaseHub: pass --image api=REF",
    }, "\n") .. "\n", stderr)
    -- nothing was applied, not even the namespace
    assert.equal(404, (sim:request("GET", "/api/v1/namespaces/classifieds-pr-3")))
    assert.is_false(proc.exists(dir .. "/helm.log"))
    code, ev, stderr = deploy(sim, {tpl, "-w", "frontend", "--env", "pr-3"}, env)
    assert.equal(0, code, stderr)
    assert.same({["services.web"] = "succeeded"}, final_states(ev))
    assert.equal(tpl .. ":62:3: warning: service 'api' is built from 'api' by ReleaseHub: pass --image api=REF\n",
      stderr:match("^[^\n]*\n"))
  end)

  it("an --image that names nothing, or is not NAME=REF, exits 2", function()
    sim = kubesim.start {scenario = SCENARIO, time_scale = 0.05}
    local _, tpl = copy()
    local code, _, stderr = deploy(sim, {tpl, "-w", "frontend", "--image", "apii=" .. IMAGE})
    assert.equal(2, code)
    assert.matches(tpl:gsub("%p", "%%%0") .. ":56:1: error: %-%-image apii=registry.example.test/classifieds/api:abc123: the template has no service or job 'apii' %(did you mean 'api'%?%)\n", stderr)
    code, _, stderr = deploy(sim, {tpl, "-w", "frontend", "--image", "api"})
    assert.equal(2, code)
    assert.equal("moonship deploy: --image must be NAME=REF, like backend=registry.example/backend:1.2 (got 'api')\n"
      .. "Run 'moonship deploy --help' for its options.\n", stderr)
  end)

  it("a chart without helm on PATH fails its task with the reason; the run goes on", function()
    sim = kubesim.start {scenario = SCENARIO, time_scale = 0.05}
    local dir, tpl = copy()
    local code, ev, stderr = deploy(sim, {tpl, "-w", "setup", "--image", "api=" .. IMAGE, "--settle", "0"},
      {PATH = dir .. "/bin:/usr/bin:/bin"})
    assert.equal(3, code, stderr)
    local failed = find(ev, {event = "task_finished", task = "charts.search"})
    assert.equal("failed", failed.state)
    assert.equal("helm is not on PATH: charts are installed with helm upgrade --install (install helm, or define tasks.charts in a hooks file)",
      failed.message)
    assert.equal("succeeded", final_states(ev)["services.web"])
  end)

  it("a helm that fails fails the task with its last line; one that hangs is ended with its task", function()
    sim = kubesim.start {scenario = SCENARIO, time_scale = 0.05}
    local dir, tpl = copy()
    local env = fake_helm(dir, "echo 'Error: INSTALLATION FAILED: chart requires kubeVersion >=1.40' >&2\nexit 1\n")
    local code, ev = deploy(sim, {tpl, "-w", "setup", "--image", "api=" .. IMAGE, "--settle", "0"}, env)
    assert.equal(3, code)
    assert.equal("helm upgrade --install search exited with code 1: Error: INSTALLATION FAILED: chart requires kubeVersion >=1.40",
      find(ev, {event = "task_finished", task = "charts.search"}).message)

    -- A step timeout cancels the task: helm is ended, not left running.
    proc.write_file(dir .. "/hang.yaml", [[
app: classifieds
charts:
- name: search
  directory: charts/search
services: []
workflows:
- name: search
  parallelize:
  - step: install
    timeout: 1
    tasks: [charts.search]
]])
    env = fake_helm(dir, "echo $$ >\"$LOG\"\nexec sleep 120\n")
    code, ev = deploy(sim, {dir .. "/hang.yaml", "-w", "search"}, env)
    assert.equal(3, code)
    local finished = find(ev, {event = "task_finished", task = "charts.search"})
    assert.equal("failed", finished.state)
    assert.equal("step install timed out", finished.message)
    local pid = proc.read_file(dir .. "/helm.log"):match("%d+")
    assert.truthy(pid)
    assert.is_false(os.execute("kill -0 " .. pid .. " 2>/dev/null") == true, "helm " .. pid .. " still runs")
  end)

  it("a file that is not an application template exits 2, naming its keys", function()
    sim = kubesim.start {scenario = SCENARIO, time_scale = 0.05}
    local dir = proc.tmpdir()
    local path = proc.write_file(dir .. "/release.yaml", "application:\n  name: shop\ndockerCompose: docker-compose.yml\n")
    local code, _, stderr = deploy(sim, {path, "-w", "setup"})
    assert.equal(2, code)
    assert.equal(path .. ":1:1: error: not an application template: it has none of the keys services, jobs, workflows, manifests (found: application, dockerCompose)\n",
      stderr)
    local r = proc.run {proc.moonship, "validate", path}
    assert.equal(2, r.code)
    assert.equal(path .. ":1:1: error: not an application template: it has none of the keys services, jobs, workflows, manifests (found: application, dockerCompose)\n"
      .. path .. ": invalid: 1 error, 0 warnings\n", r.stderr)
  end)
end)
