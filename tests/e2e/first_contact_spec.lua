-- Where a new user first lands, end to end: a terminal that reports no size, hooks that will not
-- stop (instruction loops wrapped in pcall, under a budget, a step timeout and signals), two and
-- three Ctrl-Cs while the cleanup hook runs, SIGKILL with --sim. Every assertion reads the run's
-- JSON events, its journal or what outlived it; signals are sent when a line is printed
-- (tests/support/interrupt-at), never after a sleep.
local proc = require "support.proc"
local events = require "support.events"

local find, final_state = events.find, events.final_state
local INTERRUPT_AT = proc.source_dir .. "/tests/support/interrupt-at"

local TEMPLATE = [[
app: adv
services:
- name: web
  image: example/web:1
workflows:
- name: spin
  parallelize:
  - step: one
    tasks: [services.web, lua.spin]
- name: lonely
  parallelize:
  - step: one
    tasks: [lua.spin]
- name: timeout
  parallelize:
  - step: one
    timeout: 1
    tasks: [lua.spin]
- name: web
  parallelize:
  - step: one
    tasks: [services.web]
]]

-- A task hook that catches every stop it can: an endless loop of pcalls around endless loops.
local SPIN = [[
lua = function(ctx, name)
  ctx.log("spinning")
  while true do pcall(function() while true do end end) end
end,
]]

-- For the files that do not define lua tasks: the template's workflows use them.
local NO_HOOKS = "return {tasks = {lua = function() return true end}}\n"

local function setup(hooks)
  local dir = proc.tmpdir()
  proc.write_file(dir .. "/moonship.yaml", TEMPLATE)
  proc.write_file(dir .. "/hooks.lua", hooks)
  return dir
end

local function journal_events(dir)
  local path = io.popen("ls " .. proc.quote(dir) .. "/.moonship/runs/*.jsonl"):read("l")
  return events.decode(proc.read_file(path))
end

local function sim_deploy(dir, workflow, extra)
  local argv = {proc.moonship, "deploy", dir .. "/moonship.yaml", "-w", workflow, "--sim", "--time-scale", "0.01",
                "--settle", "0", "-o", "json"}
  for _, a in ipairs(extra or {}) do argv[#argv + 1] = a end
  local r = proc.run(argv)
  return r.code, events.decode(r.stdout), r.stderr
end

-- interrupt-at's output: the command's events, what outlived it, its exit code.
local function interrupted(r)
  return events.decode(r.stdout), tonumber(r.stdout:match("left=(%d+)")), tonumber(r.stdout:match("exit=(%d+)"))
end

describe("a hook that will not stop", function()
  it("a task hook that pcalls around its loop is stopped by its budget; its sibling finishes", function()
    local dir = setup("return {instruction_budget = 2000000, tasks = {" .. SPIN .. "}}\n")
    local code, ev = sim_deploy(dir, "spin")
    assert.equal(3, code)
    local spin = find(ev, {event = "task_finished", task = "lua.spin"})
    assert.equal("failed", spin.state)
    assert.matches("hooks.lua:3: hook ran past its budget of 2000000 instructions", spin.message, 1, true)
    assert.equal("succeeded", final_state(ev, "services.web"))
    assert.equal(3, find(ev, {event = "run_finished"}).exit_code)
  end)

  it("a health hook that catches its budget error is not reported ready", function()
    local dir = setup([[
return {
  instruction_budget = 2000000,
  tasks = {lua = function() return true end},
  health = {["apps/Deployment"] = function(obj)
    pcall(function() while true do end end)
    return "healthy"
  end},
}
]])
    local code, ev = sim_deploy(dir, "web")
    assert.equal(3, code)
    local web = find(ev, {event = "task_finished", task = "services.web"})
    assert.equal("failed", web.state)
    assert.matches("health[apps/Deployment]: ", web.message, 1, true)
    assert.matches("hook ran past its budget of 2000000 instructions", web.message, 1, true)
  end)

  it("a step timeout stops a hook that computes forever (no budget to save it)", function()
    local dir = setup("return {instruction_budget = 1000000000000000, tasks = {" .. SPIN .. "}}\n")
    local code, ev = sim_deploy(dir, "timeout")
    assert.equal(3, code)
    local spin = find(ev, {event = "task_finished", task = "lua.spin"})
    assert.equal("failed", spin.state)
    assert.equal("step one timed out", spin.message)
  end)

  for _, signal in ipairs {"INT", "TERM"} do
    it("SIG" .. signal .. " reaches a hook that computes forever: exit 130, run_finished, nothing left", function()
      local dir = setup("return {instruction_budget = 1000000000000000, tasks = {" .. SPIN .. "}}\n")
      local r = proc.run {INTERRUPT_AT, '"message":"spinning"', signal, proc.moonship, "deploy",
        dir .. "/moonship.yaml", "-w", "lonely", "--sim", "--time-scale", "0.01", "-o", "json"}
      local ev, left, code = interrupted(r)
      assert.equal(130, code, r.stdout .. r.stderr)
      assert.equal(0, left, r.stderr)
      local spin = find(ev, {event = "task_finished", task = "lua.spin"})
      assert.equal("cancelled", spin.state)
      assert.equal("interrupted", spin.message)
      local fin = find(ev, {event = "run_finished"})
      assert.same({"interrupted", 130}, {fin.state, fin.exit_code})
      assert.same(ev, journal_events(dir))
    end)
  end

  it("a syntax error in a health.lua fails the wait with its file and line", function()
    local dir = setup('return {health_dir = "health", tasks = {lua = function() return true end}}\n')
    os.execute("mkdir -p " .. proc.quote(dir .. "/health/apps/Deployment"))
    proc.write_file(dir .. "/health/apps/Deployment/health.lua", "hs = {}\nif obj.status then\nreturn hs\n")
    local code, ev = sim_deploy(dir, "web")
    assert.equal(3, code)
    local web = find(ev, {event = "task_finished", task = "services.web"})
    assert.equal("failed", web.state)
    assert.matches("health/apps/Deployment/health.lua:4: 'end' expected", web.message, 1, true)
  end)
end)

describe("Ctrl-C while the cleanup hook runs", function()
  local CLEANUP = [[
return {
  tasks = {lua = function(ctx) ctx.log("spinning") while true do ctx.sleep(1) end end},
  cleanup = function(ctx, run, reason)
    ctx.log("cleanup started (%s)", reason)
    ctx.exec {"sleep", "600"}
    ctx.log("cleanup finished")
  end,
  after_workflow = function(ctx) ctx.log("after_workflow ran") end,
}
]]

  it("a second signal cuts the cleanup short; the journal still ends with run_finished; no child survives", function()
    local dir = setup(CLEANUP)
    -- web never becomes ready: both tasks are still running when the first signal comes
    local scenario = proc.write_file(dir .. "/scenario.yaml", "workloads:\n  web: {never_ready: true}\n")
    local r = proc.run {INTERRUPT_AT, '"message":"spinning"', "INT", "+", "cleanup started", "INT",
      proc.moonship, "deploy", dir .. "/moonship.yaml", "-w", "spin", "--sim", "--scenario", scenario,
      "--time-scale", "0.01", "-o", "json"}
    local ev, left, code = interrupted(r)
    assert.equal(130, code, r.stdout .. r.stderr)
    assert.equal(0, left, r.stderr) -- neither kubesim nor the cleanup hook's sleep
    assert.truthy(find(ev, {event = "log", message = "cleanup started (interrupted)"}))
    assert.truthy(find(ev, {event = "log", hook = "cleanup", message = "stopped by a signal"}))
    assert.is_nil((find(ev, {event = "log", message = "cleanup finished"})))
    assert.is_nil((find(ev, {event = "log", message = "after_workflow ran"})))
    for _, task in ipairs {"services.web", "lua.spin"} do
      assert.equal("cancelled", final_state(ev, task))
    end
    local fin = find(ev, {event = "run_finished"})
    assert.same({"interrupted", 130}, {fin.state, fin.exit_code})
    assert.equal(fin, ev[#ev])
    assert.same(ev, journal_events(dir))
  end)

  it("a third signal ends the process at once, and kubesim with it", function()
    local dir = setup(CLEANUP)
    local r = proc.run {INTERRUPT_AT, '"message":"spinning"', "INT", "+", "cleanup started", "INT", "+",
      "hook cleanup stopped", "INT",
      proc.moonship, "deploy", dir .. "/moonship.yaml", "-w", "spin", "--sim", "--time-scale", "0.01", "-o", "json"}
    local _, _, code = interrupted(r)
    assert.truthy(code == 130, r.stdout .. r.stderr)
    assert.equal("0", r.stdout:match("lingered=(%d+)"), r.stderr)
  end)

  it("SIGKILL: kubesim notices its parent is gone and exits", function()
    local dir = setup(CLEANUP)
    local r = proc.run {INTERRUPT_AT, '"message":"spinning"', "KILL", proc.moonship, "deploy",
      dir .. "/moonship.yaml", "-w", "spin", "--sim", "--time-scale", "0.01", "-o", "json"}
    local _, _, code = interrupted(r)
    assert.equal(137, code)
    assert.equal("0", r.stdout:match("lingered=(%d+)"), r.stderr)
  end)
end)

describe("--sim leaves nothing behind", function()
  it("no kubeconfig folder is left per run", function()
    -- the hook says where the run's kubeconfig is: in a folder of its own under $TMPDIR
    local dir = setup([[
return {
  tasks = {lua = function() return true end},
  before_workflow = function(ctx) ctx.log("kubeconfig %s", ctx.kube.cfg.source[1]) end,
}
]])
    local tmp = proc.tmpdir()
    local r = proc.run {proc.moonship, "deploy", dir .. "/moonship.yaml", "-w", "web", "--sim", "--time-scale", "0.01",
                        "-o", "json", env = {TMPDIR = tmp}}
    assert.equal(0, r.code, r.stderr)
    local kubeconfig = r.stdout:match('"message":"kubeconfig ([^"]+)"')
    assert.equal(tmp .. "/moonship-sim-", kubeconfig:sub(1, #tmp + 14))
    assert.equal("", io.popen("ls -A " .. proc.quote(tmp)):read("a"))
  end)
end)

describe("a view that fails", function()
  it("is reported once; the run goes on, and its exit code is the journal's", function()
    local dir = setup(NO_HOOKS)
    local script = proc.write_file(dir .. "/deploy.lua", ([[
local moonship = require "moonship"
local seen = 0
local result = moonship.deploy(%q, {workflow = "web", sim = true, time_scale = 0.01, settle = 0,
  sinks = {function(ev) seen = seen + 1 if ev.event == "task_started" then error("the view broke") end end}})
print("seen " .. seen)
print("exit " .. result.exit_code)
os.exit(result.exit_code)
]]):format(dir .. "/moonship.yaml"))
    local r = proc.run {proc.moonship, "run", script}
    local fin = find(journal_events(dir), {event = "run_finished"})
    assert.equal("succeeded", fin.state)
    assert.equal(fin.exit_code, r.code, r.stderr)
    assert.matches("exit 0", r.stdout, 1, true)
    -- the sink saw the events up to its failure and none after
    local started = events.index_of(journal_events(dir), {event = "task_started"})
    assert.matches("seen " .. started .. "\n", r.stdout, 1, true)
    local _, reports = r.stderr:gsub("output 1 failed: [^\n]*the view broke; going on without it", "")
    assert.equal(1, reports, r.stderr)
  end)
end)

describe("a terminal that reports no size", function()
  local function have_script() return os.execute("command -v script >/dev/null 2>&1") end

  it("draws the live view at 80 columns and ends with the run's own exit code", function()
    if not have_script() then
      pending("util-linux's script is not installed")
      return
    end
    local dir = setup(NO_HOOKS)
    -- script(1) gives the command a pseudo-terminal of size 0x0, as CI runners often do.
    local cmd = table.concat({proc.moonship, "deploy", dir .. "/moonship.yaml", "-w", "web", "--sim",
      "--time-scale", "0.01"}, " ")
    local r = proc.run {"script", "-qec", cmd, "/dev/null", env = {COLUMNS = "", LINES = ""}}
    local ev = journal_events(dir)
    local fin = find(ev, {event = "run_finished"})
    assert.equal("succeeded", fin.state)
    assert.equal(fin.exit_code, r.code, r.stdout)
    assert.not_matches("attempt to compare", r.stdout, 1, true)
    assert.not_matches("failed", r.stdout, 1, true)
    -- the summary table was drawn (the live view, not plain lines)
    assert.matches("TASK", r.stdout, 1, true)
    assert.matches("services.web", r.stdout, 1, true)
  end)
end)
