-- `moonship plan` as text: the workflow drawn as boxes (one per step, its tasks side by side,
-- a background step as a lane running on beside the later steps, halt points, the critical
-- path in heavy lines), then the predicted timeline as bars on a time axis. Unicode box drawing,
-- or plain ASCII for terminals and logs that are not UTF-8.
local fmt, rep, concat = string.format, string.rep, table.concat
local ulen = utf8.len

local M = {}

-- The narrowest text plan (--width below it is refused) and the widest.
M.MIN_WIDTH, M.MAX_WIDTH = 40, 220

local UNICODE = {
  tl = "┌", tr = "┐", bl = "└", br = "┘", h = "─", v = "│",
  TL = "┏", TR = "┓", BL = "┗", BR = "┛", H = "━", V = "┃",
  lane = "┃", lane_end = "┻", join = "├", to = "→", dot = "·",
  crit = "★", halt = "■", background = "↷", bar = "█", bar_other = "▒",
  axis = "─", tick = "┼", axis_start = "├", axis_end = "┤",
}
local ASCII = {
  tl = "+", tr = "+", bl = "+", br = "+", h = "-", v = "|",
  TL = "#", TR = "#", BL = "#", BR = "#", H = "=", V = "#",
  lane = "|", lane_end = "'", join = "+", to = "->", dot = "-",
  crit = "*", halt = "!", background = ">>", bar = "#", bar_other = "=",
  axis = "-", tick = "+", axis_start = "|", axis_end = "|",
}
M.UNICODE, M.ASCII = UNICODE, ASCII

-- True when the locale says UTF-8 (LC_ALL, else LC_CTYPE, else LANG: the first one set wins).
function M.locale_is_utf8(getenv)
  getenv = getenv or os.getenv
  for _, name in ipairs {"LC_ALL", "LC_CTYPE", "LANG"} do
    local v = getenv(name)
    if v and v ~= "" then return v:lower():match("utf%-?8") ~= nil end
  end
  return false
end

local secs = require("moonship.duration").format
M.format_seconds = secs

local function width_of(s) return ulen(s) or #s end

local function pad(s, w) return s .. rep(" ", math.max(0, w - width_of(s))) end

-- Cuts s to w columns (the last one an ellipsis mark when cut).
local function fit(s, w, g)
  if width_of(s) <= w then return s end
  local cut, n = {}, 0
  for _, c in utf8.codes(s) do
    if n >= w - 1 then break end
    cut[#cut + 1] = utf8.char(c)
    n = n + 1
  end
  return concat(cut) .. (g == ASCII and "~" or "…")
end

-- Words of text in lines of at most w columns, the lines after the first indented by `indent`
-- (text that fits is left as it is).
local function wrap(text, w, indent)
  if width_of(text) <= w then return {text} end
  local lines, line = {}, nil
  for word in text:gmatch("%S+") do
    if line and width_of(line) + 1 + width_of(word) > w then
      lines[#lines + 1] = line
      line = indent .. word
    else
      line = line and (line .. " " .. word) or word
    end
  end
  lines[#lines + 1] = line or ""
  return lines
end

-- A horizontal rule with text embedded after the corner: ┌─ text ───── right ─┐, within w
-- columns: the right text is cut first (to half the rule), then the text.
local function rule(left, right, w, h, text, right_text, g)
  local tail = right_text and (" " .. right_text .. " " .. h) or ""
  local body = h .. " " .. text .. " "
  if width_of(body) + width_of(tail) > w - 3 and width_of(tail) > (w - 2) // 2 then
    tail = " " .. fit(right_text, math.max(1, (w - 2) // 2 - 3), g) .. " " .. h
  end
  local fill = w - 2 - width_of(body) - width_of(tail)
  if fill < 1 then
    body = h .. " " .. fit(text, math.max(1, w - 6 - width_of(tail)), g) .. " "
    fill = math.max(0, w - 2 - width_of(body) - width_of(tail))
  end
  return left .. body .. rep(h, fill) .. tail .. right
end

-- What plan --diff says of a task (tk.diff), after its name: the signs of moonship diff.
M.DIFF_MARKS = {new = "+ new", changed = "~ changed", unchanged = "= unchanged", not_compared = "? not compared",
                error = "! error"}

-- The cells of one step: each task a small box of two lines, heavy when on the critical path.
local function task_cells(s, g, on_path, max_label)
  local cells = {}
  for _, tk in ipairs(s.tasks) do
    local crit = on_path[tk.id]
    local mark = tk.diff and M.DIFF_MARKS[tk.diff]
    local name = (crit and (g.crit .. " ") or "") .. fit(tk.id, max_label - (mark and #mark + 2 or 0), g)
      .. (mark and ("  " .. mark) or "")
    local when = fmt("%s%s  %s %s %s", tk.estimated and "~" or "", secs(tk.seconds), secs(tk.start), g.to, secs(tk.finish))
    if tk.halt then when = when .. "  " .. g.halt end
    local inner = math.max(width_of(name), width_of(when))
    local tl, tr, bl, br, h, v = g.tl, g.tr, g.bl, g.br, g.h, g.v
    if crit then tl, tr, bl, br, h, v = g.TL, g.TR, g.BL, g.BR, g.H, g.V end
    cells[#cells + 1] = {
      width = inner + 4,
      lines = {tl .. rep(h, inner + 2) .. tr, v .. " " .. pad(name, inner) .. " " .. v,
               v .. " " .. pad(when, inner) .. " " .. v, bl .. rep(h, inner + 2) .. br},
    }
  end
  return cells
end

-- Lays cells side by side in rows that fit `inner` columns.
local function cell_rows(cells, inner)
  local rows, row, used = {}, {}, 0
  for _, c in ipairs(cells) do
    if #row > 0 and used + 1 + c.width > inner then
      rows[#rows + 1], row, used = row, {}, 0
    end
    used = used + (#row > 0 and 1 or 0) + c.width
    row[#row + 1] = c
  end
  if #row > 0 then rows[#rows + 1] = row end
  return rows
end

local function flow(lines, wf, sched, g, width, on_path)
  local lanes = {}   -- open background lanes: {name=, finish=}
  local function prefix()
    local p = {}
    for i = 1, #lanes do p[i] = g.lane .. " " end
    return "  " .. concat(p)
  end
  for i, s in ipairs(sched.steps) do
    local pre = prefix()
    local box_w = math.max(30, width - width_of(pre))
    local inner = box_w - 4
    local marks = {}
    if s.background then marks[#marks + 1] = g.background .. " background" end
    if s.halt then marks[#marks + 1] = g.halt .. " halt on error" end
    if s.max_parallel then marks[#marks + 1] = "max " .. s.max_parallel .. " at once" end
    local title = fmt("%d %s %s %s %s %s %s", i, g.dot, s.name, g.dot, secs(s.start), g.to, secs(s.finish))
    lines[#lines + 1] = pre .. rule(g.tl, g.tr, box_w, g.h, title, #marks > 0 and concat(marks, " ") or nil, g)
    local cells = task_cells(s, g, on_path, math.max(12, inner - 6))
    if #cells == 0 then lines[#lines + 1] = pre .. g.v .. " " .. pad("(no tasks)", inner) .. " " .. g.v end
    for _, row in ipairs(cell_rows(cells, inner)) do
      for l = 1, 4 do
        local parts = {}
        for k, c in ipairs(row) do parts[k] = c.lines[l] end
        lines[#lines + 1] = pre .. g.v .. " " .. pad(concat(parts, " "), inner) .. " " .. g.v
      end
    end
    if s.background then
      lines[#lines + 1] = pre .. g.join .. rep(g.h, box_w - 2) .. g.br
      lanes[#lanes + 1] = {name = s.name, finish = s.finish}
      local pre_lane = prefix()
      lines[#lines + 1] = pre_lane .. fit(g.background .. " " .. s.name .. " runs on beside the next steps",
        width - width_of(pre_lane), g)
    else
      lines[#lines + 1] = pre .. g.bl .. rep(g.h, box_w - 2) .. g.br
    end
    -- A lane ends where its step is predicted to finish: before the first later step that
    -- starts after it, or at the end.
    local next_step = sched.steps[i + 1]
    for k = #lanes, 1, -1 do
      local lane = lanes[k]
      if lane.name ~= s.name and (not next_step or next_step.start >= lane.finish) then
        local p = {}
        for j = 1, #lanes do p[j] = (j == k and g.lane_end or g.lane) .. " " end
        local pre_done = "  " .. concat(p)
        lines[#lines + 1] = pre_done .. fit(fmt("%s done at %s", lane.name, secs(lane.finish)), width - width_of(pre_done), g)
        table.remove(lanes, k)
      end
    end
    if next_step and lanes[1] == nil and not s.background then
      lines[#lines + 1] = "  " .. rep(" ", 2) .. g.v
    end
  end
end

-- Axis ticks: a round step (in seconds, minutes or hours) giving about one tick per ten columns.
local NICE = {0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200}
local function tick_step(total, columns)
  local target = total / math.max(1, columns / 10)
  for _, step in ipairs(NICE) do
    if step >= target then return step end
  end
  return NICE[#NICE]
end

local function timeline(lines, sched, g, width, on_path)
  local total = sched.makespan
  if total <= 0 then return end
  local label_w = 8
  for _, s in ipairs(sched.steps) do
    for _, tk in ipairs(s.tasks) do label_w = math.max(label_w, width_of(tk.id) + 7 + width_of(g.background)) end
  end
  -- the labels take at most 42 columns, and at most about half of a narrow width
  label_w = math.min(label_w, 42, math.floor(width * 0.45))
  local chart_w = math.max(10, width - label_w - 11) -- room for " ~1h30m ■" after a bar
  local scale = chart_w / total
  local function col(x) return math.floor(x * scale + 0.5) end
  local step = tick_step(total, chart_w)
  -- axis labels and the axis line
  local labels, axis = {}, {}
  for c = 0, chart_w do axis[c] = g.axis end
  axis[0], axis[chart_w] = g.axis_start, g.axis_end
  for c = 0, chart_w + 8 do labels[c] = " " end
  local x = 0
  while x <= total + 1e-9 do
    local c = col(x)
    if c > 0 and c < chart_w then axis[c] = g.tick end
    local text = secs(x)
    local free = true
    for k = math.max(0, c - 1), c + #text do if labels[k] ~= " " then free = false end end
    if free then for k = 1, #text do labels[c + k - 1] = text:sub(k, k) end end
    x = x + step
  end
  lines[#lines + 1] = ""
  lines[#lines + 1] = "  " .. pad(fit("predicted timeline", label_w - 1, g), label_w)
    .. concat(labels, "", 0, chart_w + 8):gsub("%s+$", "")
  lines[#lines + 1] = "  " .. rep(" ", label_w) .. concat(axis, "", 0, chart_w)
  for i, s in ipairs(sched.steps) do
    for j, tk in ipairs(s.tasks) do
      local head = j == 1 and fmt("%-2d", i) or "  "
      local mark = s.background and g.background or ""
      local crit = on_path[tk.id] and g.crit or ""
      local label = fmt("%s %s%s %s", head, pad(mark, width_of(g.background)), pad(crit, 1), fit(tk.id, label_w - 6 - width_of(g.background), g))
      local a, b = col(tk.start), math.max(col(tk.start) + 1, col(tk.finish))
      local glyph = on_path[tk.id] and g.bar or g.bar_other
      local tail = " " .. (tk.estimated and "~" or "") .. secs(tk.seconds) .. (tk.halt and (" " .. g.halt) or "")
      lines[#lines + 1] = "  " .. pad(label, label_w) .. rep(" ", a) .. rep(glyph, b - a) .. tail
    end
  end
end

-- render(workflow, schedule, {ascii=, width=, app=}) -> text
function M.render(wf, sched, opts)
  opts = opts or {}
  local g = opts.ascii and ASCII or UNICODE
  local width = math.max(M.MIN_WIDTH, math.min(opts.width or 100, M.MAX_WIDTH))
  local on_path = {}
  for _, id in ipairs(sched.critical_path) do on_path[id] = true end
  local ntasks = 0
  for _, s in ipairs(sched.steps) do ntasks = ntasks + #s.tasks end
  local any_estimated = false
  for _, s in ipairs(sched.steps) do
    for _, tk in ipairs(s.tasks) do any_estimated = any_estimated or tk.estimated end
  end
  local path = {}
  for k, id in ipairs(sched.critical_path) do path[k] = id .. (k < #sched.critical_path and (" " .. g.to) or "") end
  if #path == 0 then path[1] = "(none)" end
  -- the title, wrapped at its dots to the width
  local lines = {}
  local title
  for _, part in ipairs {opts.app, "workflow " .. wf.name,
                         fmt("%d step%s, %d task%s", #sched.steps, #sched.steps == 1 and "" or "s", ntasks,
                           ntasks == 1 and "" or "s"),
                         "predicted makespan " .. secs(sched.makespan)} do
    local piece = fit(part, width, g)
    if not title then
      title = piece
    elseif width_of(title) + 3 + width_of(piece) > width then
      lines[#lines + 1] = title
      title = piece
    else
      title = title .. " " .. g.dot .. " " .. piece
    end
  end
  lines[#lines + 1] = title
  -- the critical path, wrapped at its arrows to the width
  local head = g.crit .. " critical path:"
  local line = head
  for _, part in ipairs(path) do
    if width_of(line) + 1 + width_of(part) > width and line ~= head then
      lines[#lines + 1] = line
      line = rep(" ", width_of(head))
    end
    line = line .. " " .. fit(part, width - width_of(head) - 1, g)
  end
  lines[#lines + 1] = line
  local legend = fmt("%s halt on error   %s background: later steps start once its tasks have started", g.halt, g.background)
  if width_of(legend) > width then
    lines[#lines + 1] = g.halt .. " halt on error"
    legend = g.background .. " background: later steps start once its tasks have started"
  end
  for _, l in ipairs(wrap(legend, width, "  ")) do lines[#lines + 1] = l end
  if any_estimated then
    for _, l in ipairs(wrap("~ default estimate (no earlier run to measure)", width, "  ")) do lines[#lines + 1] = l end
  end
  local marked = false
  for _, s in ipairs(sched.steps) do
    for _, tk in ipairs(s.tasks) do marked = marked or tk.diff ~= nil end
  end
  if marked then
    local legend_diff = "against the cluster: + new  ~ changed  = unchanged  ? not compared (moonship diff shows the changes)"
    for _, l in ipairs(wrap(legend_diff, width, "  ")) do lines[#lines + 1] = l end
  end
  local note = require("moonship.model.plan").durations_note(opts)
  if note then
    for _, l in ipairs(wrap(note, width, "  ")) do lines[#lines + 1] = l end
  end
  lines[#lines + 1] = ""
  flow(lines, wf, sched, g, width, on_path)
  timeline(lines, sched, g, width, on_path)
  return concat(lines, "\n") .. "\n"
end

return M
