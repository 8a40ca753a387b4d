-- `moonship plan` end to end: the shop example and a real ReleaseHub template
-- (awesome-release__opentelemetry-demo) in every format; Mermaid and DOT checked for structure.
local diagrams = require "support.diagrams"
local json = require "moonship.json"
local proc = require "support.proc"

local SHOP = proc.source_dir .. "/examples/shop/moonship.yaml"
local SHARED = os.getenv("MOONSHIP_SHARED_DIR") or (proc.source_dir .. "/../shared")
local OTEL = SHARED .. "/fixtures/releasehub/awesome-release__opentelemetry-demo/application_template.yaml"

-- Plans a copy of the template (no earlier run beside it: default estimates).
local function plan(src, workflow, args, env)
  local dir = proc.tmpdir()
  local template = dir .. "/" .. src:match("[^/]*$")
  os.execute("cp " .. proc.quote(src) .. " " .. proc.quote(template))
  local envfile = src:match("^(.*)/[^/]*$") .. "/environment_variables.yaml"
  if io.open(envfile) then os.execute("cp " .. proc.quote(envfile) .. " " .. proc.quote(dir)) end
  local argv = {proc.moonship, "plan", template, "-w", workflow}
  for _, a in ipairs(args or {}) do argv[#argv + 1] = a end
  argv.env = env or {LANG = "C.UTF-8", LC_ALL = "", LC_CTYPE = ""}
  local r = proc.run(argv)
  assert.equal(0, r.code, r.stderr)
  return r.stdout
end

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

  it("plans the opentelemetry demo template unchanged, in every format", function()
    local text = plan(OTEL, "setup")
    assert.matches("workflow setup · 7 steps, 25 tasks · predicted makespan 3m30s", text, 1, true)
    for line in text:gmatch("[^\n]+") do assert.is_true(utf8.len(line) <= 100, line) end

    local doc = json.decode(plan(OTEL, "setup", {"--format", "json"}))
    assert.equal(7, #doc.steps)
    assert.equal(210, doc.makespan)
    assert.equal(7, #doc.critical_path)

    local m = diagrams.mermaid(plan(OTEL, "setup", {"--format", "mermaid"}))
    assert.equal(7, #m.sections)
    local tasks = 0
    for _, s in ipairs(m.sections) do tasks = tasks + #s.tasks end
    assert.equal(25, tasks)

    local g = diagrams.dot(plan(OTEL, "setup", {"--format", "dot"}))
    assert.equal(7, #g.clusters)
    local task_nodes = 0
    for id in pairs(g.nodes) do if id:match("^t%d+$") then task_nodes = task_nodes + 1 end end
    assert.equal(25, task_nodes)
    for i = 1, 6 do
      local found = false
      for _, e in ipairs(g.edges) do
        if e.attrs:find(("ltail=cluster_%d, lhead=cluster_%d"):format(i, i + 1), 1, true) then found = true end
      end
      assert.is_true(found, "no edge from step " .. i .. " to step " .. (i + 1))
    end
  end)

  it("rejects an unknown format", function()
    local r = proc.run {proc.moonship, "plan", SHOP, "-w", "deploy", "--format", "svg"}
    assert.equal(2, r.code)
    assert.matches("--format must be text, mermaid, dot or json", r.stderr, 1, true)
  end)
end)
