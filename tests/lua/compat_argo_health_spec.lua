-- The public corpus of Argo CD health checks ($MOONSHIP_COMPAT_DIR/argo-cd, see
-- tests/support/compat.lua): every case of every health_test.yaml, run through moonship's own
-- deploy path (a hooks file whose health_dir is the corpus, hooks:health(), then
-- readiness.evaluate, the call the waits make), must give the case's status and message.
-- Skipped, saying so, when the corpus is absent. The cases that cannot pass are listed here and
-- in docs/template.md ("Health checks"), each with its reason.
local compat = require "support.compat"
local proc = require "support.proc"
local hooks_mod = require "moonship.run.hooks"
local readiness = require "moonship.kube.readiness"
local yaml = require "moonship.yaml"
local fs = require "moonship.fs"

local CORPUS, why = compat.corpus("argo-cd", "Argo CD health corpus")
if not CORPUS then pending(why) return end
local DIR = CORPUS .. "/resource_customizations"

-- Every health_test.yaml under DIR: {path=, folder=}.
local function test_files()
  local out = {}
  local function walk(path, depth)
    for _, name in ipairs(fs.list(path) or {}) do
      local child = path .. "/" .. name
      if name == "health_test.yaml" then
        out[#out + 1] = {path = child, folder = path}
      elseif depth < 3 and fs.list(child) then
        walk(child, depth + 1)
      end
    end
  end
  walk(DIR, 1)
  return out
end

-- A field as Argo CD's test runner reads it: Go's encoding/json matches struct fields without
-- regard to case (one case file spells it `inputpath`).
local function field(t, name)
  if t[name] ~= nil then return t[name] end
  for k, v in pairs(t) do
    if type(k) == "string" and k:lower() == name:lower() then return v end
  end
end

-- The cases that cannot pass, and why (README, "Argo CD health scripts").
local EXCEPTIONS = {
  -- The input has `status:` twice. Argo CD's test loader (sigs.k8s.io/yaml, not strict) keeps
  -- the last; moonship's YAML loader refuses a duplicate key, naming both lines, as kubectl
  -- does: a live object from the API never has one, so the evaluator is not in question.
  ["rabbitmq.com/User/testdata/unknown.yaml"] = "duplicate key 'status'",
}

describe("Argo CD health corpus through hooks.health_dir", function()
  it("gives every case its status and message", function()
    local hooks_file = proc.write_file(os.tmpname(), ("return {health_dir = %q}\n"):format(DIR))
    local hooks = assert(hooks_mod.load(hooks_file))
    os.remove(hooks_file)
    local health = hooks:health()

    local cases, passed, failures, excepted = 0, 0, {}, {}
    local started = os.clock()
    for _, t in ipairs(test_files()) do
      local spec = assert(yaml.load(proc.read_file(t.path), {filename = t.path}))[1]
      for _, case in ipairs(spec.tests) do
        cases = cases + 1
        local input_path = field(case, "inputPath")
        local where = t.folder:sub(#DIR + 2) .. "/" .. input_path
        local input = t.folder .. "/" .. input_path
        local docs, lerr = yaml.load(proc.read_file(input), {filename = input:sub(#DIR + 2)})
        local obj = docs and docs[1]
        local want = field(case, "healthStatus")
        if EXCEPTIONS[where] then
          excepted[#excepted + 1] = where
          assert.matches(EXCEPTIONS[where], tostring(lerr), 1, true)
        elseif not obj then
          failures[#failures + 1] = where .. ": input does not load: " .. tostring(lerr)
        else
          local _, message, info = readiness.evaluate(obj, health)
          local status = info and info.health_status
          local want_message = want.message ~= yaml.null and want.message or nil
          if status ~= want.status then
            failures[#failures + 1] = ("%s: status %s, want %s (%s)"):format(where, tostring(status), want.status,
              tostring(message))
          elseif want_message ~= nil and message ~= want_message then
            failures[#failures + 1] = ("%s: message %q, want %q"):format(where, tostring(message), want_message)
          else
            passed = passed + 1
          end
        end
      end
    end
    print(("\n# Argo CD health corpus: %d/%d cases pass (%d listed exception) in %.2f s of CPU"):format(passed,
      cases, #excepted, os.clock() - started))
    assert.equal(1123, cases)
    assert.same({}, failures)
    local listed = {}
    for k in pairs(EXCEPTIONS) do listed[#listed + 1] = k end
    table.sort(excepted)
    table.sort(listed)
    assert.same(listed, excepted)
  end)
end)
