-- `moonship deploy` options and task kinds beyond the seed workflow: concurrency limits, step
-- timeouts, dry runs, release.remove_environment, and deploys written as Lua scripts.
local events = require "support.events"
local kubesim = require "support.kubesim"
local proc = require "support.proc"

local deploy, final_state = events.deploy, events.final_state

-- The largest number of tasks running at once, from the order of start/finish events.
local function peak_overlap(events)
  local running, peak = 0, 0
  for _, ev in ipairs(events) do
    if ev.event == "task_started" and (ev.attempt or 1) == 1 then running = running + 1 end
    if ev.event == "task_finished" and ev.state ~= "recovered" then running = running - 1 end
    peak = math.max(peak, running)
  end
  return peak
end

local FIVE = [[
app: five
services:
- {name: s1, image: example/s:1}
- {name: s2, image: example/s:1}
- {name: s3, image: example/s:1}
- {name: s4, image: example/s:1}
- {name: s5, image: example/s:1}
workflows:
- name: up
  parallelize:
  - step: all
    tasks: [services.all]
- name: two-at-a-time
  parallelize:
  - step: all
    max_parallel: 2
    tasks: [services.all]
- name: teardown
  order_from: [release.remove_environment]
]]

describe("moonship deploy options", function()
  local sim, dir
  before_each(function()
    sim = kubesim.start {time_scale = 0.05, scenario = "defaults: {start_delay: 1, ready_delay: 2}\n"}
    dir = proc.tmpdir()
    proc.write_file(dir .. "/moonship.yaml", FIVE)
  end)
  after_each(function() sim:stop() end)

  it("runs the tasks of a step side by side, or at most N with --concurrency / max_parallel", function()
    local code, ev = deploy(sim, {dir .. "/moonship.yaml", "-w", "up"})
    assert.equal(0, code)
    assert.equal(5, peak_overlap(ev))
    code, ev = deploy(sim, {dir .. "/moonship.yaml", "-w", "up", "--concurrency", "1"})
    assert.equal(0, code)
    assert.equal(1, peak_overlap(ev))
    code, ev = deploy(sim, {dir .. "/moonship.yaml", "-w", "two-at-a-time"})
    assert.equal(0, code)
    assert.equal(2, peak_overlap(ev))
  end)

  it("starts the tasks of a step longest first, by the last run's durations", function()
    -- the last run as the local journal recorded it: s4 took longest, s2 never finished
    local runs = dir .. "/.moonship/runs"
    assert.is_true(os.execute("mkdir -p '" .. runs .. "'"))
    local last = {app = "five", workflow = "up", tasks = {
      {id = "services.s1", state = "succeeded", started = 0.1, finished = 1.1},
      {id = "services.s2", state = "cancelled", started = 0.1},
      {id = "services.s3", state = "succeeded", started = 0.1, finished = 3.1},
      {id = "services.s4", state = "succeeded", started = 0.1, finished = 9.1},
      {id = "services.s5", state = "failed", started = 0.2, finished = 3.2},
    }}
    proc.write_file(runs .. "/last-five-up.json", require("moonship.json").encode(last))
    -- s2 (never finished) and s5 (failed) have no duration: a service's estimate (30 s) puts
    -- them first, in the template's order; then s4 (9 s), s3 (3 s), s1 (1 s)
    local want = {"services.s2", "services.s5", "services.s4", "services.s3", "services.s1"}
    -- `moonship plan` predicts that order (before the deploy records new durations)
    local r = proc.run {proc.moonship, "plan", dir .. "/moonship.yaml", "-w", "up", "--concurrency", "1",
                        "--format", "json"}
    assert.equal(0, r.code, r.stderr)
    local planned = require("moonship.json").decode(r.stdout).steps[1].tasks
    table.sort(planned, function(a, b) return a.start < b.start end)
    for i, tk in ipairs(planned) do planned[i] = tk.id end
    assert.same(want, planned)
    -- and the deploy starts them so
    local code, ev = deploy(sim, {dir .. "/moonship.yaml", "-w", "up", "--concurrency", "1"})
    assert.equal(0, code)
    local order = {}
    for _, e in ipairs(ev) do
      if e.event == "task_started" then order[#order + 1] = e.task end
    end
    assert.same(want, order)
    -- the step still lists its tasks as the template does
    for _, e in ipairs(ev) do
      if e.event == "step_started" then
        assert.same({"services.s1", "services.s2", "services.s3", "services.s4", "services.s5"}, e.tasks)
      end
    end
  end)

  it("--dry-run validates against the server and creates nothing", function()
    local code, ev, stderr = deploy(sim, {dir .. "/moonship.yaml", "-w", "up", "--dry-run"})
    assert.equal(0, code, stderr)
    assert.is_true(ev[1].dry_run)
    local status, list = sim:get_json("/apis/apps/v1/namespaces/default/deployments")
    assert.equal(200, status)
    assert.same({}, list.items)
  end)

  it("release.remove_environment deletes what the app owns and waits until it is gone", function()
    assert.equal(0, (deploy(sim, {dir .. "/moonship.yaml", "-w", "up"})))
    -- Something the app does not own stays.
    local other = proc.write_file(dir .. "/other.yaml", [[
apiVersion: apps/v1
kind: Deployment
metadata: {name: other, namespace: default}
spec:
  selector: {matchLabels: {app: other}}
  template:
    metadata: {labels: {app: other}}
    spec: {containers: [{name: main, image: nginx}]}
]])
    assert.equal(201, (sim:apply("/apis/apps/v1/namespaces/default/deployments/other", proc.read_file(other))))
    local code, ev = deploy(sim, {dir .. "/moonship.yaml", "-w", "teardown"})
    assert.equal(0, code)
    assert.equal("succeeded", final_state(ev, "release.remove_environment"))
    local names = {}
    for _, list_of in ipairs {{"Deployment", "/apis/apps/v1/namespaces/default/deployments"},
                              {"Service", "/api/v1/namespaces/default/services"}} do
      local status, list = sim:get_json(list_of[2])
      assert.equal(200, status)
      for _, item in ipairs(list.items) do
        if item.metadata.name ~= "kubernetes" then names[#names + 1] = list_of[1] .. "/" .. item.metadata.name end
      end
    end
    assert.same({"Deployment/other"}, names)
  end)

  it("a step timeout fails the tasks still running", function()
    proc.write_file(dir .. "/slow.yaml", [[
app: slow
services:
- {name: tortoise, image: example/slow:1}
workflows:
- name: up
  parallelize:
  - step: only
    timeout: 1
    tasks: [services.tortoise]
]])
    sim:stop()
    sim = kubesim.start {time_scale = 0.05, scenario = "workloads: {tortoise: {never_ready: true}}\n"}
    local code, ev = deploy(sim, {dir .. "/slow.yaml", "-w", "up", "--settle", "0"})
    assert.equal(3, code)
    assert.equal("failed", final_state(ev, "services.tortoise"))
    local finished
    for _, e in ipairs(ev) do if e.event == "task_finished" then finished = e end end
    assert.matches("step only timed out", finished.message)
  end)
end)

describe("deploys written in Lua", function()
  it("examples/shop/deploy.lua deploys the shop through require 'moonship'", function()
    local r = proc.run {proc.moonship, "run", proc.source_dir .. "/examples/shop/deploy.lua", "--sim",
                        env = {MOONSHIP_KUBESIM = os.getenv("MOONSHIP_KUBESIM")}}
    assert.equal(0, r.code, r.stderr)
    for _, task in ipairs {"services.frontend", "jobs.migrate", "jobs.scrub", "services.backend"} do
      assert.matches(task:gsub("%.", "%%.") .. "%s+succeeded", r.stdout)
    end
    assert.matches("run %S+: succeeded", r.stdout)
  end)

  it("runs unchanged under a stock lua5.4: kubesim found beside core.so, a failed deploy exits non-zero", function()
    local script = proc.source_dir .. "/examples/shop/deploy.lua"
    local dir = proc.tmpdir()
    local failing = proc.write_file(dir .. "/scenario.yaml", [[
defaults: {start_delay: 0.2, ready_delay: 0.3, duration: 1}
workloads:
  "scrub-*": {duration: 2, exit_code: 3, logs: ["cannot scrub"]}
]])
    -- no MOONSHIP_KUBESIM: the interpreter is /usr/bin's, so only core.so's place finds it
    local env = {MOONSHIP_KUBESIM = "", LD_PRELOAD = os.getenv("MOONSHIP_PRELOAD") or ""}
    local stock = proc.run {"lua5.4", script, "--sim", failing, env = env}
    assert.equal(1, stock.code, stock.stderr)
    assert.matches("jobs%.scrub%s+failed", stock.stdout)
    assert.matches("run %S+: halted\n$", stock.stdout)
    local run = proc.run {proc.moonship, "run", script, "--sim", failing, env = {MOONSHIP_KUBESIM = ""}}
    assert.equal(1, run.code, run.stderr)
    assert.matches("run %S+: halted\n$", run.stdout)
    os.execute("rm -rf " .. proc.quote(proc.source_dir .. "/examples/shop/.moonship"))
  end)

  it("does not start a run whose journal cannot be written: exit 2, nothing applied", function()
    local sim = kubesim.start {}
    finally(function() sim:stop() end)
    local dir = proc.tmpdir()
    proc.write_file(dir .. "/moonship.yaml", FIVE)
    local blocker = proc.write_file(dir .. "/not-a-directory", "")
    local code, ev, stderr = deploy(sim, {dir .. "/moonship.yaml", "-w", "up", "--journal-dir", blocker .. "/runs"})
    assert.equal(2, code, stderr)
    assert.same({}, ev)
    assert.matches("cannot write the run journal: " .. blocker:gsub("%p", "%%%0") .. "/runs/%S+%.jsonl: Not a directory",
      stderr)
    assert.equal(404, (sim:get_json("/apis/apps/v1/namespaces/default/deployments/s1")))
  end)

  it("wraps a script's work in sched.run: the same file under moonship run and lua5.4", function()
    local script = proc.write_file(proc.tmpdir() .. "/both.lua", [[
local sched = require "moonship.sched"
local a, b = sched.run(function()
  return sched.all {function() sched.sleep(0.01) return "x" end, function() return "y" end}
end)
print(a .. b)
]])
    local stock = proc.run {"lua5.4", script, env = {LD_PRELOAD = os.getenv("MOONSHIP_PRELOAD") or ""}}
    assert.equal(0, stock.code, stock.stderr)
    assert.equal("xy\n", stock.stdout)
    local run = proc.run {proc.moonship, "run", script}
    assert.equal(0, run.code, run.stderr)
    assert.equal("xy\n", run.stdout)
  end)
end)
