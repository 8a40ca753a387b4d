-- `moonship diff` as text (one line per object, a changed one followed by its unified diff,
-- coloured as git and kubectl colour theirs) and as one JSON document.
--   diff_text.text(result, {color=}) -> text     diff_text.json(result) -> text
-- result: moonship.run.diff's.
local json = require "moonship.json"

local fmt, concat = string.format, table.concat

local M = {}

-- SGR parameters: the action words, and the lines of a unified diff.
local STYLE = {
  created = "32", changed = "33", unchanged = "2", deleted = "31", error = "1;31", not_compared = "33",
  file = "1", hunk = "36", del = "31", add = "32",
}

M.SIGN = {created = "+", changed = "~", unchanged = "=", deleted = "-", error = "!", not_compared = "?"}

local function paint(color, style, text)
  if not color or not style then return text end
  return "\27[" .. STYLE[style] .. "m" .. text .. "\27[0m"
end

local function ref(kind, name) return tostring(kind):lower() .. "/" .. tostring(name) end

-- The words after "kind/name" that say what a Job is to the Job before it.
local function job_note(e)
  if e.kind ~= "Job" or e.action == "error" or e.action == "deleted" then return "" end
  if e.previous then
    return fmt(" (reruns %s with %s spec)", ref("job", e.previous), e.spec_changed and "a changed" or "the same")
  end
  if e.action == "created" and e.task and e.task:match("^jobs%.") then
    return fmt(" (first run of %s: no earlier Job of it in the namespace)", e.task)
  end
  return ""
end

local function diff_lines(lines, color, out)
  for _, l in ipairs(lines) do
    local c = l:sub(1, 1)
    local style
    if l:sub(1, 4) == "--- " or l:sub(1, 4) == "+++ " then style = "file"
    elseif l:sub(1, 3) == "@@ " then style = "hunk"
    elseif c == "-" then style = "del"
    elseif c == "+" then style = "add" end
    out[#out + 1] = paint(color, style, l)
  end
end

local function object_lines(e, color, out)
  local head = fmt("%s %s %s", M.SIGN[e.action], e.action, ref(e.kind, e.name))
  local line = paint(color, e.action, head) .. job_note(e)
  if e.action == "error" then line = line .. ": " .. tostring(e.message) end
  out[#out + 1] = line
  diff_lines(e.diff or {}, color, out)
end

-- "1 changed, 2 created, 3 unchanged, 0 deleted" and what else there was.
function M.summary(counts)
  local parts = {}
  for _, k in ipairs {"changed", "created", "unchanged", "deleted"} do parts[#parts + 1] = counts[k] .. " " .. k end
  if counts.not_compared > 0 then parts[#parts + 1] = counts.not_compared .. " not compared" end
  if counts.errors > 0 then parts[#parts + 1] = fmt("%d error%s", counts.errors, counts.errors == 1 and "" or "s") end
  return concat(parts, ", ")
end

function M.text(result, opts)
  local color = opts and opts.color
  local out = {}
  for _, te in ipairs(result.tasks) do
    if te.state == "not_compared" then
      out[#out + 1] = paint(color, "not_compared", "? not compared " .. te.task) .. ": " .. te.reason
    end
    for _, e in ipairs(te.objects) do object_lines(e, color, out) end
  end
  for _, e in ipairs(result.objects) do
    if e.task == nil then object_lines(e, color, out) end
  end
  out[#out + 1] = fmt("workflow %s of %s in namespace %s: %s", result.workflow, result.app, result.namespace,
    M.summary(result.counts))
  local left = result.left_behind
  if left then
    local names = {}
    for i, obj in ipairs(left) do names[i] = obj.kind:lower() .. "/" .. obj.metadata.name end
    out[#out + 1] = fmt("left behind (no longer in the workflow; deploy --prune would delete them): %s",
      concat(names, ", "))
  end
  return concat(out, "\n") .. "\n"
end

-- The document of `moonship diff -o json` (README.md, "moonship diff", gives its shape).
function M.json(result)
  local objects, tasks = {}, {}
  for i, e in ipairs(result.objects) do
    objects[i] = {action = e.action, apiVersion = e.apiVersion, kind = e.kind, name = e.name,
                  namespace = e.namespace, task = e.task, diff = json.array(e.diff or {}),
                  previous = e.previous, spec_changed = e.spec_changed, message = e.message}
  end
  for i, te in ipairs(result.tasks) do tasks[i] = {task = te.task, state = te.state, reason = te.reason} end
  local left = {}
  for i, obj in ipairs(result.left_behind or {}) do
    local md = obj.metadata
    left[i] = {apiVersion = obj.apiVersion, kind = obj.kind, name = md.name, namespace = md.namespace}
  end
  return json.encode({app = result.app, workflow = result.workflow, namespace = result.namespace,
                      server = result.server, namespace_missing = result.namespace_missing,
                      differences = result.differences, counts = result.counts,
                      objects = json.array(objects), tasks = json.array(tasks), left_behind = json.array(left)},
                     {sort_keys = true, indent = 2}) .. "\n"
end

return M
