-- The run history and rollbacks on kubesim: a release whose new image crash-loops under
-- halt_on_error, then `moonship rollback` brings back the previous image and the Deployment is
-- available again (asserted from the JSON events and from the object kubesim holds); `history`
-- lists the runs; --history keeps N; on_error "rollback" does it in the same run; --to.
local json = require "moonship.json"
local events = require "support.events"
local kubesim = require "support.kubesim"
local proc = require "support.proc"
local releases = require "support.releases"

local deploy, find, index_of, final_state = events.deploy, events.find, events.index_of, events.final_state

local SCENARIO = releases.SCENARIO

-- Release `version` (its web image example/web:<version>) written in dir.
local function template(dir, version, hooks) return releases.write(dir, version, {hooks = hooks}) end

-- `moonship <command> args... --kubeconfig` against sim: exit code, stdout, stderr.
local function moonship(sim, command, args)
  local argv = {proc.moonship, command}
  for _, a in ipairs(args) do argv[#argv + 1] = a end
  argv[#argv + 1] = "--kubeconfig"
  argv[#argv + 1] = sim.kubeconfig
  local r = proc.run(argv)
  return r.code, r.stdout, r.stderr
end

-- `moonship rollback ... -o json`: exit code, events, stderr.
local function rollback(sim, args)
  local all = {"-o", "json"}
  for _, a in ipairs(args) do all[#all + 1] = a end
  local code, out, err = moonship(sim, "rollback", all)
  return code, events.decode(out), err
end

-- `moonship history ... -o json`: the runs, newest first.
local function runs(sim, args)
  local all = {"-o", "json"}
  for _, a in ipairs(args) do all[#all + 1] = a end
  local code, out, err = moonship(sim, "history", all)
  assert.equal(0, code, err)
  return json.decode(out)
end

-- What kubesim holds: the Deployment web, and the run records of the namespace.
local function web(sim, ns)
  local code, obj = sim:get_json("/apis/apps/v1/namespaces/" .. ns .. "/deployments/web")
  assert.equal(200, code)
  return obj
end

local function image(obj) return obj.spec.template.spec.containers[1].image end

local function available(obj)
  for _, c in ipairs(obj.status.conditions or {}) do
    if c.type == "Available" then return c.status == "True" end
  end
  return false
end

local function records(sim, ns)
  local code, list = sim:get_json("/api/v1/namespaces/" .. ns .. "/secrets?labelSelector=moonship.dev/app%3Dshop")
  assert.equal(200, code)
  local names = {}
  for _, s in ipairs(list.items) do
    if s.type == "moonship.dev/run.v1" then names[#names + 1] = s.metadata.name end
  end
  table.sort(names)
  return names
end

local function jobs(sim, ns)
  local _, list = sim:get_json("/apis/batch/v1/namespaces/" .. ns .. "/jobs")
  return #list.items
end

describe("moonship rollback", function()
  local sim
  lazy_setup(function() sim = kubesim.start {scenario = SCENARIO, time_scale = 0.05} end)
  lazy_teardown(function() if sim then sim:stop() end end)

  it("brings back the previous image after a release that crash-loops, and the Deployment is available again",
    function()
    local dir, ns = proc.tmpdir(), "rb-crash"
    local code, ev1, err = deploy(sim, {template(dir, 1), "-w", "deploy", "-n", ns})
    assert.equal(0, code, err)
    local v1 = find(ev1, {event = "run_finished"}).run
    assert.equal("example/web:1", image(web(sim, ns)))

    -- release 2: its image crash-loops; halt_on_error stops the run
    local ev2
    code, ev2, err = deploy(sim, {template(dir, 2), "-w", "deploy", "-n", ns})
    assert.equal(1, code, err)
    local failed = find(ev2, {event = "task_finished", task = "services.web"})
    assert.same({"failed", "CrashLoopBackOff"}, {failed.state, failed.reason})
    assert.equal("halted", find(ev2, {event = "run_finished"}).state)
    local v2 = find(ev2, {event = "run_finished"}).run
    assert.equal("example/web:2", image(web(sim, ns)))

    -- the rollback: v1's recorded objects, through the engine
    local ev
    code, ev, err = rollback(sim, {dir .. "/moonship.yaml", "-n", ns})
    assert.equal(0, code, err)
    local started = find(ev, {event = "run_started"})
    assert.equal(v1, started.rollback_of)
    local marker = find(ev, {event = "rollback_started"})
    assert.same({v1, 1, "deploy", "command"}, {marker.to, marker.revision, marker.target_workflow, marker.reason})
    assert.same({"rollback.migrate", "rollback.web"}, {marker.plan[1].step, marker.plan[2].step})
    -- the same steps and waits as a deploy: the Deployment was waited for until rolled out
    assert.is_true(index_of(ev, {event = "step_finished", step = "rollback.migrate"})
      < index_of(ev, {event = "step_started", step = "rollback.web"}))
    assert.equal("succeeded", final_state(ev, "rollback.services.web"))
    local applied = find(ev, {event = "task_progress", task = "rollback.services.web", phase = "applied"})
    assert.equal("Deployment", applied.objects[1].kind)
    -- jobs are not run again
    assert.equal("skipped", final_state(ev, "rollback.jobs.migrate"))
    assert.equal(2, jobs(sim, ns))
    assert.same({"succeeded", 0}, {find(ev, {event = "run_finished"}).state, find(ev, {event = "run_finished"}).exit_code})

    -- and kubesim holds release 1's Deployment, rolled out and available
    local obj = web(sim, ns)
    assert.equal("example/web:1", image(obj))
    assert.is_true(obj.status.observedGeneration >= obj.metadata.generation)
    assert.same({2, 2}, {obj.status.updatedReplicas, obj.status.availableReplicas})
    assert.is_nil(obj.status.unavailableReplicas)
    assert.is_true(available(obj))

    -- history: newest first; the rollback has release 1's template hash
    local list = runs(sim, {dir .. "/moonship.yaml", "-n", ns})
    assert.equal(3, #list)
    assert.same({3, 2, 1}, {list[1].revision, list[2].revision, list[3].revision})
    assert.same({"succeeded", "halted", "succeeded"}, {list[1].state, list[2].state, list[3].state})
    assert.same({v2, v1}, {list[2].run, list[3].run})
    assert.equal(v1, list[1].rollback_of)
    assert.equal(list[3].template_hash, list[1].template_hash)
    assert.are_not.equal(list[2].template_hash, list[3].template_hash)
    assert.equal("moonship.run.v1.shop.local.3", list[1].secret)
    -- as text, the same rows
    local _, text = moonship(sim, "history", {dir .. "/moonship.yaml", "-n", ns})
    assert.matches("^REVISION%s+RUN%s+WORKFLOW%s+STATE%s+FINISHED%s+TEMPLATE%s+DESCRIPTION\n", text)
    assert.matches("\n3%s+" .. list[1].run:gsub("%-", "%%-") .. "%s+deploy%s+succeeded%s+.-rollback to "
      .. v1:gsub("%-", "%%-") .. "\n", text)

    -- a second rollback goes back further: v2 never succeeded, so to v1 again
    code, ev, err = rollback(sim, {dir .. "/moonship.yaml", "-n", ns})
    assert.equal(0, code, err)
    assert.equal(v1, find(ev, {event = "rollback_started"}).to)
  end)

  it("prunes what the run it goes back to did not have: a service release 2 added goes, nothing else", function()
    local dir, ns = proc.tmpdir(), "rb-prune"
    local code, _, err = deploy(sim, {template(dir, 1), "-w", "deploy", "-n", ns})
    assert.equal(0, code, err)
    -- release 2 adds the service extra (applied in the first step) and crash-loops web
    releases.write(dir, 2, {extra = true})
    code, _, err = deploy(sim, {dir .. "/moonship.yaml", "-w", "deploy", "-n", ns})
    assert.equal(1, code, err)
    assert.equal(200, (sim:get_json("/apis/apps/v1/namespaces/" .. ns .. "/deployments/extra")))
    -- a foreign Deployment with the app's label, not a member of the set: untouched
    assert.equal(201, (sim:apply("/apis/apps/v1/namespaces/" .. ns .. "/deployments/foreign",
      json.encode {apiVersion = "apps/v1", kind = "Deployment",
                   metadata = {name = "foreign", labels = {["app.kubernetes.io/part-of"] = "shop"}},
                   spec = {selector = {matchLabels = {app = "foreign"}},
                           template = {metadata = {labels = {app = "foreign"}},
                                       spec = {containers = {{name = "c", image = "example/foreign:1"}}}}}},
      "someone-else")))

    local ev
    code, ev, err = rollback(sim, {dir .. "/moonship.yaml", "-n", ns})
    assert.equal(0, code, err)
    assert.equal("succeeded", final_state(ev, "rollback.services.web"))
    assert.equal("succeeded", final_state(ev, "rollback.prune"))
    assert.is_true(index_of(ev, {event = "step_finished", step = "rollback.web"})
      < index_of(ev, {event = "step_started", step = "rollback.prune"}))
    local deleted = {}
    for _, e in ipairs(ev) do
      if e.event == "task_progress" and e.task == "rollback.prune" and e.phase == "deleted" then
        deleted[#deleted + 1] = e.objects[1].kind .. "/" .. e.objects[1].name
      end
    end
    table.sort(deleted)
    assert.same({"Deployment/extra", "Service/extra"}, deleted)
    -- gone (the step waited for it), and what release 1 had and the foreign object stay
    assert.equal(404, (sim:get_json("/apis/apps/v1/namespaces/" .. ns .. "/deployments/extra")))
    assert.equal(404, (sim:get_json("/api/v1/namespaces/" .. ns .. "/services/extra")))
    assert.equal("example/web:1", image(web(sim, ns)))
    assert.equal(200, (sim:get_json("/apis/apps/v1/namespaces/" .. ns .. "/deployments/foreign")))
    assert.equal(2, jobs(sim, ns))
  end)

  it("goes to --to (a run id or a revision), refuses a run that did not succeed, and returns", function()
    local dir, ns = proc.tmpdir(), "rb-to"
    local path = template(dir, 1)
    local _, ev1 = deploy(sim, {path, "-w", "deploy", "-n", ns})
    local v1 = find(ev1, {event = "run_finished"}).run
    local code, ev3, err = deploy(sim, {template(dir, 3), "-w", "deploy", "-n", ns})
    assert.equal(0, code, err)
    local v3 = find(ev3, {event = "run_finished"}).run
    local _, ev2 = deploy(sim, {template(dir, 2), "-w", "deploy", "-n", ns})
    local v2 = find(ev2, {event = "run_finished"}).run

    local ev
    code, ev, err = rollback(sim, {path, "-n", ns, "--to", v1})
    assert.equal(0, code, err)
    assert.equal(v1, find(ev, {event = "rollback_started"}).to)
    assert.equal("example/web:1", image(web(sim, ns)))
    -- by the revision history lists, back to release 3
    code, ev, err = rollback(sim, {path, "-n", ns, "--to", "2"})
    assert.equal(0, code, err)
    assert.equal(v3, find(ev, {event = "rollback_started"}).to)
    local obj = web(sim, ns)
    assert.same({"example/web:3", true}, {image(obj), available(obj)})

    code, ev, err = rollback(sim, {path, "-n", ns, "--to", v2})
    assert.equal(2, code)
    assert.same({}, ev)
    assert.matches("moonship: rollback: run " .. v2:gsub("%-", "%%-") .. " ended halted: a rollback goes back to a run "
      .. "that succeeded %(app shop, environment local, namespace rb%-to; moonship history lists the runs%)", err)
    code, _, err = rollback(sim, {path, "-n", ns, "--to", "20990101-000000-000000"})
    assert.equal(2, code)
    assert.matches("no run 20990101%-000000%-000000 is recorded", err)
  end)

  it("does the same from a script: moonship.deploy, moonship.rollback and moonship.history", function()
    local dir, ns = proc.tmpdir(), "rb-script"
    template(dir, 1)
    local script = proc.write_file(dir .. "/roll.lua", ([[
local moonship = require "moonship"
local path, kc, ns = %q, %q, %q
local function deploy(version)
  local f = assert(io.open(path, "rb"))
  local text = f:read("a"):gsub("example/web:%%d", "example/web:" .. version)
  f:close()
  f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
  return moonship.deploy(path, {workflow = "deploy", kubeconfig = kc, namespace = ns}).exit_code
end
local first, second = deploy(1), deploy(2)
local back = moonship.rollback(path, {kubeconfig = kc, namespace = ns})
local runs = moonship.history(path, {kubeconfig = kc, namespace = ns}).runs
print(first, second, back.exit_code, back.state, #runs, runs[1].rollback_of == runs[3].run)
]]):format(dir .. "/moonship.yaml", sim.kubeconfig, ns))
    local r = proc.run {proc.moonship, "run", script}
    assert.equal(0, r.code, r.stderr)
    assert.equal("0\t1\t0\tsucceeded\t3\ttrue\n", r.stdout)
    assert.equal("example/web:1", image(web(sim, ns)))
  end)

  it("with nothing to go back to, says why and exits 2, applying nothing", function()
    local dir = proc.tmpdir()
    local code, ev, err = rollback(sim, {template(dir, 1), "-n", "rb-none"})
    assert.equal(2, code)
    assert.same({}, ev)
    assert.equal("moonship: rollback: no runs are recorded (app shop, environment local, namespace rb-none; "
      .. "moonship history lists the runs)\n", err)
    -- history of a namespace that does not exist: no runs, not created
    local list = runs(sim, {dir .. "/moonship.yaml", "-n", "rb-none"})
    assert.same({}, list)
    assert.equal(404, (sim:get_json("/api/v1/namespaces/rb-none")))
  end)

  it("records no dry run, and a rollback's dry run applies and records nothing", function()
    local dir, ns = proc.tmpdir(), "rb-dry"
    local path = template(dir, 1)
    local code, _, err = deploy(sim, {path, "-w", "deploy", "-n", ns})
    assert.equal(0, code, err)
    code, _, err = deploy(sim, {template(dir, 3), "-w", "deploy", "-n", ns})
    assert.equal(0, code, err)
    code, _, err = deploy(sim, {template(dir, 2), "-w", "deploy", "-n", ns, "--dry-run"})
    assert.equal(0, code, err)
    assert.equal(2, #records(sim, ns))
    local generation = web(sim, ns).metadata.generation
    local ev
    code, ev, err = rollback(sim, {path, "-n", ns, "--dry-run"})
    assert.equal(0, code, err)
    assert.is_true(find(ev, {event = "rollback_started"}).dry_run)
    assert.truthy(find(ev, {event = "task_progress", task = "rollback.services.web",
                            message = "would apply deployment/web (the server's dry run passed)"}))
    local obj = web(sim, ns)
    assert.same({"example/web:3", generation}, {image(obj), obj.metadata.generation})
    assert.equal(2, #records(sim, ns))
  end)

  it("keeps the newest --history records", function()
    local dir, ns = proc.tmpdir(), "rb-keep"
    local path = template(dir, 1)
    for _ = 1, 3 do
      local code, _, err = deploy(sim, {path, "-w", "deploy", "-n", ns, "--history", "2"})
      assert.equal(0, code, err)
    end
    assert.same({"moonship.run.v1.shop.local.2", "moonship.run.v1.shop.local.3"}, records(sim, ns))
    local list = runs(sim, {path, "-n", ns, "-w", "deploy"})
    assert.same({3, 2}, {list[1].revision, list[2].revision})
    assert.same({}, runs(sim, {path, "-n", ns, "-w", "other"}))
    -- the default keeps 10
    for _ = 1, 9 do deploy(sim, {path, "-w", "deploy", "-n", ns}) end
    assert.equal(10, #records(sim, ns))
  end)
end)

describe("on_error \"rollback\"", function()
  local sim
  lazy_setup(function() sim = kubesim.start {scenario = SCENARIO, time_scale = 0.05} end)
  lazy_teardown(function() if sim then sim:stop() end end)

  local HOOKS = [[
return {
  on_error = function(ctx, task, err) return "rollback" end,
  cleanup = function(ctx, run, reason) ctx.log("cleanup: %s", reason) end,
}
]]

  it("halts the run, cleans up, and rolls back to the last good run in the same run and journal", function()
    local dir, ns = proc.tmpdir(), "rb-hook"
    local code, ev1, err = deploy(sim, {template(dir, 1), "-w", "deploy", "-n", ns})
    assert.equal(0, code, err)
    local v1 = find(ev1, {event = "run_finished"}).run

    local ev
    code, ev, err = deploy(sim, {template(dir, 2, HOOKS), "-w", "deploy", "-n", ns,
                                 "--report", dir .. "/run.html"})
    assert.equal(1, code, err) -- the halted run's exit code, whatever the rollback did
    local halting = find(ev, {event = "run_halting"})
    assert.same({"services.web", "on_error", true}, {halting.task, halting.cause, halting.rollback})
    local i_cleanup = index_of(ev, {event = "log", message = "cleanup: halted"})
    local i_rollback = index_of(ev, {event = "rollback_started"})
    assert.truthy(i_cleanup and i_rollback)
    assert.is_true(index_of(ev, {event = "step_finished", step = "web"}) < i_cleanup)
    assert.is_true(i_cleanup < i_rollback)
    local marker = ev[i_rollback]
    assert.same({v1, "on_error"}, {marker.to, marker.reason})
    local rb_step = find(ev, {event = "step_started", step = "rollback.web"})
    assert.equal(4, rb_step.index) -- after the halted run's two steps
    assert.equal("succeeded", final_state(ev, "rollback.services.web"))
    assert.equal("failed", final_state(ev, "services.web"))
    local finished = ev[#ev]
    assert.same({"run_finished", "halted", 1, "succeeded"},
      {finished.event, finished.state, finished.exit_code, finished.rollback})
    -- one run: every event has its id
    for _, e in ipairs(ev) do assert.equal(finished.run, e.run) end

    local obj = web(sim, ns)
    assert.same({"example/web:1", true, 2}, {image(obj), available(obj), obj.status.availableReplicas})

    -- recorded: the halted run, then its rollback (under the same run id)
    local list = runs(sim, {dir .. "/moonship.yaml", "-n", ns})
    assert.same({"succeeded", "halted", "succeeded"}, {list[1].state, list[2].state, list[3].state})
    assert.same({finished.run, finished.run, v1}, {list[1].run, list[2].run, list[1].rollback_of})

    -- the report shows both parts
    local page = proc.read_file(dir .. "/run.html")
    assert.matches("rollback to run <code>" .. v1:gsub("%-", "%%-") .. "</code> %(revision 1%), asked by on_error: succeeded", page)
    assert.truthy(page:find("rollback.services.web", 1, true))
  end)

  it("with no earlier good run, says so and ends with the halted run's exit code", function()
    local dir, ns = proc.tmpdir(), "rb-hook-none"
    local code, ev = deploy(sim, {template(dir, 2, HOOKS), "-w", "deploy", "-n", ns})
    assert.equal(1, code)
    assert.truthy(find(ev, {event = "log",
      message = "rollback: nothing to roll back to in namespace rb-hook-none: no earlier run succeeded"}))
    assert.is_nil(find(ev, {event = "rollback_started"}))
    assert.same({"halted", "unavailable"}, {ev[#ev].state, ev[#ev].rollback})
  end)
end)
