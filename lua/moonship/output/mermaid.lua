-- `moonship plan --format mermaid`: the predicted timeline as a Mermaid gantt chart, which
-- GitHub renders in Markdown: a section per step (background steps say so and their bars run on
-- beside the later sections), a task per line with its estimated duration, `crit` on the
-- critical path, and a milestone where a halt_on_error task may stop the run.
local fmt, concat = string.format, table.concat

local M = {}

-- Mermaid's statement text may not hold ':' (it separates the task's data), ';' or '#'
-- (entities), nor line breaks.
local function text(s)
  return (tostring(s):gsub("[:;#%c]", " "):gsub("%s+", " "):gsub("^ ", ""):gsub(" $", ""))
end
M.text = text

-- Times on the chart: HH:mm:ss, or HH:mm:ss.SSS for a plan shorter than a minute with times
-- between whole seconds (measured on a fast run, as on kubesim with a time scale), where whole
-- seconds would blur the picture.
local function clock(x, precise)
  if precise then
    local ms = math.floor(x * 1000 + 0.5)
    return fmt("%02d:%02d:%02d.%03d", ms // 3600000, ms // 60000 % 60, ms // 1000 % 60, ms % 1000)
  end
  x = math.floor(x + 0.5)
  return fmt("%02d:%02d:%02d", x // 3600, x // 60 % 60, x % 60)
end

-- A bar's length in the chart's unit (never zero: Mermaid would draw nothing).
local function length(start, finish, precise)
  if precise then
    return fmt("%dms", math.max(1, math.floor(finish * 1000 + 0.5) - math.floor(start * 1000 + 0.5)))
  end
  return fmt("%ds", math.max(1, math.floor(finish + 0.5) - math.floor(start + 0.5)))
end

local secs = require("moonship.duration").format

-- render(workflow, schedule, {app=}) -> text
function M.render(wf, sched, opts)
  opts = opts or {}
  local on_path = {}
  for _, id in ipairs(sched.critical_path) do on_path[id] = true end
  local precise = false
  for _, s in ipairs(sched.steps) do
    for _, tk in ipairs(s.tasks) do
      if tk.start % 1 ~= 0 or tk.finish % 1 ~= 0 then precise = sched.makespan < 60 end
    end
  end
  local titles = {}
  for i, s in ipairs(sched.steps) do
    local marks = {}
    if s.background then marks[#marks + 1] = "background, runs on" end
    if s.halt then marks[#marks + 1] = "halt on error" end
    titles[i] = text(fmt("%d %s%s", i, s.name, #marks > 0 and (" (" .. concat(marks, ", ") .. ")") or ""))
  end
  -- Mermaid leaves 75 px for section names; make room for ours with an init directive (which
  -- renderers that do not know it read as a comment).
  local longest = 0
  for _, t in ipairs(titles) do longest = math.max(longest, utf8.len(t) or #t) end
  local lines = {
    fmt('%%%%{init: {"gantt": {"leftPadding": %d}}}%%%%', math.max(75, math.min(320, longest * 7 + 24))),
    "gantt",
    "    title " .. text(fmt("%s%s - predicted makespan %s", opts.app and (opts.app .. " / ") or "", wf.name, secs(sched.makespan))),
    precise and "    dateFormat HH:mm:ss.SSS" or "    dateFormat HH:mm:ss",
    precise and "    axisFormat %S.%L" or "    axisFormat %M:%S",
    "    todayMarker off",
  }
  local note = require("moonship.model.plan").durations_note(opts)
  if note then table.insert(lines, 3, "    %% " .. note) end
  local n = 0
  for i, s in ipairs(sched.steps) do
    lines[#lines + 1] = "    section " .. titles[i]
    for _, tk in ipairs(s.tasks) do
      n = n + 1
      local tags = on_path[tk.id] and "crit, " or ""
      lines[#lines + 1] = fmt("    %s %s%s :%st%d, %s, %s", text(tk.id), tk.estimated and "~" or "", secs(tk.seconds),
        tags, n, clock(tk.start, precise), length(tk.start, tk.finish, precise))
      if tk.halt then
        lines[#lines + 1] = fmt("    halt if %s fails :milestone, crit, h%d, %s, 0s", text(tk.id), n, clock(tk.finish, precise))
      end
    end
  end
  return concat(lines, "\n") .. "\n"
end

return M
