-- moonship.output.timeline and moonship.output.html: a run's journal events become lanes, attempt
-- segments, the halt point and the critical path; the page is self-contained and escapes all
-- user data.
local html = require "moonship.output.html"
local timeline = require "moonship.output.timeline"
local json = require "moonship.json"

local RUN = "20261126-120000-abcdef"

local function events(list)
  for _, ev in ipairs(list) do ev.run, ev.workflow = RUN, "deploy" end
  return list
end

-- A halted run: frontend in the background, scrub fails and halts, backend never starts.
local function halted()
  return events {
    {t = 0, event = "run_started", app = "shop", namespace = "shop-pr-1", steps = 3,
     tasks = {"services.frontend", "jobs.migrate", "jobs.scrub", "services.backend"}},
    {t = 0, event = "step_started", step = "frontend", index = 1, background = true, tasks = {"services.frontend"}},
    {t = 0, event = "task_started", step = "frontend", task = "services.frontend", attempt = 1},
    {t = 0.01, event = "step_started", step = "migrate", index = 2, tasks = {"jobs.migrate", "jobs.scrub"}},
    {t = 0.01, event = "task_started", step = "migrate", task = "jobs.migrate", attempt = 1},
    {t = 0.01, event = "task_started", step = "migrate", task = "jobs.scrub", attempt = 1},
    {t = 0.1, event = "task_progress", step = "migrate", task = "jobs.scrub", message = "applied job/scrub-1",
     objects = {{kind = "Job", apiVersion = "batch/v1", name = "scrub-1", uid = "u1", resourceVersion = "7"}}},
    {t = 0.5, event = "log", step = "migrate", task = "jobs.scrub", message = "</script><script>alert(1)</script>"},
    {t = 9, event = "task_finished", step = "migrate", task = "jobs.migrate", state = "succeeded", attempt = 1},
    {t = 12, event = "task_finished", step = "migrate", task = "jobs.scrub", state = "failed", attempt = 1, halt = true,
     message = "job failed: <b>BackoffLimitExceeded</b> & \"quotes\" 'too'\27[31m", logs = {"cannot scrub"}},
    {t = 12, event = "run_halting", task = "jobs.scrub", message = "halt_on_error: jobs.scrub failed"},
    {t = 12, event = "task_finished", step = "frontend", task = "services.frontend", state = "cancelled", attempt = 1,
     message = "halted by jobs.scrub"},
    {t = 12, event = "step_finished", step = "migrate", index = 2, state = "failed"},
    {t = 12, event = "step_finished", step = "frontend", index = 1, background = true, state = "cancelled"},
    {t = 12, event = "task_finished", task = "services.backend", state = "skipped", attempt = 0, message = "not started: run halted"},
    {t = 12.01, event = "run_finished", state = "halted", exit_code = 1, failed = 1, halted_by = "jobs.scrub"},
  }
end

-- A run with a retried job and a service that failed, then recovered in the settle check.
local function recovered()
  return events {
    {t = 0, event = "run_started", app = "shop", steps = 2, tasks = {"jobs.flaky", "services.api"}},
    {t = 0, event = "step_started", step = "prepare", index = 1, tasks = {"jobs.flaky"}},
    {t = 0, event = "task_started", step = "prepare", task = "jobs.flaky", attempt = 1},
    {t = 3, event = "task_progress", step = "prepare", task = "jobs.flaky", attempt = 1, retry = true,
     message = "attempt 1 failed: boom; retrying in 1s"},
    {t = 4, event = "task_started", step = "prepare", task = "jobs.flaky", attempt = 2},
    {t = 8, event = "task_finished", step = "prepare", task = "jobs.flaky", state = "succeeded", attempt = 2},
    {t = 8, event = "step_finished", step = "prepare", index = 1, state = "succeeded"},
    {t = 8, event = "step_started", step = "serve", index = 2, tasks = {"services.api"}},
    {t = 8, event = "task_started", step = "serve", task = "services.api", attempt = 1},
    {t = 20, event = "task_finished", step = "serve", task = "services.api", state = "failed", attempt = 1,
     message = "CrashLoopBackOff"},
    {t = 20, event = "step_finished", step = "serve", index = 2, state = "failed"},
    {t = 20, event = "task_progress", step = "serve", task = "services.api", message = "settle check: waiting up to 30s for recovery",
     phase = "settling", settling = true},
    {t = 26, event = "task_finished", step = "serve", task = "services.api", state = "recovered", message = "ready after the settle check"},
    {t = 26, event = "run_finished", state = "succeeded", exit_code = 0, failed = 0},
  }
end

-- A run that pruned two objects after its one step (the engine's prune step).
local function pruned() return events(require("support.events").pruned_run()) end

local function count(s, needle)
  local n, i = 0, 1
  while true do
    local a, b = s:find(needle, i, true)
    if not a then return n end
    n, i = n + 1, b + 1
  end
end

local function embedded_data(page)
  local text = page:match('<script type="application/json" id="moonship%-run">(.-)</script>')
  return assert(json.decode(assert(text)))
end

-- The halted run whose on_error asked for a rollback: its steps, then the rollback's.
local function rolled_back()
  local list = halted()
  local finished = table.remove(list)
  for _, ev in ipairs(events {
    {t = 12, event = "rollback_started", to = "20261125-090000-aaaaaa", revision = 6, target_workflow = "deploy",
     reason = "on_error", steps = 1, tasks = {"rollback.services.frontend"},
     plan = {{step = "rollback.frontend", tasks = {"rollback.services.frontend"}}}},
    {t = 12, event = "step_started", step = "rollback.frontend", index = 4, tasks = {"rollback.services.frontend"}},
    {t = 12, event = "task_started", step = "rollback.frontend", task = "rollback.services.frontend", attempt = 1},
    {t = 15, event = "task_finished", step = "rollback.frontend", task = "rollback.services.frontend",
     state = "succeeded", attempt = 1},
    {t = 15, event = "step_finished", step = "rollback.frontend", index = 4, state = "succeeded"},
  }) do list[#list + 1] = ev end
  finished.t, finished.rollback = 15, "succeeded"
  list[#list + 1] = finished
  return list
end

describe("timeline.build", function()
  it("lays a rollback's steps out after the halted run's, and keeps the run's state and the rollback's", function()
    local run = timeline.build(rolled_back())
    assert.same({"halted", 1}, {run.state, run.exit_code})
    assert.same({t = 12, to = "20261125-090000-aaaaaa", revision = 6, workflow = "deploy", reason = "on_error",
                 state = "succeeded"}, run.rollback)
    local names = {}
    for i, s in ipairs(run.steps) do names[i] = s.name end
    assert.same({"frontend", "migrate", "rollback.frontend"}, names)
    assert.same({{n = 1, start = 12, finish = 15, state = "succeeded"}}, run.tasks["rollback.services.frontend"].attempts)
    assert.equal("rollback.frontend", run.tasks["rollback.services.frontend"].step)
  end)

  it("turns a halted run into lanes, segments, the halt point and what never started", function()
    local run = timeline.build(halted())
    assert.equal("halted", run.state)
    assert.equal(1, run.exit_code)
    assert.equal(12.01, run.duration)
    assert.same({"frontend", "migrate"}, {run.steps[1].name, run.steps[2].name})
    assert.is_true(run.steps[1].background)
    assert.same({t = 12, task = "jobs.scrub", message = "halt_on_error: jobs.scrub failed"}, run.halt)
    assert.same({"services.backend"}, run.not_started)
    local f = run.tasks["services.frontend"]
    assert.same({{n = 1, start = 0, finish = 12, state = "cancelled", message = "halted by jobs.scrub"}}, f.attempts)
    assert.equal(1, #run.tasks["jobs.scrub"].objects)
    assert.same({"jobs.scrub"}, run.critical_path)   -- a halted run ends with the failure that halted it
  end)

  it("keeps retries as separate attempts and a recovery as its own segment", function()
    local run = timeline.build(recovered())
    local flaky = run.tasks["jobs.flaky"]
    assert.equal(2, #flaky.attempts)
    assert.same({1, 0, 3, "retried"}, {flaky.attempts[1].n, flaky.attempts[1].start, flaky.attempts[1].finish, flaky.attempts[1].state})
    assert.same({2, 4, 8, "succeeded"}, {flaky.attempts[2].n, flaky.attempts[2].start, flaky.attempts[2].finish, flaky.attempts[2].state})
    local api = run.tasks["services.api"]
    assert.equal("recovered", api.state)
    assert.same({start = 20, finish = 26}, api.recovery)
    assert.same({"jobs.flaky", "services.api"}, run.critical_path)
  end)

  it("follows a background step's start and a freed slot back to the run's start", function()
    local run = timeline.build(events {
      {t = 0, event = "step_started", step = "bg", index = 1, background = true, tasks = {"jobs.a", "jobs.b"}},
      {t = 0, event = "task_started", step = "bg", task = "jobs.a", attempt = 1},
      {t = 5, event = "task_finished", step = "bg", task = "jobs.a", state = "succeeded", attempt = 1},
      {t = 5, event = "task_started", step = "bg", task = "jobs.b", attempt = 1},   -- max_parallel 1
      {t = 5, event = "step_started", step = "next", index = 2, tasks = {"jobs.c"}},
      {t = 5, event = "task_started", step = "next", task = "jobs.c", attempt = 1},
      {t = 30, event = "task_finished", step = "next", task = "jobs.c", state = "succeeded", attempt = 1},
      {t = 31, event = "task_finished", step = "bg", task = "jobs.b", state = "succeeded", attempt = 1},
      {t = 31, event = "run_finished", state = "succeeded", exit_code = 0},
    })
    assert.same({"jobs.a", "jobs.b"}, run.critical_path)
  end)

  it("lists what an interrupt left unstarted, whatever its state", function()
    local run = timeline.build(events {
      {t = 0, event = "run_started", tasks = {"jobs.a", "jobs.b", "jobs.c"}},
      {t = 0, event = "step_started", step = "s", index = 1, tasks = {"jobs.a"}},
      {t = 0, event = "task_started", step = "s", task = "jobs.a", attempt = 1},
      {t = 2, event = "task_finished", step = "s", task = "jobs.a", state = "cancelled", attempt = 1, message = "interrupted"},
      {t = 2, event = "task_finished", task = "jobs.b", state = "cancelled", attempt = 0, message = "not started: run interrupted"},
      {t = 2, event = "run_finished", state = "interrupted", exit_code = 130},
    })
    assert.same({"jobs.b", "jobs.c"}, run.not_started)
    assert.equal("pending", run.tasks["jobs.c"].state)
    local page = html.render(events {
      {t = 0, event = "run_started", tasks = {"jobs.a"}},
      {t = 1, event = "run_finished", state = "interrupted", exit_code = 130},
    })
    assert.truthy(page:find("not started (run interrupted)", 1, true))
  end)

  it("ends attempts a cut-short journal left open", function()
    local run = timeline.build(events {
      {t = 0, event = "step_started", step = "s", index = 1, tasks = {"jobs.a"}},
      {t = 0, event = "task_started", step = "s", task = "jobs.a", attempt = 1},
      {t = 4, event = "task_progress", step = "s", task = "jobs.a", message = "job running"},
    })
    assert.equal("unfinished", run.state)
    assert.same({}, run.not_started)
    assert.same({n = 1, start = 0, finish = 4, state = "running"}, run.tasks["jobs.a"].attempts[1])
  end)
end)

describe("html.render: a rollback", function()
  it("names the run it went back to and how it went, and draws its steps", function()
    local page = html.render(rolled_back())
    assert.truthy(page:find("rollback to run <code>20261125-090000-aaaaaa</code> (revision 6), asked by on_error: succeeded",
      1, true))
    assert.truthy(page:find("rollback.services.frontend", 1, true))
    local data = embedded_data(page)
    assert.same({"20261125-090000-aaaaaa", "succeeded"}, {data.rollback.to, data.rollback.state})
  end)
end)

describe("html.render", function()
  it("gives the prune step its lane, and the prune task's row the objects it deleted", function()
    local run = timeline.build(pruned())
    assert.same({"apps", "prune"}, {run.steps[1].name, run.steps[2].name})
    assert.same({"prune"}, run.steps[2].tasks)
    assert.equal(2, #run.tasks.prune.objects)
    local page = html.render(pruned())
    assert.truthy(page:find('<tr data-task="prune" data-state="succeeded"', 1, true))
    assert.truthy(page:find('<td class="msg">deleted 2 objects</td><td><code>deployment/worker, service/worker</code></td>', 1, true))
  end)

  it("draws the halted run: lanes, bars by state, the halt marker, the not-started lane", function()
    local page = html.render(halted())
    assert.equal("<!DOCTYPE html>", page:sub(1, 15))
    assert.truthy(page:find('<body data-state="halted">', 1, true))
    assert.equal(1, count(page, "<svg id=\"timeline\""))
    assert.equal(count(page, "<g"), count(page, "</g>"))
    assert.equal(count(page, "<svg"), count(page, "</svg>"))
    -- one lane title per step, then the tasks that never started
    assert.truthy(page:find('<text class="step%-title" x="12" y="%d+%.%d">1 · frontend</text>'))
    assert.truthy(page:find('<text class="step%-title" x="12" y="%d+%.%d">2 · migrate</text>'))
    assert.truthy(page:find('<text class="step%-title muted" x="12" y="%d+%.%d">not started %(run halted%)</text>'))
    assert.truthy(page:find('<rect class="lane background"', 1, true))
    -- a bar per attempt, classed by its state
    assert.truthy(page:find('<g class="bar cancelled" data-task="services.frontend" data-attempt="1">', 1, true))
    assert.truthy(page:find('<g class="bar succeeded" data-task="jobs.migrate" data-attempt="1">', 1, true))
    assert.truthy(page:find('<g class="bar failed" data-task="jobs.scrub" data-attempt="1">', 1, true))
    assert.truthy(page:find('<g class="bar skipped" data-task="services.backend" data-attempt="0">', 1, true))
    assert.equal(4, count(page, '<g class="bar '))
    -- the halt point and the critical path
    assert.truthy(page:find('<g id="halt-marker" class="halt" data-task="jobs.scrub" data-t="12">', 1, true))
    assert.truthy(page:find(">halt at 12.0s: jobs.scrub failed</text>", 1, true))
    assert.truthy(page:find('<g class="task critical" data-task="jobs.scrub" data-state="failed">', 1, true))
    assert.equal(1, count(page, '<g class="task critical"'))
    -- the summary table, in plan order
    local rows = {}
    for id, state in page:gmatch('<tr data%-task="([^"]+)" data%-state="([^"]+)"') do rows[#rows + 1] = id .. "=" .. state end
    assert.same({"services.frontend=cancelled", "jobs.migrate=succeeded", "jobs.scrub=failed", "services.backend=skipped"}, rows)
    assert.truthy(page:find("<code>job/scrub-1</code>", 1, true))
  end)

  it("is self-contained and escapes user data everywhere", function()
    local page = html.render(halted())
    assert.is_nil(page:find("%ssrc="))
    assert.is_nil(page:find("%shref="))
    assert.is_nil(page:find("@import", 1, true))
    assert.is_nil(page:find("url%(['\"]?http"))
    assert.is_nil(page:find("alert(1)</script>", 1, true))
    assert.equal(2, count(page, "<script"))
    assert.equal(2, count(page, "</script>"))
    assert.truthy(page:find("&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;", 1, true))
    assert.truthy(page:find("job failed: &lt;b&gt;BackoffLimitExceeded&lt;/b&gt; &amp; &quot;quotes&quot; &#39;too&#39;</td>", 1, true))
    assert.is_nil(page:find("\27", 1, true))
  end)

  it("embeds the run's data for its script", function()
    local data = embedded_data(html.render(halted()))
    assert.equal("halted", data.state)
    assert.equal("jobs.scrub", data.halt.task)
    assert.same({"jobs.scrub"}, data.critical_path)
    assert.same({"services.backend"}, data.not_started)
    local states = {}
    for _, t in ipairs(data.tasks) do states[t.id] = t.state end
    assert.same({["services.frontend"] = "cancelled", ["jobs.migrate"] = "succeeded", ["jobs.scrub"] = "failed",
                 ["services.backend"] = "skipped"}, states)
  end)

  it("shows a failed job's log lines once, and what hooks wrote marked apart", function()
    local page = html.render(events {
      {t = 0, event = "run_started", app = "shop", steps = 1, tasks = {"jobs.scrub"},
       plan = {{step = "migrate", tasks = {"jobs.scrub"}}}},
      {t = 0, event = "step_started", step = "migrate", index = 1, tasks = {"jobs.scrub"}},
      {t = 0, event = "task_started", step = "migrate", task = "jobs.scrub", attempt = 1},
      {t = 1, event = "log", step = "migrate", task = "jobs.scrub", pod = "scrub-1", message = "scrubbing"},
      {t = 2, event = "log", step = "migrate", task = "jobs.scrub", pod = "scrub-1", message = "table locked"},
      {t = 3, event = "log", step = "migrate", task = "jobs.scrub", hook = "on_error", message = "halting"},
      {t = 3, event = "task_finished", step = "migrate", task = "jobs.scrub", state = "failed", attempt = 1, halt = true,
       message = "job failed", logs = {"scrubbing", "table locked"}},
      {t = 3, event = "run_halting", task = "jobs.scrub", cause = "on_error",
       message = "jobs.scrub failed: halted by the on_error hook"},
      {t = 3, event = "run_finished", state = "halted", exit_code = 1, failed = 1, halted_by = "jobs.scrub"},
    })
    local logs = page:match('<pre class="logs">(.-)</pre>')
    assert.equal('scrubbing\ntable locked\n<span class="hook">▸ hook on_error: halting</span>', logs)
    assert.truthy(page:find("\nlast log: table locked", 1, true))
    assert.equal("on_error", embedded_data(page).halt.cause)
    assert.truthy(page:find('data.halt.cause === "on_error" ? "halted by the on_error hook"', 1, true))
  end)

  it("gives a step a halt kept from starting its lane, its tasks not started; draws no grid line over a caption", function()
    local evs = halted()
    evs[1].plan = {{step = "frontend", background = true, tasks = {"services.frontend"}},
                   {step = "migrate", tasks = {"jobs.migrate", "jobs.scrub"}}, {step = "backend", tasks = {"services.backend"}}}
    local run = timeline.build(evs)
    assert.same({}, run.not_started)
    assert.equal("backend", run.steps[3].name)
    assert.is_nil(run.steps[3].start)
    assert.is_true(run.steps[2].halt) -- its failure halted the run
    local page = html.render(evs)
    assert.truthy(page:find('<rect class="lane idle"', 1, true))
    assert.truthy(page:find('<text class="step%-title muted" x="12" y="[%d.]+">3 · backend</text>'))
    assert.truthy(page:find('<text class="step%-note" x="[%d.]+" y="[%d.]+">not started %(run halted%)</text>'))
    assert.truthy(page:find('<g class="bar skipped" data-task="services.backend" data-attempt="0">', 1, true))
    assert.truthy(page:find(">not started</text></g>", 1, true))
    -- the grid is drawn before the captions, which have a halo of their lane's colour
    assert.is_true(page:find('<line class="grid"', 1, true) < page:find('<text class="step-title', 1, true))
    assert.truthy(page:find('<g class="halo background">\n<text class="step%-title" x="12" y="[%d.]+">1 · frontend</text>'))
    assert.equal(count(page, '<text class="step-note"'), select(2, page:gsub('<g class="halo [%a]+">\n<text class="step%-title[^\n]*\n<text class="step%-note"', "")))
  end)

  it("ends the critical path at the task the journal finished last, of those that ended at the same time", function()
    local run = timeline.build(events {
      {t = 0, event = "step_started", step = "a", index = 1, tasks = {"jobs.a"}},
      {t = 0, event = "task_started", step = "a", task = "jobs.a", attempt = 1},
      {t = 1, event = "task_finished", step = "a", task = "jobs.a", state = "succeeded", attempt = 1},
      {t = 1, event = "step_started", step = "b", index = 2, tasks = {"jobs.b"}},
      {t = 1, event = "task_started", step = "b", task = "jobs.b", attempt = 1},
      {t = 1.42, event = "task_finished", step = "b", task = "jobs.b", state = "succeeded", attempt = 1},
      {t = 1.42, event = "step_started", step = "c", index = 3, tasks = {"lua.notify"}},
      {t = 1.42, event = "task_started", step = "c", task = "lua.notify", attempt = 1},
      {t = 1.42, event = "task_finished", step = "c", task = "lua.notify", state = "succeeded", attempt = 1},
      {t = 1.42, event = "run_finished", state = "succeeded", exit_code = 0},
    })
    assert.same({"jobs.a", "jobs.b", "lua.notify"}, run.critical_path)
  end)

  it("draws retries as separate segments joined by a gap, and the recovery", function()
    local page = html.render(recovered())
    assert.truthy(page:find('<g class="bar retried" data-task="jobs.flaky" data-attempt="1">', 1, true))
    assert.truthy(page:find('<g class="bar succeeded" data-task="jobs.flaky" data-attempt="2">', 1, true))
    assert.equal(1, count(page, '<line class="retry-gap"'))
    assert.truthy(page:find('<g class="bar failed" data-task="services.api" data-attempt="1">', 1, true))
    assert.truthy(page:find('<g class="bar recovered" data-task="services.api" data-attempt="settle">', 1, true))
    assert.equal(1, count(page, '<path class="critical-link"'))
    assert.is_nil(page:find('id="halt-marker"', 1, true))
    -- hover details: times, attempt, message
    assert.truthy(page:find("<title>jobs.flaky · attempt 1 of 2\n0.0s → 3.0s (3.0s)\nstate: failed, retried\nattempt 1 failed: boom; retrying in 1s", 1, true))
  end)
end)
