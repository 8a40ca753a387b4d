-- What the template specs ask of a loaded model, shared by the specs over our own fixtures and
-- over the public corpus: load a template or fail with its messages, and compact views of
-- workflows, env lists and names for assertions.
local template = require "moonship.model.template"

local M = {}

-- The model of path, or an error listing why the template was rejected.
function M.load_ok(path, opts)
  local model, warnings = template.load(path, opts)
  if not model then
    local lines = {}
    for _, e in ipairs(warnings) do lines[#lines + 1] = e.text end
    error("template rejected:\n" .. table.concat(lines, "\n"))
  end
  return model, warnings
end

-- fixture(name, opts): the model of <dir>/<name>/application_template.yaml.
function M.loader(dir)
  return function(name, opts) return M.load_ok(dir .. name .. "/application_template.yaml", opts) end
end

-- {{step, {"services.a", ...}}, ...}: a workflow's steps and their task ids.
function M.shape(wf)
  local out = {}
  for i, step in ipairs(wf.steps) do
    local ids = {}
    for j, t in ipairs(step.tasks) do ids[j] = t.id end
    out[i] = {step.name, ids}
  end
  return out
end

-- A unit's env list as a name -> value table.
function M.env_of(unit)
  local out = {}
  for _, e in ipairs(unit.env) do out[e.name] = e.value end
  return out
end

function M.names(list)
  local out = {}
  for i, u in ipairs(list) do out[i] = u.name end
  return out
end

return M
