-- `moonship plan --format dot`: the workflow as a Graphviz graph, left to right: a cluster per
-- step holding its tasks (side by side, top to bottom), edges for the step order (dashed from a
-- background step: the next one starts once its tasks have started, and it joins at the end),
-- halt points marked, the critical path in red. `dot -Tsvg plan.dot > plan.svg` draws it.
local fmt, concat = string.format, table.concat

local M = {}

local function quote(s)
  return '"' .. tostring(s):gsub('[\\"]', "\\%0"):gsub("\r?\n", "\\n"):gsub("%c", " ") .. '"'
end
M.quote = quote

local secs = require("moonship.duration").format

local RED, BLUE, GREY = "#cf222e", "#0969da", "#57606a"

-- render(workflow, schedule, {app=}) -> text
function M.render(wf, sched, opts)
  opts = opts or {}
  local on_path = {}
  for _, id in ipairs(sched.critical_path) do on_path[id] = true end
  local title = fmt("%s%s: predicted makespan %s", opts.app and (opts.app .. " / ") or "", wf.name, secs(sched.makespan))
  local note = require("moonship.model.plan").durations_note(opts)
  if note then title = title .. "\n" .. note end
  local lines = {
    "digraph " .. quote((opts.app and (opts.app .. "/") or "") .. wf.name) .. " {",
    "  graph [rankdir=LR, compound=true, newrank=true, nodesep=0.25, ranksep=0.6, fontname=\"Helvetica\", labelloc=t, label=" .. quote(title) .. "];",
    "  node [shape=box, style=\"rounded,filled\", fillcolor=\"#ffffff\", color=\"#8c959f\", fontname=\"Helvetica\", fontsize=11];",
    "  edge [color=\"" .. GREY .. "\", fontname=\"Helvetica\", fontsize=9];",
    "  start [shape=circle, label=\"start\", fillcolor=\"#f6f8fa\"];",
    "  done [shape=doublecircle, label=" .. quote("done\n" .. secs(sched.makespan)) .. ", fillcolor=\"#f6f8fa\"];",
  }
  local reps, n = {}, 0   -- per step: the node the step's edges attach to (its critical task if any)
  for i, s in ipairs(sched.steps) do
    local marks = {}
    if s.background then marks[#marks + 1] = "↷ background" end
    if s.halt then marks[#marks + 1] = "■ halt on error" end
    if s.max_parallel then marks[#marks + 1] = "max " .. s.max_parallel .. " at once" end
    local label = fmt("%d %s  (%s → %s)%s", i, s.name, secs(s.start), secs(s.finish),
      #marks > 0 and ("\n" .. concat(marks, ", ")) or "")
    lines[#lines + 1] = fmt("  subgraph cluster_%d {", i)
    lines[#lines + 1] = fmt("    label=%s; style=%s; color=%q; fontname=\"Helvetica\"; fontsize=11;", quote(label),
      s.background and "\"dashed,rounded\"" or "rounded", s.background and BLUE or (s.halt and RED or GREY))
    if #s.tasks == 0 then
      n = n + 1
      lines[#lines + 1] = fmt("    t%d [label=\"(no tasks)\", style=dashed];", n)
      reps[i] = {node = "t" .. n}
    end
    for _, tk in ipairs(s.tasks) do
      n = n + 1
      local node = "t" .. n
      local text = fmt("%s\n%s%s  (%s → %s)%s", tk.id, tk.estimated and "~" or "", secs(tk.seconds), secs(tk.start),
        secs(tk.finish), tk.halt and "\n■ halt on error" or "")
      local attrs = {"label=" .. quote(text)}
      if on_path[tk.id] then
        attrs[#attrs + 1] = fmt("color=%q, penwidth=2.5, fontcolor=%q", RED, RED)
      end
      if tk.halt then attrs[#attrs + 1] = "peripheries=2" end
      lines[#lines + 1] = fmt("    %s [%s];", node, concat(attrs, ", "))
      if not reps[i] or (on_path[tk.id] and not reps[i].critical) then
        reps[i] = {node = node, critical = on_path[tk.id]}
      end
    end
    -- the tasks of a step side by side (one rank: a column, left to right)
    if #s.tasks > 1 then
      local ids = {}
      for k = n - #s.tasks + 1, n do ids[#ids + 1] = "t" .. k end
      lines[#lines + 1] = "    {rank=same; " .. concat(ids, "; ") .. ";}"
    end
    lines[#lines + 1] = "  }"
  end
  -- The step order: start -> step 1 -> step 2 ... -> done; background steps also join done.
  local steps = sched.steps
  if #steps > 0 then
    lines[#lines + 1] = fmt("  start -> %s [lhead=cluster_1%s];", reps[1].node,
      reps[1].critical and fmt(", color=%q, penwidth=2", RED) or "")
  else
    lines[#lines + 1] = "  start -> done;"
  end
  for i = 1, #steps - 1 do
    local a, b = reps[i], reps[i + 1]
    local attrs = {fmt("ltail=cluster_%d, lhead=cluster_%d", i, i + 1)}
    if steps[i].background then attrs[#attrs + 1] = "style=dashed, label=\"once started\"" end
    if a.critical and b.critical and not steps[i].background then attrs[#attrs + 1] = fmt("color=%q, penwidth=2", RED) end
    lines[#lines + 1] = fmt("  %s -> %s [%s];", a.node, b.node, concat(attrs, ", "))
  end
  for i, s in ipairs(steps) do
    if i == #steps or s.background then
      local attrs = {fmt("ltail=cluster_%d", i)}
      if s.background then attrs[#attrs + 1] = fmt("style=dashed, color=%q, label=%s", BLUE, quote("runs on, done " .. secs(s.finish))) end
      if reps[i].critical then attrs[#attrs + 1] = fmt("color=%q, penwidth=2", RED) end
      lines[#lines + 1] = fmt("  %s -> done [%s];", reps[i].node, concat(attrs, ", "))
    end
  end
  lines[#lines + 1] = "}"
  return concat(lines, "\n") .. "\n"
end

return M
