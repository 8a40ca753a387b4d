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

-- Whole seconds as the chart's HH:mm:ss dateFormat (times are in whole seconds: Mermaid's
-- durations are, and a plan's estimates need no more).
local function clock(x)
  x = math.floor(x + 0.5)
  return fmt("%02d:%02d:%02d", x // 3600, x // 60 % 60, x % 60)
end

local function secs(x)
  if x >= 60 then
    local whole = math.floor(x + 0.5)
    return fmt("%dm%02ds", whole // 60, whole % 60)
  end
  return fmt("%gs", math.floor(x * 10 + 0.5) / 10)
end

-- render(workflow, schedule, {app=}) -> text
function M.render(wf, sched, opts)
  opts = opts or {}
  local on_path = {}
  for _, id in ipairs(sched.critical_path) do on_path[id] = true end
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
    "    dateFormat HH:mm:ss",
    "    axisFormat %M:%S",
    "    todayMarker off",
  }
  local n = 0
  for i, s in ipairs(sched.steps) do
    lines[#lines + 1] = "    section " .. titles[i]
    for _, tk in ipairs(s.tasks) do
      n = n + 1
      local start = math.floor(tk.start + 0.5)
      local seconds = math.max(1, math.floor(tk.finish + 0.5) - start)
      local tags = on_path[tk.id] and "crit, " or ""
      lines[#lines + 1] = fmt("    %s %s%s :%st%d, %s, %ds", text(tk.id), tk.estimated and "~" or "", secs(tk.seconds),
        tags, n, clock(start), seconds)
      if tk.halt then
        lines[#lines + 1] = fmt("    halt if %s fails :milestone, crit, h%d, %s, 0s", text(tk.id), n, clock(tk.finish))
      end
    end
  end
  return concat(lines, "\n") .. "\n"
end

return M
