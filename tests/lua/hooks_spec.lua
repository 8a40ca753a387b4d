-- moonship.run.hooks: loading a hooks file (a budget of its own per file), and Argo CD health.lua
-- scripts from a health_dir: which script a kind gets (exact, then the "_" wildcards, most
-- specific first), nulls as nil, no message as "", a script that does not compile.
local hooks_mod = require "moonship.run.hooks"
local json = require "moonship.json"
local proc = require "support.proc"

local tmpdir, write = proc.tmpdir, proc.write_file

-- A script that names itself in its message, so a test sees which one ran.
local function script(name)
  return ('return {status = "Healthy", message = %q}\n'):format(name)
end

local function load_hooks(dir, text)
  return assert(hooks_mod.load(write(dir .. "/hooks.lua", text)))
end

describe("on_error", function()
  it("may answer ignore, halt, retry or rollback, and a hooks file that answers rollback loads", function()
    assert.same({ignore = true, halt = true, retry = true, rollback = true}, hooks_mod.ON_ERROR)
    local hooks = load_hooks(tmpdir(), 'return {on_error = function(ctx, task, err) return "rollback" end}\n')
    local ok, answer = require("moonship.sched").run(function() return hooks:call("on_error", {}, {id = "services.web"}, "x") end)
    assert.is_true(ok)
    assert.equal("rollback", answer)
  end)
end)

describe("hooks.load", function()
  it("keeps each file's instruction budget to its own hooks", function()
    local dir = tmpdir()
    local small = load_hooks(dir .. "/a", "return {instruction_budget = 1000}\n")
    local default = load_hooks(dir .. "/b", "return {}\n")
    assert.equal(1000, small.budget)
    assert.equal(hooks_mod.INSTRUCTION_BUDGET, default.budget)
  end)
end)

describe("health_dir scripts", function()
  local dir, health
  setup(function()
    dir = tmpdir()
    local h = dir .. "/health"
    write(h .. "/example.com/Widget/health.lua", script("exact"))
    write(h .. "/example.com/_/health.lua", script("any kind of example.com"))
    write(h .. "/_.crossplane.io/_/health.lua", script("any crossplane"))
    write(h .. "/_.io/Bucket/health.lua", script("a Bucket of any .io group"))
    write(h .. "/_/Gadget/health.lua", script("a Gadget of any group"))
    write(h .. "/Pod/health.lua", script("core Pod"))
    write(h .. "/nulls.dev/Thing/health.lua", [[
hs = {status = "Healthy"}
if obj.status ~= nil then hs.message = "status is " .. tostring(obj.status.phase) end
return hs
]])
    write(h .. "/broken.dev/Thing/health.lua", "hs = {}\nif obj.status then\nreturn hs\n")
    write(h .. "/odd.dev/Thing/health.lua", 'return {status = "Exploding"}\n')
    health = load_hooks(dir, 'return {health_dir = "health"}\n'):health()
  end)

  local function evaluate(api_version, kind, extra)
    local obj = {apiVersion = api_version, kind = kind, metadata = {name = "x"}}
    for k, v in pairs(extra or {}) do obj[k] = v end
    local rule = health[(api_version:match("^(.-)/[^/]+$") or "") .. "/" .. kind]
    if not rule then return nil end
    return rule(obj)
  end

  it("takes the most specific script: exact, the group's any kind, then wildcard groups", function()
    local function evaluate2(...)
      local state, message = evaluate(...)
      return state, message
    end
    local evaluate = evaluate2
    assert.same({"ready", "exact"}, {evaluate("example.com/v1", "Widget")})
    assert.same({"ready", "any kind of example.com"}, {evaluate("example.com/v1", "Gizmo")})
    assert.same({"ready", "any crossplane"}, {evaluate("pkg.crossplane.io/v1", "Provider")})
    -- _.crossplane.io is more specific than _.io for a crossplane Bucket
    assert.same({"ready", "any crossplane"}, {evaluate("s3.crossplane.io/v1", "Bucket")})
    assert.same({"ready", "a Bucket of any .io group"}, {evaluate("storage.example.io/v1", "Bucket")})
    assert.same({"ready", "a Gadget of any group"}, {evaluate("apps/v1", "Gadget")})
    assert.same({"ready", "core Pod"}, {evaluate("v1", "Pod")})
    assert.is_nil(evaluate("other.dev/v1", "Thing"))
  end)

  it("hands the script an explicit null as nil", function()
    local state, message = evaluate("nulls.dev/v1", "Thing", {status = json.null})
    assert.equal("ready", state)
    assert.equal("", message) -- and no message is ""
    state, message = evaluate("nulls.dev/v1", "Thing", {status = {phase = json.null}})
    assert.same({"ready", "status is nil"}, {state, message})
  end)

  it("counts an unknown status as Unknown, and keeps waiting", function()
    local state, message, info = evaluate("odd.dev/v1", "Thing")
    assert.same({"progressing", "", "Unknown"}, {state, message, info.health_status})
  end)

  it("fails the wait on a script that does not compile, naming its file and line", function()
    local state, message, info = evaluate("broken.dev/v1", "Thing")
    assert.equal("failed", state)
    assert.matches("health/broken.dev/Thing/health.lua:4: 'end' expected", message, 1, true)
    assert.equal("HealthScriptError", info.reason)
  end)
end)

describe("hooks.context", function()
  it("logs as the task whose ctx it is, and as the run otherwise", function()
    local emitted = {}
    local run = {run_id = "R", model = {app = "a"}, journal = {emit = function(_, ev) emitted[#emitted + 1] = ev end}}
    local task_ctx = hooks_mod.context(run, {id = "jobs.seed", step = "data"})
    local run_ctx = hooks_mod.context(run)
    task_ctx.log("seeded %d rows", 3)
    run_ctx.log("done")
    assert.equal("jobs.seed", task_ctx.task)
    assert.same({event = "log", task = "jobs.seed", step = "data", message = "seeded 3 rows"}, emitted[1])
    assert.same({event = "log", message = "done"}, emitted[2])
  end)

  it("marks what a hook logs with the hook's name; what it stores in ctx the task's other hooks see", function()
    local emitted = {}
    local run = {run_id = "R", model = {app = "a"}, journal = {emit = function(_, ev) emitted[#emitted + 1] = ev end}}
    local hooks = load_hooks(tmpdir(), [[
return {
  before_task = function(ctx) ctx.seen = "before"; ctx.log("starting %s", ctx.task) end,
  after_task = function(ctx) ctx.log("after %s", ctx.seen) end,
}
]])
    local ctx = hooks_mod.context(run, {id = "jobs.seed", step = "data"})
    assert.is_true((hooks:call("before_task", ctx, {})))
    assert.is_true((hooks:call("after_task", ctx, {}, {})))
    assert.same({event = "log", task = "jobs.seed", step = "data", hook = "before_task", message = "starting jobs.seed"},
                emitted[1])
    assert.same({event = "log", task = "jobs.seed", step = "data", hook = "after_task", message = "after before"},
                emitted[2])
  end)
end)

describe("hooks.load: a file with problems", function()
  local function problems(text)
    local dir = tmpdir()
    local path = write(dir .. "/hooks.lua", text)
    local hooks, message, list = hooks_mod.load(path, "app/hooks.lua")
    assert.is_nil(hooks)
    return message, list
  end

  it("reports every misspelt hook at its line, each with a suggestion", function()
    local message, list = problems([[
-- hooks
return {
  on_eror = function(ctx, task, err) return "halt" end,
  retyr = function() end,
  after_task = function() end,
  helth = {},
  zzz = 1,
}
]])
    assert.equal(table.concat({
      "app/hooks.lua:3: error: unknown hook 'on_eror' (did you mean 'on_error'?)",
      "app/hooks.lua:4: error: unknown hook 'retyr' (did you mean 'retry'?)",
      "app/hooks.lua:6: error: unknown hook 'helth' (did you mean 'health'?)",
      "app/hooks.lua:7: error: unknown hook 'zzz' (known: before_workflow, after_workflow, before_step, after_step, "
        .. "before_task, after_task, retry, on_error, cleanup, health, tasks, health_dir, instruction_budget)",
    }, "\n"), message)
    assert.same({file = "app/hooks.lua", line = 3, severity = "error",
                 message = "unknown hook 'on_eror' (did you mean 'on_error'?)"}, list[1])
  end)

  it("reports a syntax error and an error the file raises at their lines", function()
    assert.equal("app/hooks.lua:4: error: '}' expected (to close '{' at line 2) near 'after_task'",
      (problems("-- hooks\nreturn {\n  retry = function() end\n  after_task = function() end,\n}\n")))
    assert.equal("app/hooks.lua:2: error: attempt to call a nil value (global 'nothing')",
      (problems("local x = 1\nnothing()\nreturn {}\n")))
    assert.equal("app/hooks.lua: error: a hooks file must return a table (got nil)", (problems("local x = 1\n")))
    assert.equal("app/hooks.lua:2: error: hook 'retry' must be a function (got number)",
      (problems("return {\n  retry = 3,\n}\n")))
  end)
end)
