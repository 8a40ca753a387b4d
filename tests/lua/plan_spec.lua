-- moonship.model.plan: the predicted schedule (the engine's step and slot rules, the critical path)
-- and its renderings: text (Unicode and ASCII), Mermaid, DOT, JSON.
local plan = require "moonship.model.plan"
local plan_text = require "moonship.output.plan_text"
local diagrams = require "support.diagrams"
local json = require "moonship.json"

local function task(id, extra)
  local t = {id = id, kind = id:match("^(%w+)%."), name = id:match("%.(.*)$")}
  for k, v in pairs(extra or {}) do t[k] = v end
  return t
end

-- The seed workflow: frontend in the background, migrate + scrub (halt on error), backend.
local function shop()
  return {name = "deploy", steps = {
    {name = "frontend", wait_for_finish = false, tasks = {task("services.frontend")}},
    {name = "migrate", halt_on_error = true, tasks = {task("jobs.migrate", {halt_on_error = true}),
                                                      task("jobs.scrub", {halt_on_error = true})}},
    {name = "backend", tasks = {task("services.backend")}},
  }}
end

local function times(sched)
  local t = {}
  for _, s in ipairs(sched.steps) do
    for _, tk in ipairs(s.tasks) do t[tk.id] = {tk.start, tk.finish} end
  end
  return t
end

-- The critical path is a chain without gaps from 0 to the makespan.
local function assert_chain(sched)
  local by = {}
  for _, s in ipairs(sched.steps) do for _, tk in ipairs(s.tasks) do by[tk.id] = tk end end
  local path = sched.critical_path
  assert.is_true(#path > 0)
  assert.equal(0, by[path[1]].start)
  for k = 2, #path do assert.near(by[path[k - 1]].finish, by[path[k]].start, 1e-9) end
  assert.near(sched.makespan, by[path[#path]].finish, 1e-9)
end

describe("plan.schedule", function()
  it("runs a background step beside the later ones and ends with the last task", function()
    local s = plan.schedule(shop(), {})
    local t = times(s)
    assert.same({0, 30}, t["services.frontend"])
    assert.same({0, 20}, t["jobs.migrate"])
    assert.same({0, 20}, t["jobs.scrub"])
    assert.same({20, 50}, t["services.backend"])
    assert.equal(50, s.makespan)
    assert.same({"jobs.migrate", "services.backend"}, s.critical_path)
    assert.is_true(s.steps[1].background)
    assert.equal(0, s.steps[1].done)
    assert.is_true(s.steps[2].halt)
    assert_chain(s)
  end)

  it("uses measured durations and puts a long background step on the critical path", function()
    local s = plan.schedule(shop(), {["services.frontend"] = 100, ["jobs.scrub"] = 25})
    assert.equal(100, s.makespan)
    assert.same({"services.frontend"}, s.critical_path)
    assert.same({25, 55}, times(s)["services.backend"])
    assert.is_false(s.steps[1].tasks[1].estimated)
    assert.is_true(s.steps[2].tasks[1].estimated)
  end)

  it("queues tasks through max_parallel slots in file order", function()
    local wf = {name = "w", steps = {
      {name = "a", max_parallel = 2, tasks = {task("jobs.a1"), task("jobs.a2"), task("jobs.a3")}},
      {name = "b", tasks = {task("jobs.b")}},
    }}
    local s = plan.schedule(wf, {["jobs.a1"] = 10, ["jobs.a2"] = 12, ["jobs.a3"] = 10, ["jobs.b"] = 5})
    local t = times(s)
    assert.same({0, 10}, t["jobs.a1"])
    assert.same({0, 12}, t["jobs.a2"])
    assert.same({10, 20}, t["jobs.a3"])
    assert.same({20, 25}, t["jobs.b"])
    assert.same({"jobs.a1", "jobs.a3", "jobs.b"}, s.critical_path)
    assert_chain(s)
  end)

  it("starts the next step when a limited background step has started its last task", function()
    local wf = {name = "w", steps = {
      {name = "bg", wait_for_finish = false, max_parallel = 1, tasks = {task("jobs.x"), task("jobs.y")}},
      {name = "b", tasks = {task("jobs.b")}},
    }}
    local s = plan.schedule(wf, {["jobs.x"] = 10, ["jobs.y"] = 10, ["jobs.b"] = 30})
    assert.same({10, 40}, times(s)["jobs.b"])
    assert.equal(10, s.steps[1].done)
    assert.same({"jobs.x", "jobs.b"}, s.critical_path)
    assert_chain(s)
  end)

  it("applies --concurrency where a step sets no max_parallel", function()
    local wf = {name = "w", steps = {{name = "a", tasks = {task("jobs.a"), task("jobs.b"), task("jobs.c")}}}}
    local s = plan.schedule(wf, {}, {concurrency = 1})
    assert.equal(60, s.makespan)
    assert.same({"jobs.a", "jobs.b", "jobs.c"}, s.critical_path)
  end)

  it("cuts tasks at their step's timeout", function()
    local wf = {name = "w", steps = {{name = "a", timeout = 15, tasks = {task("jobs.a")}}, {name = "b", tasks = {task("jobs.b")}}}}
    local s = plan.schedule(wf, {})
    assert.same({0, 15}, times(s)["jobs.a"])
    assert.is_true(s.steps[1].tasks[1].timed_out)
    assert.equal(35, s.makespan)
  end)

  it("keeps the critical path gapless on random workflows", function()
    math.randomseed(42)
    for _ = 1, 200 do
      local wf, durations, n = {name = "r", steps = {}}, {}, 0
      for i = 1, math.random(1, 6) do
        local step = {name = "s" .. i, wait_for_finish = math.random() < 0.3 and false or true, tasks = {},
                      max_parallel = math.random() < 0.3 and math.random(1, 3) or nil}
        for _ = 1, math.random(0, 5) do
          n = n + 1
          local id = "jobs.t" .. n
          step.tasks[#step.tasks + 1] = task(id)
          durations[id] = math.random(1, 50)
        end
        wf.steps[i] = step
      end
      local s = plan.schedule(wf, durations)
      if n > 0 then assert_chain(s) else assert.same({}, s.critical_path) end
    end
  end)

  it("reads durations of succeeded tasks from a run snapshot", function()
    local d = plan.durations_from {tasks = {
      {id = "jobs.a", state = "succeeded", started = 1, finished = 11},
      {id = "jobs.b", state = "failed", started = 1, finished = 3},
      {id = "services.c", state = "recovered", started = 2, finished = 40},
    }}
    assert.same({["jobs.a"] = 10, ["services.c"] = 38}, d)
  end)
end)

describe("plan text", function()
  it("draws boxes, the background lane, halt marks and the critical path in Unicode", function()
    local s = plan.schedule(shop(), {})
    local text = plan.text(shop(), s, {width = 100, app = "shop"})
    assert.matches("shop · workflow deploy · 3 steps, 4 tasks · predicted makespan 50s", text, 1, true)
    assert.matches("★ critical path: jobs.migrate → services.backend", text, 1, true)
    assert.matches("┌─ 1 · frontend · 0s → 30s ─", text, 1, true)
    assert.matches("↷ background ─┐", text, 1, true)
    assert.matches("■ halt on error ─┐", text, 1, true)
    assert.matches("┃ ★ jobs.migrate", text, 1, true)          -- heavy box: on the critical path
    assert.matches("│ jobs.scrub", text, 1, true)              -- light box: off it
    assert.matches("┃ ↷ frontend runs on beside the next steps", text, 1, true)
    assert.matches("┻ frontend done at 30s", text, 1, true)
    assert.matches("predicted timeline", text, 1, true)
    -- every line fits the width
    for line in text:gmatch("[^\n]+") do assert.is_true(utf8.len(line) <= 100, line) end
  end)

  it("falls back to ASCII", function()
    local s = plan.schedule(shop(), {})
    local text = plan.text(shop(), s, {ascii = true, width = 80})
    assert.is_nil(text:find("[\128-\255]"), "non-ASCII byte in the ASCII plan")
    assert.matches("* critical path: jobs.migrate -> services.backend", text, 1, true)
    assert.matches("' frontend done at 30s", text, 1, true)
  end)

  it("takes the locale from LC_ALL, then LC_CTYPE, then LANG", function()
    local function env(t) return function(k) return t[k] end end
    assert.is_true(plan_text.locale_is_utf8(env {LANG = "en_US.UTF-8"}))
    assert.is_true(plan_text.locale_is_utf8(env {LC_CTYPE = "C.utf8", LANG = "C"}))
    assert.is_false(plan_text.locale_is_utf8(env {LC_ALL = "C", LANG = "en_US.UTF-8"}))
    assert.is_false(plan_text.locale_is_utf8(env {LANG = "POSIX"}))
    assert.is_false(plan_text.locale_is_utf8(env {}))
  end)
end)

describe("plan mermaid", function()
  it("is a gantt chart: a section per step, crit on the critical path, milestones at halt points", function()
    local s = plan.schedule(shop(), {})
    local m = diagrams.mermaid(plan.mermaid(shop(), s, {app = "shop"}))
    assert.equal("HH:mm:ss", m.date_format)
    -- room for the longest section name, "1 frontend (background, runs on)"
    assert.same({'%%{init: {"gantt": {"leftPadding": 248}}}%%'}, m.directives)
    assert.equal("shop / deploy - predicted makespan 50s", m.title)
    assert.equal(3, #m.sections)
    assert.equal("1 frontend (background, runs on)", m.sections[1].name)
    assert.equal("2 migrate (halt on error)", m.sections[2].name)
    local migrate = m.sections[2].tasks
    assert.same({"jobs.migrate ~20s", "halt if jobs.migrate fails", "jobs.scrub ~20s", "halt if jobs.scrub fails"},
      {migrate[1].name, migrate[2].name, migrate[3].name, migrate[4].name})
    assert.is_true(migrate[1].tags.crit)
    assert.is_nil(migrate[3].tags.crit)
    assert.is_true(migrate[2].tags.milestone)
    assert.equal("00:00:20", migrate[2].start)
    local backend = m.sections[3].tasks[1]
    assert.same({"00:00:20", "30s", true}, {backend.start, backend.duration, backend.tags.crit})
    assert.equal("00:00:00", m.sections[1].tasks[1].start)
    assert.equal(30, m.sections[1].tasks[1].seconds)
  end)

  it("keeps milliseconds for a plan shorter than a minute", function()
    local s = plan.schedule(shop(), {["services.frontend"] = 2.037, ["jobs.migrate"] = 0.965, ["jobs.scrub"] = 0.4,
                                     ["services.backend"] = 1.549})
    local m = diagrams.mermaid(plan.mermaid(shop(), s))
    assert.equal("HH:mm:ss.SSS", m.date_format)
    assert.equal("%S.%L", m.axis_format)
    local backend = m.sections[3].tasks[1]
    assert.same({"00:00:00.965", "1549ms"}, {backend.start, backend.duration})
    assert.equal("00:00:00.400", m.sections[2].tasks[4].start)   -- the scrub halt point
  end)

  it("keeps names Mermaid would misread out of task lines", function()
    local wf = {name = "w", steps = {{name = "a:b;c#d", tasks = {task("lua.x:y")}}}}
    local m = diagrams.mermaid(plan.mermaid(wf, plan.schedule(wf, {})))
    assert.equal("1 a b c d", m.sections[1].name)
    assert.equal("lua.x y ~10s", m.sections[1].tasks[1].name)
  end)
end)

describe("plan dot", function()
  it("has every task as a node in its step's cluster and the step order as edges", function()
    local s = plan.schedule(shop(), {})
    local text = plan.dot(shop(), s, {app = "shop"})
    local g = diagrams.dot(text)
    assert.equal("shop/deploy", g.name)
    assert.same({"cluster_1", "cluster_2", "cluster_3"}, g.clusters)
    for _, id in ipairs {"services.frontend", "jobs.migrate", "jobs.scrub", "services.backend"} do
      local found = false
      for _, attrs in pairs(g.nodes) do if attrs:find('label="' .. id .. "\\n", 1, true) then found = true end end
      assert.is_true(found, id .. " is not a node")
    end
    local function edge(ltail, lhead)
      for _, e in ipairs(g.edges) do
        if e.attrs:find("ltail=" .. ltail .. ", lhead=" .. lhead, 1, true) then return e end
      end
    end
    assert.truthy(edge("cluster_1", "cluster_2").attrs:match("style=dashed"))
    assert.truthy(edge("cluster_2", "cluster_3").attrs:match("penwidth=2"))   -- on the critical path
    assert.truthy(text:find('t1 -> done [ltail=cluster_1, style=dashed', 1, true))
  end)

  it("quotes labels", function()
    local wf = {name = 'say "hi"', steps = {{name = "a\\b", tasks = {task("lua.q")}}}}
    local g = diagrams.dot(plan.dot(wf, plan.schedule(wf, {})))
    assert.equal('say \\"hi\\"', g.name)
  end)
end)

describe("plan json", function()
  it("keeps its shape: workflow, makespan, critical_path, steps with tasks", function()
    local s = plan.schedule(shop(), {})
    local doc = json.decode(plan.json(shop(), s))
    assert.equal("deploy", doc.workflow)
    assert.equal(50, doc.makespan)
    assert.same({"jobs.migrate", "services.backend"}, doc.critical_path)
    assert.equal(3, #doc.steps)
    assert.is_true(doc.steps[1].background)
    assert.is_true(doc.steps[2].halt_on_error)
    assert.equal("jobs.migrate", doc.steps[3].tasks[1].after)
    assert.equal(20, doc.steps[3].tasks[1].start)
  end)
end)

describe("plan.start_order", function()
  local tasks = {{id = "jobs.a", kind = "jobs"}, {id = "services.b", kind = "services"},
                 {id = "services.c", kind = "services"}, {id = "jobs.d", kind = "jobs"}}
  local function ids(list)
    local out = {}
    for i, t in ipairs(list) do out[i] = t.id end
    return out
  end

  it("keeps the template's order when no duration is known", function()
    assert.same({"jobs.a", "services.b", "services.c", "jobs.d"}, ids(plan.start_order(tasks, {})))
  end)

  it("starts the longest first, estimating the unknown by kind, ties in template order", function()
    local order = plan.start_order(tasks, {["jobs.a"] = 5, ["services.c"] = 40, ["jobs.d"] = 5})
    -- c 40 s, then b (no record: a service's 30 s estimate), then a and d (5 s, template order)
    assert.same({"services.c", "services.b", "jobs.a", "jobs.d"}, ids(order))
    assert.equal("jobs.a", tasks[1].id) -- the list itself is left alone
  end)
end)
