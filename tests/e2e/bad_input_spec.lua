-- Bad input is refused before anything is deployed: every malformed template of
-- tests/fixtures/templates/bad/ makes `moonship deploy` exit 2 with its file:line:col message,
-- and kubesim's counters show no API write at all.
local kubesim = require "support.kubesim"
local proc = require "support.proc"

local BAD = proc.source_dir .. "/tests/fixtures/templates/bad"
local WRITES = {"create", "update", "patch", "apply", "delete", "deletecollection"}

local function first_error(path)
  for line in io.lines(path) do
    local pos, message = line:match("^# error: (%d+:%d+): (.*)$")
    if pos then return path .. ":" .. pos .. ": error: " .. message end
  end
end

local function writes(stats)
  local n = 0
  for _, verb in ipairs(WRITES) do n = n + (stats.requests_by_verb[verb] or 0) end
  return n
end

describe("moonship deploy with bad input", function()
  it("exits 2 naming file, line and column, with zero API writes, for every malformed template", function()
    local sim = kubesim.start {}
    local files = {}
    for name in io.popen("ls " .. BAD .. "/*.yaml"):lines() do files[#files + 1] = name end
    assert.is_true(#files >= 40, "only " .. #files .. " malformed templates")
    local before = writes(sim:stats())
    for _, path in ipairs(files) do
      local r = proc.run {proc.moonship, "deploy", path, "-w", "deploy", "--kubeconfig", sim.kubeconfig}
      assert.equal(2, r.code, path .. ": " .. r.stderr)
      local expected = first_error(path)
      assert.truthy(expected, path .. " names no expected error")
      assert.truthy(r.stderr:find(expected, 1, true), ("%s:\nwant %s\ngot %s"):format(path, expected, r.stderr))
      assert.equal("", r.stdout)
    end
    assert.equal(before, writes(sim:stats()))
    sim:stop()
  end)

  it("rejects bad options before loading anything", function()
    local cases = {
      {{"deploy", "x.yaml"}, "missing %-w WORKFLOW"},
      {{"deploy", "x.yaml", "-w", "a", "--timeout", "soon"}, "not a duration"},
      {{"deploy", "x.yaml", "-w", "a", "--concurrency", "0"}, "positive integer"},
      {{"deploy", "x.yaml", "-w", "a", "--qps", "-1"}, "%-%-qps must be a number"},
      {{"deploy", "x.yaml", "-w", "a", "--qps", "fast"}, "%-%-qps must be a number"},
      {{"deploy", "x.yaml", "-w", "a", "--burst", "0"}, "%-%-burst must be a positive integer"},
      {{"deploy", "x.yaml", "-w", "a", "--output", "xml"}, "text or json"},
      {{"deploy", "/nonexistent/app.yaml", "-w", "a"}, "/nonexistent/app.yaml"},
    }
    for _, case in ipairs(cases) do
      local argv = {proc.moonship}
      for _, a in ipairs(case[1]) do argv[#argv + 1] = a end
      local r = proc.run(argv)
      assert.equal(2, r.code, table.concat(case[1], " "))
      assert.matches(case[2], r.stderr)
    end
  end)

  it("names an unknown workflow with a suggestion", function()
    local r = proc.run {proc.moonship, "deploy", proc.source_dir .. "/examples/shop/moonship.yaml", "-w", "deplyo"}
    assert.equal(2, r.code)
    assert.matches("unknown workflow 'deplyo' %(did you mean 'deploy'%?%)", r.stderr)
  end)
end)
