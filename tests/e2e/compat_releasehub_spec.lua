-- The public corpus of real ReleaseHub templates ($MOONSHIP_COMPAT_DIR/releasehub, see
-- tests/support/compat.lua) through the binary: `moonship validate` accepts each, with each of
-- its setup workflows, `moonship render` gives parseable objects, and `moonship plan` draws the
-- largest (awesome-release__opentelemetry-demo) in every format. Skipped, saying so, when the
-- corpus is absent.
local compat = require "support.compat"
local diagrams = require "support.diagrams"
local json = require "moonship.json"
local proc = require "support.proc"
local yaml = require "moonship.yaml"

local RH, why = compat.corpus("releasehub", "ReleaseHub corpus")
if not RH then pending(why) return end
RH = RH .. "/"
local DIRS = compat.entries(RH)

-- No kubeconfig to read: the namespace is the template's default.
local function moonship(...)
  return proc.run {proc.moonship, env = {KUBECONFIG = "/nonexistent/kubeconfig"}, ...}
end

local plan = proc.plan_copy

describe("the ReleaseHub corpus through moonship validate and render", function()
  it("validates every template (warnings allowed) and its setup workflow", function()
    assert.is_true(#DIRS >= 8)
    for _, d in ipairs(DIRS) do
      local path = RH .. d .. "/application_template.yaml"
      local r = moonship("validate", path, "-w", "setup")
      assert.equal(0, r.code, path .. "\n" .. r.stderr)
      assert.matches(": ok %(app '", r.stdout)
      -- an unknown key in a workflow would be an error: real templates use none
      assert.is_nil(r.stderr:find(": error: ", 1, true), r.stderr)
    end
  end)

  it("prints warnings as file:line:col: warning: and still exits 0", function()
    local path = RH .. "amundsen-io__amundsen/application_template.yaml"
    local r = moonship("validate", path)
    assert.equal(0, r.code)
    local dir = RH .. "amundsen-io__amundsen/"
    assert.equal(table.concat({
      path .. ":21:3: warning: hostname 'frontend-local-amemsenennn.releaseapp.gethandsup.com' skipped: no service 'frontend'",
      path .. ":31:3: warning: chart 'amundsen': no Chart.yaml in " .. dir .. "amundsen-kube-helm/templates/helm",
      path .. ":34:3: warning: chart 'ingress': no Chart.yaml in " .. dir .. "amundsen-kube-helm/templates/release-ingress",
      path .. ":37:1: warning: 'builds' are ReleaseHub's image builds: moonship builds no image (the services' images are deployed as written; --image NAME=REF names another), ignored",
    }, "\n") .. "\n", r.stderr)
    assert.equal(path .. ": ok (app 'amemsenennn' in namespace default; 3 services, 1 job, 2 workflows; 4 warnings)\n", r.stdout)
  end)

  it("renders every template", function()
    for _, d in ipairs(DIRS) do
      local r = moonship("render", RH .. d .. "/application_template.yaml")
      assert.equal(0, r.code, d .. "\n" .. r.stderr)
      local docs = assert(yaml.load(r.stdout))
      assert.is_true(#docs > 0, d)
      for _, doc in ipairs(docs) do
        assert.is_string(doc.apiVersion)
        assert.is_string(doc.metadata.name)
      end
    end
  end)
end)

describe("the ReleaseHub corpus through moonship plan", function()
  local OTEL = RH .. "awesome-release__opentelemetry-demo/application_template.yaml"

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
end)
