-- The HTML report of a run (`deploy --report FILE.html`, `moonship report JOURNAL`): one
-- self-contained page (inline CSS, SVG and script; nothing fetched) with the run's timeline as a
-- Gantt chart (a lane per step, a bar per task attempt, the halt point, the critical path) and
-- the summary table. html.render(events [, opts]) -> text is a pure function of the journal's
-- events; everything from them is user data and is escaped.
local json = require "moonship.json"
local fs = require "moonship.fs"
local timeline = require "moonship.output.timeline"

local fmt, concat = string.format, table.concat

local M = {}

-- ---- text -----------------------------------------------------------------------------------

-- Removes terminal escapes and control characters (logs carry them), keeps tabs and newlines.
local function clean(s)
  s = tostring(s == nil and "" or s)
  s = s:gsub("\27%[[%d;?]*[%a@]", ""):gsub("\27%][^\7]*\7", "")
  return (s:gsub("[%z\1-\8\11\12\14-\31\127]", ""))
end

local ENTITIES = {["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;", ["'"] = "&#39;"}

-- Escapes text for an HTML text node or a quoted attribute value.
local function esc(s) return (clean(s):gsub("[&<>\"']", ENTITIES)) end
M.escape = esc

-- JSON inside <script>: no "<" may appear raw (it could close the element).
local function script_json(v) return (json.encode(v, {sort_keys = true}):gsub("<", "\\u003c")) end

local function seconds(x, total)
  total = total or x
  if x == nil then return "" end
  if total >= 120 then
    local whole = math.floor(x + 0.5)
    return fmt("%dm%02ds", whole // 60, whole % 60)
  elseif total >= 10 then
    return fmt("%.1fs", x)
  end
  return fmt("%.2fs", x)
end
M.seconds = seconds

local function num(x) return fmt("%.1f", x) end

-- ---- layout ---------------------------------------------------------------------------------

local WIDTH, RIGHT = 1200, 104
local TOP_HALT, TOP_PLAIN = 58, 36   -- room for the halt label (when there is one) and the axis
local HEADER, ROW, BAR = 22, 26, 16
-- The label column fits the longest task label (monospace 12px) and step title (bold 13px),
-- within these bounds; a longer label is cut with "…" (its <title> has it whole).
local LABEL_MIN, LABEL_MAX, LABEL_X, MONO_W, TITLE_W = 200, 470, 24, 7.3, 8.2

local STATE_LABEL = {
  succeeded = "succeeded", failed = "failed", cancelled = "cancelled", recovered = "recovered",
  skipped = "skipped", retried = "failed, retried", running = "unfinished", pending = "not started",
}

local NICE = {0.01, 0.02, 0.05, 0.1, 0.2, 0.25, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600}
local function tick_step(total)
  for _, s in ipairs(NICE) do
    if total / s <= 12 then return s end
  end
  return 7200
end

local function object_names(t)
  local names, seen = {}, {}
  for _, o in ipairs(t.objects) do
    local name = (o.kind or "?"):lower() .. "/" .. tostring(o.name)
    if not seen[name] then
      seen[name] = true
      names[#names + 1] = name
    end
  end
  return names
end

local function task_duration(t)
  local a = t.attempts[1]
  if not a then return nil end
  return timeline.task_end(t) - a.start
end

-- The hover text of one attempt segment.
local function attempt_title(run, t, a, total)
  local lines = {fmt("%s · attempt %d of %d", t.id, a.n or 1, #t.attempts),
                 fmt("%s → %s (%s)", seconds(a.start, total), seconds(a.finish, total), seconds(a.finish - a.start, total)),
                 "state: " .. (STATE_LABEL[a.state] or tostring(a.state))}
  if a.message then lines[#lines + 1] = tostring(a.message) end
  if t.step then lines[#lines + 1] = "step: " .. t.step end
  local objs = object_names(t)
  if #objs > 0 then lines[#lines + 1] = "objects: " .. concat(objs, ", ") end
  for i = #t.logs, 1, -1 do
    if not t.logs[i].hook then
      lines[#lines + 1] = "last log: " .. tostring(t.logs[i].text)
      break
    end
  end
  if run.critical[t.id] then lines[#lines + 1] = "on the critical path" end
  return concat(lines, "\n")
end

local function svg_defs()
  return [[
<defs>
  <pattern id="p-cancelled" width="8" height="8" patternUnits="userSpaceOnUse" patternTransform="rotate(45)">
    <rect width="8" height="8" fill="#d8dee4"/><line x1="0" y1="0" x2="0" y2="8" stroke="#8c959f" stroke-width="3"/>
  </pattern>
  <pattern id="p-recovered" width="8" height="8" patternUnits="userSpaceOnUse" patternTransform="rotate(-45)">
    <rect width="8" height="8" fill="#aceebb"/><line x1="0" y1="0" x2="0" y2="8" stroke="#1a7f37" stroke-width="3"/>
  </pattern>
  <pattern id="p-running" width="8" height="8" patternUnits="userSpaceOnUse" patternTransform="rotate(45)">
    <rect width="8" height="8" fill="#b6e3ff"/><line x1="0" y1="0" x2="0" y2="8" stroke="#0969da" stroke-width="2"/>
  </pattern>
</defs>
]]
end

-- Characters of text (UTF-8), for width estimates.
local function chars(text) return utf8.len(text) or #text end

-- The width of the label column, and how many characters a task label may have in it.
local function label_column(lanes, run)
  local want = LABEL_MIN
  for _, lane in ipairs(lanes) do
    want = math.max(want, 12 + chars(lane.title) * TITLE_W + 16)
    for _, id in ipairs(lane.tasks) do
      want = math.max(want, LABEL_X + (chars(id) + (run.critical[id] and 2 or 0)) * MONO_W + 20)
    end
  end
  local width = math.min(math.ceil(want), LABEL_MAX)
  return width, math.floor((width - LABEL_X - 20) / MONO_W)
end

-- s cut to n characters, ending with "…" when cut.
local function cut(s, n)
  if chars(s) <= n then return s end
  return s:sub(1, utf8.offset(s, n)  - 1) .. "…"
end

-- The chart's lanes: every step of the plan in order (one a halt kept from starting too), then
-- tasks of no step (a journal without the plan).
local function chart_lanes(run)
  local lanes = {}
  for i, st in ipairs(run.steps) do
    local kind = not st.start and "idle" or (st.background and "background" or (i % 2 == 0 and "even" or "plain"))
    lanes[#lanes + 1] = {step = st, tasks = st.tasks, kind = kind, idle = not st.start,
                         title = fmt("%d · %s", st.index, st.name)}
  end
  if #run.not_started > 0 then
    lanes[#lanes + 1] = {title = "not started (run " .. tostring(run.state) .. ")", tasks = run.not_started,
                         idle = true, kind = "idle"}
  end
  return lanes
end

-- A chart being drawn: its geometry (top, label column, plot width, height), its lanes (each
-- with its y) and the SVG lines so far. chart:x(t) is the x of a time; chart:add(fmt, ...) a line.
local Chart = {}
Chart.__index = Chart

local function new_chart(run)
  local c = setmetatable({run = run, top = run.halt and TOP_HALT or TOP_PLAIN, total = math.max(run.duration, 1e-3),
                          lanes = chart_lanes(run), out = {}}, Chart)
  c.label, c.label_chars = label_column(c.lanes, run)
  c.plot = WIDTH - c.label - RIGHT
  local y = c.top
  for _, lane in ipairs(c.lanes) do
    lane.y = y
    y = y + HEADER + math.max(1, #lane.tasks) * ROW + 8
  end
  c.height = y + 34
  return c
end

function Chart:x(t) return self.label + (t / self.total) * self.plot end

function Chart:add(s, ...) self.out[#self.out + 1] = select("#", ...) > 0 and fmt(s, ...) or s end

local function draw_lane_backgrounds(c)
  for _, lane in ipairs(c.lanes) do
    local h = HEADER + math.max(1, #lane.tasks) * ROW
    c:add('<rect class="lane %s" x="0" y="%s" width="%d" height="%s" rx="6"/>', lane.kind, num(lane.y - 4), WIDTH,
      num(h + 6))
  end
end

local function draw_time_grid(c)
  local step = tick_step(c.total)
  local x = 0
  while x <= c.total + 1e-9 do
    c:add('<line class="grid" x1="%s" x2="%s" y1="%d" y2="%d"/>', num(c:x(x)), num(c:x(x)), c.top - 8, c.height - 30)
    c:add('<text class="tick" x="%s" y="%d">%s</text>', num(c:x(x)), c.top - 12, esc(seconds(x, c.total)))
    x = x + step
  end
  c:add('<line class="axis" x1="%d" x2="%d" y1="%d" y2="%d"/>', c.label, c.label + c.plot, c.top - 8, c.top - 8)
end

-- What a step's title says beside it: its times, and how it ended when not as planned.
local function step_notes(c, st)
  if not st.start then return {"not started (run " .. tostring(c.run.state) .. ")"} end
  local notes = {}
  if st.background then notes[#notes + 1] = "↷ background: runs beside the steps below" end
  notes[#notes + 1] = fmt("%s → %s", seconds(st.start, c.total), seconds(st.finish, c.total))
  if st.state == "failed" and not st.halt then
    notes[#notes + 1] = "ignored failures"
  elseif st.state and st.state ~= "succeeded" then
    notes[#notes + 1] = st.state
  end
  return notes
end

-- Each lane's title and notes (with a halo of the lane's colour, so that no grid line crosses
-- a word), and its step's span.
local function draw_lane_titles(c)
  for _, lane in ipairs(c.lanes) do
    local st = lane.step
    c:add('<g class="halo %s">', lane.kind)
    c:add('<text class="step-title%s" x="12" y="%s">%s</text>', lane.idle and " muted" or "", num(lane.y + 13),
      esc(lane.title))
    if st then
      c:add('<text class="step-note" x="%s" y="%s">%s</text>', num(c.label + 6), num(lane.y + 13),
        esc(concat(step_notes(c, st), " · ")))
    end
    c:add("</g>")
    if st and st.start then
      c:add('<line class="span%s" x1="%s" x2="%s" y1="%s" y2="%s"/>', st.background and " background" or "",
        num(c:x(st.start)), num(math.max(c:x(st.finish or 0), c:x(st.start) + 2)), num(lane.y + 18), num(lane.y + 18))
    end
  end
end

-- The short bar of a task that never ran: not started, or skipped.
local function draw_not_run(c, lane, t, cy)
  local at = c.run.halt and c.run.halt.t or (t.finish or 0)
  local word = (lane.idle or t.state == "pending") and "not started" or "skipped"
  c:add('<g class="bar skipped" data-task="%s" data-attempt="0"><title>%s</title>', esc(t.id),
    esc(t.id .. "\n" .. (STATE_LABEL[t.state] or t.state) .. (t.message and ("\n" .. t.message) or "")))
  c:add('<rect x="%s" y="%s" width="84" height="%d" rx="3"/>', num(c:x(at) + 4), num(cy - BAR / 2), BAR)
  c:add('<text class="bar-text dark" x="%s" y="%s">%s</text></g>', num(c:x(at) + 10), num(cy + 4), esc(word))
end

-- A bar per attempt, joined by a gap line; its duration inside it when it fits.
local function draw_attempts(c, t, cy)
  local run, total, prev = c.run, c.total, nil
  for k, a in ipairs(t.attempts) do
    local state = a.state or "running"
    if k < #t.attempts then state = "retried" end
    local x1, x2 = c:x(a.start), c:x(a.finish or run.duration)
    local w = math.max(3, x2 - x1)
    if prev then
      c:add('<line class="retry-gap" x1="%s" x2="%s" y1="%s" y2="%s"/>', num(prev), num(x1), num(cy), num(cy))
    end
    c:add('<g class="bar %s" data-task="%s" data-attempt="%d"><title>%s</title>', esc(state), esc(t.id), a.n or k,
      esc(attempt_title(run, t, {n = a.n or k, start = a.start, finish = a.finish or run.duration, state = state,
                                 message = a.message}, total)))
    c:add('<rect x="%s" y="%s" width="%s" height="%d" rx="3"/>', num(x1), num(cy - BAR / 2), num(w), BAR)
    local text = #t.attempts > 1 and fmt("#%d %s", a.n or k, seconds((a.finish or run.duration) - a.start, total))
      or seconds((a.finish or run.duration) - a.start, total)
    if w > #text * 6.6 + 8 then -- inside its bar, or not at all (the hover has it)
      c:add('<text class="bar-text%s" x="%s" y="%s">%s</text>', (state == "cancelled" or state == "running") and " dark" or "",
        num(x1 + 5), num(cy + 4), esc(text))
    end
    if state == "failed" and t.halt then
      c:add('<text class="halt-x" x="%s" y="%s">✕</text>', num(x1 + w + 3), num(cy + 5))
    end
    c:add("</g>")
    prev = x1 + w
  end
end

-- The settle check that found an ignored failure recovered.
local function draw_recovery(c, t, cy)
  local r = t.recovery
  local x1 = c:x(r.start)
  local w = math.max(3, c:x(r.finish) - x1)
  c:add('<g class="bar recovered" data-task="%s" data-attempt="settle"><title>%s</title>', esc(t.id),
    esc(fmt("%s · settle check\n%s → %s\nrecovered: %s", t.id, seconds(r.start, c.total),
      seconds(r.finish, c.total), tostring(t.message or "ready"))))
  c:add('<rect x="%s" y="%s" width="%s" height="%d" rx="3"/></g>', num(x1), num(cy - BAR / 2), num(w), BAR)
end

-- A row per task: its label, then its bars. Returns each task's row middle, by id.
local function draw_tasks(c)
  local rows = {}
  for _, lane in ipairs(c.lanes) do
    for r, id in ipairs(lane.tasks) do
      local t = c.run.tasks[id]
      local cy = lane.y + HEADER + (r - 1) * ROW + ROW / 2
      rows[id] = cy
      local crit = c.run.critical[id]
      c:add('<g class="task%s" data-task="%s" data-state="%s">', crit and " critical" or "", esc(id), esc(t.state))
      local label = (crit and "★ " or "") .. id
      local shown = cut(label, c.label_chars)
      c:add('<g class="halo %s"><text class="task-label" x="%d" y="%s">%s%s</text></g>', lane.kind, LABEL_X, num(cy + 4),
        esc(shown), shown ~= label and ("<title>" .. esc(id) .. "</title>") or "")
      if lane.idle or #t.attempts == 0 then draw_not_run(c, lane, t, cy) end
      draw_attempts(c, t, cy)
      if t.recovery and t.recovery.finish then draw_recovery(c, t, cy) end
      c:add("</g>")
    end
  end
  return rows
end

-- The critical path: the chain's bars are outlined (CSS); connectors join one to the next.
local function draw_critical_links(c, rows)
  local run, path = c.run, c.run.critical_path
  for k = 1, #path - 1 do
    local a, b = run.tasks[path[k]], run.tasks[path[k + 1]]
    local ax, bx = c:x(timeline.task_end(a)), c:x(b.attempts[1].start)
    local ay, by = rows[a.id], rows[b.id]
    if ay and by then
      c:add('<path class="critical-link" d="M%s %s C%s %s %s %s %s %s"/>', num(ax), num(ay), num(ax + 14), num(ay),
        num(bx - 14), num(by), num(bx), num(by))
    end
  end
end

local function draw_halt(c)
  local halt = c.run.halt
  local hx = c:x(halt.t)
  local full = fmt("halt at %s: %s failed", seconds(halt.t, c.total), tostring(halt.task))
  local text = cut(full, math.floor((WIDTH - 24) / 6.6)) -- a long task name is cut; the hover has it
  local tw = chars(text) * 6.6 + 16
  local lx = math.min(math.max(hx - tw / 2, 4), WIDTH - tw - 4)
  c:add('<g id="halt-marker" class="halt" data-task="%s" data-t="%s">', esc(halt.task), esc(halt.t))
  c:add('<title>%s</title>', esc(fmt("%s\n%s", full, tostring(halt.message or ""))))
  c:add('<line x1="%s" x2="%s" y1="%d" y2="%d"/>', num(hx), num(hx), 14, c.height - 30)
  c:add('<rect x="%s" y="2" width="%s" height="18" rx="9"/>', num(lx), num(tw))
  c:add('<text x="%s" y="15">%s</text></g>', num(lx + 8), esc(text))
end

local function draw_end(c)
  local ex = c:x(c.run.duration)
  c:add('<line class="end" x1="%s" x2="%s" y1="%d" y2="%d"/>', num(ex), num(ex), c.top - 8, c.height - 30)
  c:add('<text class="tick end-label" x="%s" y="%d">end %s</text>', num(ex), c.height - 16,
    esc(seconds(c.run.duration, c.total)))
end

-- The Gantt chart as SVG. Drawn in layers, back to front: lane backgrounds, the time grid, the
-- lanes' texts, the tasks' rows, the critical path's links, the halt point and the end.
local function svg(run)
  local c = new_chart(run)
  c:add('<svg id="timeline" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" width="100%%" role="img" aria-label="%s">',
    WIDTH, c.height, esc("timeline of run " .. tostring(run.id)))
  c:add(svg_defs())
  draw_lane_backgrounds(c)
  draw_time_grid(c)
  draw_lane_titles(c)
  local rows = draw_tasks(c)
  draw_critical_links(c, rows)
  if run.halt then draw_halt(c) end
  draw_end(c)
  c:add("</svg>")
  return concat(c.out, "\n")
end

-- ---- page -----------------------------------------------------------------------------------

local CSS = [[
:root { --fg: #1f2328; --muted: #656d76; --line: #d0d7de; --ok: #2da44e; --fail: #cf222e; --retry: #fb8500;
        --crit: #bf8700; --bg-lane: #f6f8fa; --bg-bg: #ddf4ff; }
* { box-sizing: border-box; }
body { margin: 0; padding: 24px 32px 48px; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif;
       color: var(--fg); background: #fff; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 16px; margin: 28px 0 8px; }
.meta { color: var(--muted); margin: 0 0 6px; }
.meta code { font-size: 12px; }
.pill { display: inline-block; padding: 1px 9px; border-radius: 10px; font-size: 12px; font-weight: 600; color: #fff;
        background: var(--muted); vertical-align: 2px; }
.pill.succeeded { background: var(--ok); } .pill.failed, .pill.halted { background: var(--fail); }
.pill.cancelled, .pill.interrupted { background: #6e7781; } .pill.recovered { background: #1a7f37; }
.pill.skipped, .pill.pending, .pill.unfinished { background: #afb8c1; color: #24292f; } .pill.running { background: #0969da; }
#verdict { font-size: 15px; margin: 8px 0 14px; padding: 8px 12px; border-left: 4px solid var(--line); background: #f6f8fa; }
body[data-state="halted"] #verdict, body[data-state="failed"] #verdict { border-color: var(--fail); background: #fff1f0; }
body[data-state="succeeded"] #verdict { border-color: var(--ok); background: #effdf2; }
.chart { position: relative; border: 1px solid var(--line); border-radius: 8px; padding: 8px; overflow-x: auto; }
#timeline { min-width: 960px; } /* on a narrow window the chart scrolls rather than shrink its text */
.table-wrap { overflow-x: auto; }
svg text { font-family: inherit; font-size: 12px; fill: var(--fg); }
.lane { fill: #ffffff; } .lane.even { fill: var(--bg-lane); } .lane.background { fill: var(--bg-bg); }
.lane.idle { fill: #fafbfc; stroke: var(--line); stroke-dasharray: 4 3; }
.halo text { paint-order: stroke; stroke: #ffffff; stroke-width: 4px; stroke-linejoin: round; }
.halo.even text { stroke: var(--bg-lane); } .halo.background text { stroke: var(--bg-bg); }
.halo.idle text { stroke: #fafbfc; }
.step-title { font-weight: 700; font-size: 13px; } .step-note { fill: var(--muted); font-size: 11px; }
.muted { fill: var(--muted); }
.span { stroke: #8c959f; stroke-width: 2; } .span.background { stroke: #0969da; stroke-dasharray: 5 3; }
.task-label { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12px; }
.task.critical .task-label { font-weight: 700; fill: #7d4e00; }
.grid { stroke: #eaeef2; } .axis { stroke: #8c959f; } .tick { fill: var(--muted); font-size: 11px; text-anchor: middle; }
.end { stroke: #57606a; stroke-dasharray: 3 3; } .end-label { text-anchor: middle; }
.bar rect { stroke: rgba(0,0,0,.25); stroke-width: 1; cursor: pointer; }
.bar.succeeded rect { fill: var(--ok); } .bar.failed rect { fill: var(--fail); } .bar.retried rect { fill: var(--retry); }
.bar.cancelled rect { fill: url(#p-cancelled); } .bar.recovered rect { fill: url(#p-recovered); }
.bar.running rect { fill: url(#p-running); }
.bar.skipped rect { fill: #fff; stroke: #8c959f; stroke-dasharray: 3 2; }
.task.critical .bar rect { stroke: var(--crit); stroke-width: 3; }
.bar:hover rect { filter: brightness(1.12); stroke: #000; }
.bar-text { fill: #fff; font-size: 11px; font-weight: 600; pointer-events: none; }
.bar-text.dark { fill: #24292f; }
.retry-gap { stroke: var(--retry); stroke-width: 2; stroke-dasharray: 2 3; }
.critical-link { fill: none; stroke: var(--crit); stroke-width: 2; stroke-dasharray: 4 3; }
.halt line { stroke: var(--fail); stroke-width: 2.5; }
.halt rect { fill: var(--fail); } .halt text { fill: #fff; font-weight: 700; font-size: 11.5px; }
.halt-x { fill: var(--fail); font-weight: 700; font-size: 13px; }
.legend { display: flex; flex-wrap: wrap; gap: 14px; margin: 10px 2px 0; color: var(--muted); font-size: 12px; }
.legend span { display: inline-flex; align-items: center; gap: 5px; }
.legend svg { width: 26px; height: 12px; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { text-align: left; padding: 6px 10px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { background: #f6f8fa; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td code { font-size: 12px; }
tr.critical td:first-child code { font-weight: 700; color: #7d4e00; }
#summary { min-width: 880px; } /* narrower, it scrolls in its box rather than wrap every cell */
#summary td:first-child, #summary td:nth-child(2) { white-space: nowrap; }
td.msg { min-width: 180px; max-width: 520px; white-space: pre-wrap; word-break: break-word; }
pre.logs { background: #0d1117; color: #e6edf3; padding: 10px 12px; border-radius: 6px; overflow-x: auto; font-size: 12px; }
pre.logs .hook { color: #d2a8ff; font-style: italic; }
#tip { position: fixed; z-index: 10; max-width: 440px; padding: 8px 10px; border-radius: 6px; background: #24292f; color: #fff;
       font-size: 12px; white-space: pre-wrap; pointer-events: none; box-shadow: 0 4px 12px rgba(0,0,0,.25); }
]]

-- The page's script: reads the embedded run data, states the outcome (#verdict), marks the
-- halt point and the cancelled tasks on the page (data attributes the tests read), and shows
-- the segments' details on hover.
local SCRIPT = [[
(function () {
  var data = JSON.parse(document.getElementById("moonship-run").textContent);
  var body = document.body;
  function pick(state) {
    return data.tasks.filter(function (t) { return t.state === state; }).map(function (t) { return t.id; });
  }
  function secs(x) {
    if (data.duration >= 120) { var w = Math.round(x); return Math.floor(w / 60) + "m" + ("0" + w % 60).slice(-2) + "s"; }
    return x.toFixed(data.duration >= 10 ? 1 : 2) + "s";
  }
  var cancelled = pick("cancelled"), failed = pick("failed"), skipped = pick("skipped");
  body.setAttribute("data-rendered", "true");
  body.setAttribute("data-cancelled", cancelled.join(" "));
  body.setAttribute("data-failed", failed.join(" "));
  var parts = [];
  if (data.halt) {
    body.setAttribute("data-halt-task", data.halt.task);
    body.setAttribute("data-halt-at", String(data.halt.t));
    var marker = document.getElementById("halt-marker");
    if (marker) marker.setAttribute("data-marked", "true");
    var cause = data.halt.cause === "on_error" ? "halted by the on_error hook" : "halt_on_error";
    parts.push("Halted at " + secs(data.halt.t) + ": " + data.halt.task + " failed (" + cause + ").");
  } else {
    parts.push("Run " + data.state + " in " + secs(data.duration) + ".");
  }
  if (data.rollback) {
    body.setAttribute("data-rollback-to", data.rollback.to);
    body.setAttribute("data-rollback-state", data.rollback.state || "unfinished");
    parts.push("Rolled back to run " + data.rollback.to + " (revision " + data.rollback.revision + ") at " +
      secs(data.rollback.t) + ": " + (data.rollback.state || "unfinished") + ".");
  }
  if (failed.length && !data.halt) parts.push(failed.length + " failed: " + failed.join(", ") + ".");
  if (cancelled.length) parts.push(cancelled.length + " cancelled: " + cancelled.join(", ") + ".");
  if (skipped.length) parts.push(skipped.length + " not run: " + skipped.join(", ") + ".");
  if (data.critical_path.length) parts.push("Critical path: " + data.critical_path.join(" → ") + ".");
  document.getElementById("verdict").textContent = parts.join(" ");
  cancelled.forEach(function (id) {
    var row = document.querySelector('tr[data-task="' + CSS.escape(id) + '"]');
    if (row) row.setAttribute("data-marked", "cancelled");
  });
  var tip = document.getElementById("tip");
  document.querySelectorAll("#timeline .bar, #timeline .halt").forEach(function (el) {
    var title = el.querySelector("title");
    if (!title) return;
    var text = title.textContent;
    el.addEventListener("mouseenter", function () { tip.textContent = text; tip.hidden = false; title.textContent = ""; });
    el.addEventListener("mousemove", function (e) {
      tip.style.left = Math.min(e.clientX + 14, window.innerWidth - tip.offsetWidth - 8) + "px";
      tip.style.top = (e.clientY + 16) + "px";
    });
    el.addEventListener("mouseleave", function () { tip.hidden = true; title.textContent = text; });
  });
})();
]]

local function legend()
  local items = {
    {"succeeded", "var(--ok)"}, {"failed", "var(--fail)"}, {"failed, retried", "var(--retry)"},
    {"cancelled", "url(#p-cancelled)"}, {"recovered", "url(#p-recovered)"},
  }
  local out = {'<div class="legend">'}
  for _, it in ipairs(items) do
    out[#out + 1] = fmt('<span><svg viewBox="0 0 26 12"><rect width="26" height="12" rx="3" style="fill:%s"/></svg>%s</span>',
      it[2], it[1])
  end
  out[#out + 1] = '<span><svg viewBox="0 0 26 12"><rect x="1" y="1" width="24" height="10" rx="3" fill="#fff" stroke="#8c959f" stroke-dasharray="3 2"/></svg>skipped / not started</span>'
  out[#out + 1] = '<span><svg viewBox="0 0 26 12"><rect x="1.5" y="1.5" width="23" height="9" rx="3" fill="#2da44e" stroke="#bf8700" stroke-width="3"/></svg>★ critical path</span>'
  out[#out + 1] = '<span><svg viewBox="0 0 26 12"><line x1="13" x2="13" y1="0" y2="12" stroke="#cf222e" stroke-width="3"/></svg>halt point</span>'
  out[#out + 1] = '<span><svg viewBox="0 0 26 12"><rect width="26" height="12" fill="#ddf4ff"/></svg>background step</span>'
  out[#out + 1] = "</div>"
  return concat(out)
end

local function summary_table(run, total)
  local out = {"<table id=\"summary\"><thead><tr><th>task</th><th>step</th><th>state</th><th>started</th>",
               "<th>duration</th><th>attempts</th><th>message</th><th>objects</th></tr></thead><tbody>"}
  for _, id in ipairs(run.order) do
    local t = run.tasks[id]
    local a = t.attempts[1]
    local d = task_duration(t)
    local objs = object_names(t)
    out[#out + 1] = fmt('<tr data-task="%s" data-state="%s"%s><td><code>%s%s</code></td><td>%s</td>' ..
      '<td><span class="pill %s">%s</span></td><td class="num">%s</td><td class="num">%s</td><td class="num">%d</td>' ..
      '<td class="msg">%s</td><td>%s</td></tr>',
      esc(id), esc(t.state), run.critical[id] and ' class="critical"' or "", run.critical[id] and "★ " or "", esc(id),
      esc(t.step or "—"), esc(t.state), esc(STATE_LABEL[t.state] or t.state), a and esc(seconds(a.start, total)) or "—",
      d and esc(seconds(d, total)) or "—", #t.attempts, esc(t.message or (t.state ~= "succeeded" and t.last_progress) or ""),
      #objs > 0 and ("<code>" .. esc(concat(objs, ", ")) .. "</code>") or "—")
  end
  out[#out + 1] = "</tbody></table>"
  return concat(out, "\n")
end

local function failure_logs(run)
  local out = {}
  for _, id in ipairs(run.order) do
    local t = run.tasks[id]
    if (t.state == "failed" or t.state == "recovered") and #t.logs > 0 then
      local lines = {}
      for i = math.max(1, #t.logs - 40), #t.logs do
        local l = t.logs[i]
        -- what a hook wrote is no output of the task's containers: marked, as on the terminal
        lines[#lines + 1] = l.hook and fmt('<span class="hook">▸ hook %s: %s</span>', esc(l.hook), esc(l.text))
          or esc(l.text)
      end
      out[#out + 1] = fmt('<details open><summary><code>%s</code>: last log lines</summary><pre class="logs">%s</pre></details>',
        esc(id), concat(lines, "\n"))
    end
  end
  if #out == 0 then return "" end
  return "<h2>Logs of failed tasks</h2>\n" .. concat(out, "\n")
end

-- The run as data for the page's script.
local function page_data(run)
  local tasks = {}
  for _, id in ipairs(run.order) do
    local t = run.tasks[id]
    tasks[#tasks + 1] = {id = id, step = t.step, state = t.state, attempts = #t.attempts,
                         critical = run.critical[id] or false}
  end
  return {run = run.id, app = run.app, workflow = run.workflow, state = run.state, duration = run.duration,
          halt = run.halt, rollback = run.rollback, critical_path = json.array(run.critical_path), tasks = json.array(tasks),
          not_started = json.array(run.not_started)}
end

-- html.render(events [, {title=}]) -> text
function M.render(events, opts)
  opts = opts or {}
  local run = timeline.build(events)
  local total = run.duration
  local name = fmt("%s%s", run.app and (run.app .. " · ") or "", tostring(run.workflow or "run"))
  local meta = {fmt('run <code>%s</code>', esc(run.id or "?"))}
  if run.namespace then meta[#meta + 1] = "namespace <code>" .. esc(run.namespace) .. "</code>" end
  if run.env then meta[#meta + 1] = "environment <code>" .. esc(run.env) .. "</code>" end
  meta[#meta + 1] = "took " .. esc(seconds(run.duration, total))
  if run.exit_code then meta[#meta + 1] = "exit code " .. esc(run.exit_code) end
  if run.dry_run then meta[#meta + 1] = "dry run" end
  if run.rollback then
    meta[#meta + 1] = fmt("rollback to run <code>%s</code> (revision %s)%s: %s", esc(run.rollback.to),
      esc(run.rollback.revision), run.rollback.reason == "on_error" and ", asked by on_error" or "",
      esc(run.rollback.state or "unfinished"))
  end
  local body = {
    "<!DOCTYPE html>",
    '<html lang="en"><head><meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    fmt("<title>%s</title>", esc(opts.title or (name .. " · " .. tostring(run.state) .. " · moonship"))),
    "<style>" .. CSS .. "</style></head>",
    fmt('<body data-state="%s">', esc(run.state)),
    fmt('<h1>%s <span class="pill %s">%s</span></h1>', esc(name), esc(run.state), esc(run.state)),
    fmt('<p class="meta">%s</p>', concat(meta, " · ")),
    '<p id="verdict">' .. esc(fmt("Run %s.", run.state)) .. "</p>",
    '<div class="chart">' .. svg(run) .. legend() .. "</div>",
    '<div id="tip" hidden></div>',
    "<h2>Tasks</h2>",
    '<div class="table-wrap">' .. summary_table(run, total) .. "</div>",
    failure_logs(run),
    fmt('<p class="meta">moonship report · %d events</p>', #events),
    '<script type="application/json" id="moonship-run">' .. script_json(page_data(run)) .. "</script>",
    "<script>" .. SCRIPT .. "</script>",
    "</body></html>",
  }
  return concat(body, "\n") .. "\n"
end

-- Reads a journal file (JSON Lines) into events, or nil and the error. A line that is no
-- event (cut short by a crash, edited by hand) is skipped, and the rest is read: the second
-- result lists them, {{line = n, message = why}}.
function M.read_journal(path)
  local text, err = fs.read(path)
  if not text then return nil, err end
  if text ~= "" and text:sub(-1) ~= "\n" then text = text .. "\n" end -- a last line cut short
  local events, bad, n = {}, {}, 0
  for line in text:gmatch("(.-)\n") do
    n = n + 1
    if line:match("%S") then
      local ev, jerr = json.decode(line)
      if type(ev) == "table" and ev.event then
        events[#events + 1] = ev
      else
        bad[#bad + 1] = {line = n, message = jerr and jerr:gsub("^json: %d+:(%d+)/%d+:", "column %1:")
                                             or "not a journal event"}
      end
    end
  end
  return events, bad
end

return M
