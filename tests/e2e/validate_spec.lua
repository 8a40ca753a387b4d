-- `moonship validate` and `moonship render` on the binary: exit codes, positioned messages,
-- and YAML that parses back into the objects.
local proc = require "support.proc"
local yaml = require "moonship.yaml"

local SHARED = os.getenv("MOONSHIP_SHARED_DIR") or "../shared"
local RH = SHARED .. "/fixtures/releasehub/"
local BAD = "tests/fixtures/templates/bad/"

local function moonship(...)
  return proc.run {proc.moonship, ...}
end

describe("moonship validate", function()
  it("accepts every ReleaseHub fixture (warnings allowed) and each of its workflows", function()
    local p = io.popen("ls " .. RH)
    for d in p:lines() do
      if d ~= "SOURCES.tsv" then
        local path = RH .. d .. "/application_template.yaml"
        local r = moonship("validate", path, "-w", "setup")
        assert.equal(0, r.code, path .. "\n" .. r.stderr)
        assert.matches(": ok %(app '", r.stdout)
        assert.is_nil(r.stderr:find(": error: ", 1, true), r.stderr)
      end
    end
    p:close()
  end)

  it("prints warnings as file:line:col: warning: and still exits 0", function()
    local path = RH .. "amundsen-io__amundsen/application_template.yaml"
    local r = moonship("validate", path)
    assert.equal(0, r.code)
    assert.matches(path:gsub("%p", "%%%0") .. ":30:1: warning: unsupported key 'charts', ignored\n", r.stderr)
    assert.equal(path .. ": ok (app 'amemsenennn'; 3 services, 1 job, 2 workflows; 6 warnings)\n", r.stdout)
  end)

  it("validates the seed example", function()
    local r = moonship("validate", "examples/shop/moonship.yaml", "-w", "deploy")
    assert.equal(0, r.code, r.stderr)
    assert.equal("", r.stderr)
    assert.equal("examples/shop/moonship.yaml: ok (app 'shop'; workflow 'deploy': 3 steps, 4 tasks; 0 warnings)\n", r.stdout)
  end)

  it("exits 2 with the positioned error for a malformed template", function()
    local r = moonship("validate", BAD .. "unknown-service-task.yaml")
    assert.equal(2, r.code)
    assert.equal(BAD .. "unknown-service-task.yaml:8:5: error: unknown task 'services.fronted' (did you mean 'services.frontend'?)\n"
      .. BAD .. "unknown-service-task.yaml: invalid: 1 error, 0 warnings\n", r.stderr)
    assert.equal("", r.stdout)
  end)

  it("exits 2 for an unknown workflow, with a suggestion", function()
    local r = moonship("validate", "examples/shop/moonship.yaml", "-w", "deplyo")
    assert.equal(2, r.code)
    assert.equal("examples/shop/moonship.yaml: error: unknown workflow 'deplyo' (did you mean 'deploy'?)\n", r.stderr)
  end)

  it("finds the template in a directory", function()
    local r = moonship("validate", "examples/shop")
    assert.equal(0, r.code, r.stderr)
    assert.matches("^examples/shop/moonship.yaml: ok", r.stdout)
    local empty = proc.tmpdir()
    r = moonship("validate", empty)
    assert.equal(2, r.code)
    assert.matches("no template in", r.stderr)
  end)

  it("takes custom task kinds from --hooks", function()
    local dir = proc.tmpdir()
    local tpl = proc.write_file(dir .. "/app.yaml",
      "app: x\nworkflows:\n- name: deploy\n  order_from:\n  - lua.notify\n")
    local r = moonship("validate", tpl)
    assert.equal(2, r.code)
    assert.matches("5:5: error: no task handler for kind 'lua' %(define tasks.lua in the hooks file%)", r.stderr)
    local hooks = proc.write_file(dir .. "/hooks.lua", "return {tasks = {lua = function() return true end}}\n")
    r = moonship("validate", tpl, "--hooks", hooks)
    assert.equal(0, r.code, r.stderr)
  end)
end)

describe("moonship render", function()
  it("prints the workflow's objects as parseable YAML, in workflow order", function()
    local r = moonship("render", "examples/shop/moonship.yaml", "-w", "deploy", "--env", "pr-42")
    assert.equal(0, r.code, r.stderr)
    local docs = assert(yaml.load(r.stdout))
    local ids = {}
    for i, d in ipairs(docs) do ids[i] = d.kind .. "/" .. d.metadata.name end
    assert.same({"Deployment/frontend", "Service/frontend", "Job/migrate-render", "Job/scrub-render",
      "Deployment/backend", "Service/backend"}, ids)
    for _, d in ipairs(docs) do assert.equal("shop-pr-42", d.metadata.namespace) end
    assert.equal(2, docs[5].spec.replicas)
  end)

  it("honours -n and --run-id", function()
    local r = moonship("render", "examples/shop/moonship.yaml", "-n", "staging", "--run-id", "r42")
    assert.equal(0, r.code, r.stderr)
    local docs = assert(yaml.load(r.stdout))
    assert.equal("staging", docs[1].metadata.namespace)
    assert.equal("r42", docs[1].metadata.annotations["moonship.dev/run"])
    assert.equal("Job", docs[5].kind)
    assert.equal("migrate-r42", docs[5].metadata.name)
  end)

  it("renders every ReleaseHub fixture", function()
    local p = io.popen("ls " .. RH)
    for d in p:lines() do
      if d ~= "SOURCES.tsv" then
        local r = moonship("render", RH .. d .. "/application_template.yaml")
        assert.equal(0, r.code, d .. "\n" .. r.stderr)
        local docs = assert(yaml.load(r.stdout))
        assert.is_true(#docs > 0, d)
        for _, doc in ipairs(docs) do
          assert.is_string(doc.apiVersion)
          assert.is_string(doc.metadata.name)
        end
      end
    end
    p:close()
  end)

  it("exits 2 without output for a malformed template", function()
    local r = moonship("render", BAD .. "replicas-string.yaml")
    assert.equal(2, r.code)
    assert.equal("", r.stdout)
    assert.matches("replicas%-string.yaml:5:3: error: 'replicas' must be an integer %(got \"x\"%)", r.stderr)
  end)
end)
