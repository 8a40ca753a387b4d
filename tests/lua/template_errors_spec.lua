-- Malformed and doubtful templates, table-driven: every file in tests/fixtures/templates/bad/
-- (errors: the template is rejected) and warn/ (loads, with warnings) ends with the exact
-- messages it must give, as "# error: line:col: message" / "# warning: line:col: message".
local template = require "moonship.model.template"
local proc = require "support.proc"

local FIXTURES = "tests/fixtures/templates"

local function list_yaml(dir)
  local p = assert(io.popen("ls " .. dir .. "/*.yaml"))
  local files = {}
  for line in p:lines() do files[#files + 1] = line end
  p:close()
  return files
end

-- The expected messages of a fixture, as full "file:line:col: message" texts.
local function expectations(path)
  local errors, warnings = {}, {}
  for line in io.lines(path) do
    local severity, rest = line:match("^# (%a+): (%d+:%d+: .*)$")
    if severity == "error" then errors[#errors + 1] = path .. ":" .. rest end
    if severity == "warning" then warnings[#warnings + 1] = path .. ":" .. rest end
  end
  return errors, warnings
end

local function texts(messages)
  local out = {}
  for i, m in ipairs(messages or {}) do
    out[i] = m.text
    assert.equal(m.text, tostring(m))
    assert.equal(string.format("%s:%d:%d: %s", m.file, m.line, m.col, m.message), m.text)
  end
  return out
end

describe("malformed templates", function()
  local files = list_yaml(FIXTURES .. "/bad")

  it("are at least 40", function()
    assert.is_true(#files >= 40, "only " .. #files .. " malformed templates")
  end)

  for _, path in ipairs(files) do
    it("rejects " .. path:match("([^/]+)%.yaml$"), function()
      local expected_errors, expected_warnings = expectations(path)
      assert.is_true(#expected_errors > 0, path .. " lists no expected error")
      local model, errors, warnings = template.load(path)
      assert.is_nil(model)
      assert.same(expected_errors, texts(errors))
      assert.same(expected_warnings, texts(warnings))
      for _, e in ipairs(errors) do assert.equal("error", e.severity) end
    end)
  end
end)

describe("doubtful templates", function()
  for _, path in ipairs(list_yaml(FIXTURES .. "/warn")) do
    it("warns about " .. path:match("([^/]+)%.yaml$"), function()
      local expected_errors, expected_warnings = expectations(path)
      assert.same({}, expected_errors)
      local model, warnings = template.load(path)
      assert.is_table(model, path)
      assert.same(expected_warnings, texts(warnings))
      for _, w in ipairs(warnings) do assert.equal("warning", w.severity) end
    end)
  end
end)

describe("messages", function()
  it("come sorted by position, every problem of the file at once", function()
    local dir = proc.tmpdir()
    local path = proc.write_file(dir .. "/app.yaml", [[
app: shop
services:
- name: web
  image: nginx
  replicas: many
  ports: {}
workflows:
- name: deploy
  order_from:
  - services.wbe
  - jobs.nothing
]])
    local model, errors = template.load(path)
    assert.is_nil(model)
    assert.same({
      path .. ":5:3: 'replicas' must be an integer (got \"many\")",
      path .. ":6:3: 'ports' must be a list (got a mapping)",
      path .. ":10:5: unknown task 'services.wbe' (did you mean 'services.web'?)",
      path .. ":11:5: unknown task 'jobs.nothing'",
    }, texts(errors))
    os.execute("rm -rf " .. proc.quote(dir))
  end)
end)

describe("robustness", function()
  local yaml = require "moonship.yaml"
  local json = require "moonship.json"

  local copy = require("moonship.model.manifests").deep_copy

  local function paths(v, prefix, out)
    if type(v) == "table" then
      for k, x in pairs(v) do
        local p = table.move(prefix, 1, #prefix, 1, {})
        p[#p + 1] = k
        out[#out + 1] = p
        paths(x, p, out)
      end
    end
    return out
  end

  it("never raises, whatever value any key of the seed example takes", function()
    local doc = assert(yaml.load_file("examples/shop/moonship.yaml"))[1]
    local values = {yaml.null, 7, -1, 1.5, "x", true, json.object {}, json.array {}, json.array {1}, {a = 1}}
    local dir = proc.tmpdir()
    local path = dir .. "/moonship.yaml"
    local cases = 0
    for _, p in ipairs(paths(doc, {}, {})) do
      for _, value in ipairs(values) do
        local mutated = copy(doc)
        local parent = mutated
        for i = 1, #p - 1 do parent = parent[p[i]] end
        parent[p[#p]] = value
        proc.write_file(path, yaml.dump(mutated))
        local ok, model, problems = pcall(template.load, path)
        assert.is_true(ok, table.concat(p, ".") .. " = " .. tostring(value) .. ": " .. tostring(model))
        assert.is_table(problems)
        cases = cases + 1
      end
    end
    assert.is_true(cases > 500)
    os.execute("rm -rf " .. proc.quote(dir))
  end)
end)
