-- `moonship plan` end to end: the shop example and a template in ReleaseHub's format (ours:
-- tests/fixtures/templates/releasehub-format/storefront) in every format, with the predicted
-- timeline worked out by hand from the engine's rules; Mermaid and DOT checked for structure.
-- The public corpus of real templates is tests/e2e/compat_releasehub_spec.lua's.
local diagrams = require "support.diagrams"
local json = require "moonship.json"
local proc = require "support.proc"

local SHOP = proc.source_dir .. "/examples/shop/moonship.yaml"
local STOREFRONT = proc.source_dir .. "/tests/fixtures/templates/releasehub-format/storefront/application_template.yaml"

local plan = proc.plan_copy

describe("moonship plan", function()
  it("draws the shop: the background frontend lane, halt points, the critical path", function()
    local text = plan(SHOP, "deploy")
    assert.matches("shop · workflow deploy · 3 steps, 4 tasks · predicted makespan 50s", text, 1, true)
    assert.matches("★ critical path: jobs.migrate → services.backend", text, 1, true)
    assert.matches("┃ ↷ frontend runs on beside the next steps", text, 1, true)
    assert.matches("┻ frontend done at 30s", text, 1, true)
    assert.matches("■ halt on error ─┐", text, 1, true)
  end)

  it("falls back to ASCII when the locale is not UTF-8, or with --ascii", function()
    for _, run in ipairs {{args = {}, env = {LANG = "C", LC_ALL = "", LC_CTYPE = ""}},
                          {args = {"--ascii"}, env = {LANG = "en_US.UTF-8"}}} do
      local text = plan(SHOP, "deploy", run.args, run.env)
      assert.is_nil(text:find("[\128-\255]"), "non-ASCII output:\n" .. text)
      assert.matches("* critical path: jobs.migrate -> services.backend", text, 1, true)
    end
  end)

  it("gives the shop as a Mermaid gantt chart and a DOT graph", function()
    local m = diagrams.mermaid(plan(SHOP, "deploy", {"--format", "mermaid"}))
    assert.equal(3, #m.sections)
    assert.matches("background", m.sections[1].name)
    local crit = {}
    for _, s in ipairs(m.sections) do
      for _, t in ipairs(s.tasks) do if t.tags.crit and not t.tags.milestone then crit[#crit + 1] = t.name end end
    end
    assert.same({"jobs.migrate ~20s", "services.backend ~30s"}, crit)
    local dot_text = plan(SHOP, "deploy", {"-f", "dot"})
    local g = diagrams.dot(dot_text)
    assert.same({"cluster_1", "cluster_2", "cluster_3"}, g.clusters)
    -- Graphviz itself, where the machine has it (it is not a test dependency)
    if os.execute("command -v dot >/dev/null 2>&1") then
      local r = proc.run {"dot", "-Tsvg", stdin = dot_text}
      assert.equal(0, r.code, r.stderr)
      assert.matches("<svg", r.stdout, 1, true)
    end
  end)

  -- storefront's setup, with the default estimates (services 30s, jobs 20s): data (db, cache)
  -- 0-30s; web in the background from 30s (Frontend 30-60s), so api starts at 30s too; api has
  -- max_parallel 1: migrate 30-50s, then services.api 50-80s. The run ends at 80s, on the chain
  -- db -> migrate -> api; both api tasks halt (the job's halt_on_error, the step's).
  it("plans a ReleaseHub-format template in every format, as worked out by hand", function()
    local text = plan(STOREFRONT, "setup")
    local lines = {}
    for line in text:gmatch("[^\n]+") do
      lines[#lines + 1] = line
      assert.is_true(utf8.len(line) <= 100, line)
    end
    assert.equal("storefront · workflow setup · 3 steps, 5 tasks · predicted makespan 1m20s", lines[1])
    assert.equal("★ critical path: services.db → jobs.migrate → services.api", lines[2])
    assert.matches("┃ ↷ web runs on beside the next steps", text, 1, true)
    assert.matches("┻ web done at 1m00s", text, 1, true)
    assert.matches("┃ ┌─ 3 · api · 30s → 1m20s ─", text, 1, true)
    assert.matches("─ ■ halt on error max 1 at once ─┐", text, 1, true)

    local doc = json.decode(plan(STOREFRONT, "setup", {"--format", "json"}))
    local function task(id, step, start, finish, halt, after)
      return {id = id, step = step, start = start, finish = finish, seconds = finish - start, estimated = true,
        halt = halt, after = after}
    end
    assert.same({
      workflow = "setup", makespan = 80, critical_path = {"services.db", "jobs.migrate", "services.api"},
      steps = {
        {name = "data", start = 0, finish = 30, background = false, halt_on_error = false, tasks = {
          task("services.db", "data", 0, 30, false), task("services.cache", "data", 0, 30, false)}},
        {name = "web", start = 30, finish = 60, background = true, halt_on_error = false, tasks = {
          task("services.Frontend", "web", 30, 60, false, "services.db")}},
        {name = "api", start = 30, finish = 80, background = false, halt_on_error = true, tasks = {
          task("jobs.migrate", "api", 30, 50, true, "services.db"),
          task("services.api", "api", 50, 80, true, "jobs.migrate")}},
      },
    }, doc)

    local mermaid = plan(STOREFRONT, "setup", {"--format", "mermaid"})
    assert.equal([[
%%{init: {"gantt": {"leftPadding": 213}}}%%
gantt
    title storefront / setup - predicted makespan 1m20s
    dateFormat HH:mm:ss
    axisFormat %M:%S
    todayMarker off
    section 1 data
    services.db ~30s :crit, t1, 00:00:00, 30s
    services.cache ~30s :t2, 00:00:00, 30s
    section 2 web (background, runs on)
    services.Frontend ~30s :t3, 00:00:30, 30s
    section 3 api (halt on error)
    jobs.migrate ~20s :crit, t4, 00:00:30, 20s
    halt if jobs.migrate fails :milestone, crit, h4, 00:00:50, 0s
    services.api ~30s :crit, t5, 00:00:50, 30s
    halt if services.api fails :milestone, crit, h5, 00:01:20, 0s
]], mermaid)
    local m = diagrams.mermaid(mermaid)
    assert.equal(3, #m.sections)

    local g = diagrams.dot(plan(STOREFRONT, "setup", {"--format", "dot"}))
    assert.same({"cluster_1", "cluster_2", "cluster_3"}, g.clusters)
    local red = 'color="#cf222e", penwidth=2'
    assert.same({
      {from = "start", to = "t1", attrs = "lhead=cluster_1, " .. red},
      {from = "t1", to = "t3", attrs = "ltail=cluster_1, lhead=cluster_2"},
      {from = "t3", to = "t4", attrs = 'ltail=cluster_2, lhead=cluster_3, style=dashed, label="once started"'},
      {from = "t3", to = "done", attrs = 'ltail=cluster_2, style=dashed, color="#0969da", label="runs on, done 1m00s"'},
      {from = "t4", to = "done", attrs = "ltail=cluster_3, " .. red},
    }, g.edges)
    for id, critical in pairs {t1 = true, t2 = false, t3 = false, t4 = true, t5 = true} do
      assert.equal(critical, g.nodes[id]:find("penwidth=2.5", 1, true) ~= nil, id)
    end
  end)

  it("draws within --width, down to the narrowest it can; narrower is refused, saying the minimum", function()
    for _, case in ipairs {{SHOP, "deploy"}, {STOREFRONT, "setup"}} do
      for _, width in ipairs {40, 47, 60, 80, 100, 160} do
        for _, ascii in ipairs {false, true} do
          local text = plan(case[1], case[2], {"--width", tostring(width), ascii and "--ascii" or nil})
          for line in text:gmatch("[^\n]+") do
            assert.is_true((utf8.len(line) or #line) <= width, ("%s at --width %d: %q"):format(case[2], width, line))
          end
        end
      end
    end
    local narrow = plan(SHOP, "deploy", {"--width", "40"})
    assert.equal("shop · workflow deploy\n3 steps, 4 tasks\npredicted makespan 50s\n"
      .. "★ critical path: jobs.migrate →\n                 services.backend\n", narrow:match("^" .. ("[^\n]*\n"):rep(5)))
    -- a narrow terminal gets the narrowest plan
    local text = plan(SHOP, "deploy", {}, {LANG = "C.UTF-8", LC_ALL = "", LC_CTYPE = "", COLUMNS = "30"})
    assert.equal(narrow, text)
    local r = proc.run {proc.moonship, "plan", SHOP, "-w", "deploy", "--width", "39"}
    assert.equal(2, r.code)
    assert.equal("moonship plan: --width must be a number of columns, at least 40 (the narrowest text plan)\n"
      .. "Run 'moonship plan --help' for its options.\n", r.stderr)
  end)

  it("says where its durations come from: the last run, or a simulated one at its time scale", function()
    local dir = proc.tmpdir()
    local template = proc.write_file(dir .. "/moonship.yaml",
      "app: tiny\njobs:\n- {name: hello, image: busybox, command: [echo, hi]}\nworkflows:\n"
      .. "- name: deploy\n  order_from: [jobs.hello]\n")
    local r = proc.run {proc.moonship, "deploy", template, "-w", "deploy", "--sim", "--time-scale", "0.05", "-o", "json"}
    assert.equal(0, r.code, r.stderr)
    local run = r.stdout:match('"run":"([^"]+)"')
    assert.matches('"time_scale":0.05', r.stdout:match("[^\n]*run_started[^\n]*"))
    local text = proc.run {proc.moonship, "plan", template, "-w", "deploy", env = {LANG = "C.UTF-8", LC_ALL = ""}}.stdout
    assert.equal("durations from a simulated run at time scale 0.05 (run " .. run .. ")", text:match("\n(durations[^\n]*)"))
    local doc = json.decode(proc.run {proc.moonship, "plan", template, "-w", "deploy", "-f", "json"}.stdout)
    assert.same({run = run, time_scale = 0.05}, doc.durations_from)
    assert.matches("\n    %%%% durations from a simulated run at time scale 0.05 %(run " .. run:gsub("%p", "%%%0") .. "%)\n",
      proc.run {proc.moonship, "plan", template, "-w", "deploy", "-f", "mermaid"}.stdout)
    -- a run on a cluster: no simulation to mention
    local sim = require("support.kubesim").start {time_scale = 0.05}
    r = proc.run {proc.moonship, "deploy", template, "-w", "deploy", "--kubeconfig", sim.kubeconfig, "-o", "json"}
    sim:stop()
    assert.equal(0, r.code, r.stderr)
    run = r.stdout:match('"run":"([^"]+)"')
    text = proc.run {proc.moonship, "plan", template, "-w", "deploy"}.stdout
    assert.equal("durations from run " .. run, text:match("\n(durations[^\n]*)"))
    assert.is_nil(text:find("simulated", 1, true))
  end)

  it("rejects an unknown format", function()
    local r = proc.run {proc.moonship, "plan", SHOP, "-w", "deploy", "--format", "svg"}
    assert.equal(2, r.code)
    assert.matches("--format must be text, mermaid, dot or json", r.stderr, 1, true)
  end)
end)

describe("moonship plan of a template in ReleaseHub's format with charts, cron jobs and a built service", function()
  it("draws the workflow without --image, saying what a deploy will need", function()
    local src = proc.source_dir .. "/tests/fixtures/templates/releasehub-format/classifieds/application_template.yaml"
    local r = proc.run {proc.moonship, "plan", src, "-w", "setup", "--ascii", env = {LANG = "C"}}
    assert.equal(0, r.code, r.stderr)
    assert.equal(src .. ":62:3: warning: service 'api' is built from 'api' by ReleaseHub: pass --image api=REF\n", r.stderr)
    assert.matches("classifieds - workflow setup - 3 steps, 7 tasks", r.stdout, 1, true)
    for _, id in ipairs {"charts.search", "cron_jobs.reindex", "cron_jobs.expire", "services.api"} do
      assert.matches(id, r.stdout, 1, true)
    end
  end)
end)
