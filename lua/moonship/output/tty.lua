-- The live progress view on a terminal: a block of lines at the bottom (a header, then one line
-- per running or finished task) redrawn in place at most ten times a second, job logs printed
-- above it, and at the end a summary table in its place. Each frame is one write that moves the
-- cursor up over the block and rewrites only the lines that changed, so the terminal neither
-- flickers nor scrolls; the block never grows past the screen's height or width.
--
--   tty.wanted(settings) -> boolean     stdout is a terminal that can move its cursor
--   tty.sink{logs=, color=} -> fn(ev)   a journal sink drawing on stdout (inside a task)
--   tty.new{size=, write=, now=, color=, utf8=, logs=, quiet=} -> view   the view alone (tests;
--                                       quiet: it prints nothing above the block)
--   view:event(ev), view:draw(), view:finish(), view:summary_lines() (the table as text)
local sched = require "moonship.sched"

local fmt, concat, rep = string.format, table.concat, string.rep
local floor, max, min, ceil = math.floor, math.max, math.min, math.ceil
local utf8_codes, utf8_char, utf8_len = utf8.codes, utf8.char, utf8.len

local M = {}

M.FRAME = 0.1 -- seconds between frames, at most

local GLYPHS = {
  utf8 = {spinner = {"⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"},
          succeeded = "✓", failed = "✗", cancelled = "⊘", recovered = "↻", skipped = "↷",
          ellipsis = "…", bar = "│", hook = "▸", dot = "·", arrow = "→"},
  ascii = {spinner = {"|", "/", "-", "\\"},
           succeeded = "+", failed = "x", cancelled = "!", recovered = "~", skipped = ".",
           ellipsis = "...", bar = "|", hook = ">", dot = "-", arrow = "->"},
}
M.GLYPHS = GLYPHS

-- SGR parameters per style.
local STYLE = {
  running = "36", succeeded = "32", failed = "31", cancelled = "33", recovered = "36",
  skipped = "2", dim = "2", bold = "1", halt = "1;31", head = "1",
}

local events = require "moonship.run.events"
local FINAL = events.FINAL

-- How a run's final state reads: a run whose failures were ignored did finish (exit 3).
M.RUN_WORDS = {failed = "finished with ignored failures"}

-- The line a rollback_started event reads as (the live view's and the plain lines').
function M.rollback_line(ev)
  return string.format("ROLLBACK to run %s (revision %s, workflow %s)%s: re-applying its recorded objects",
    tostring(ev.to), tostring(ev.revision), tostring(ev.target_workflow),
    ev.reason == "on_error" and ", as the on_error hook asked" or "")
end

-- ---- terminal text -----------------------------------------------------------------------

-- East Asian wide and fullwidth ranges (two columns), and combining marks (none).
local WIDE = {
  {0x1100, 0x115F}, {0x2E80, 0x303E}, {0x3041, 0x33FF}, {0x3400, 0x4DBF}, {0x4E00, 0x9FFF},
  {0xA000, 0xA4CF}, {0xAC00, 0xD7A3}, {0xF900, 0xFAFF}, {0xFE30, 0xFE4F}, {0xFF00, 0xFF60},
  {0xFFE0, 0xFFE6}, {0x1F300, 0x1F64F}, {0x1F900, 0x1F9FF}, {0x20000, 0x3FFFD},
}
local ZERO = {{0x0300, 0x036F}, {0x200B, 0x200F}, {0x20D0, 0x20FF}, {0xFE00, 0xFE0F}}

local function in_ranges(ranges, c)
  for _, r in ipairs(ranges) do
    if c < r[1] then return false end
    if c <= r[2] then return true end
  end
  return false
end

local function cp_width(c)
  if c < 0x300 then return 1 end
  if in_ranges(ZERO, c) then return 0 end
  if in_ranges(WIDE, c) then return 2 end
  return 1
end

-- Makes text safe to print on one line: escape sequences dropped, tabs and other control
-- characters as spaces, bytes that are not UTF-8 as "?".
function M.sanitize(s)
  s = tostring(s):gsub("\27%[[%d;?]*[ -/]*[@-~]", ""):gsub("\27[^%[]?", ""):gsub("[%c\127]", " ")
  if not utf8_len(s) then
    local out, i = {}, 1
    while i <= #s do
      local c = s:byte(i)
      local n = c < 0x80 and 1 or c >= 0xF0 and 4 or c >= 0xE0 and 3 or c >= 0xC2 and 2 or 0
      local piece = n > 0 and s:sub(i, i + n - 1) or nil
      if piece and #piece == n and utf8_len(piece) then
        out[#out + 1] = piece
        i = i + n
      else
        out[#out + 1] = "?"
        i = i + 1
      end
    end
    s = concat(out)
  end
  return s
end

-- The number of terminal columns of sanitized text.
function M.width(s)
  local w = 0
  for _, c in utf8_codes(s) do w = w + cp_width(c) end
  return w
end

-- The longest prefix of s that fits in `cols` columns, and its width.
local function fit(s, cols)
  local w, out = 0, {}
  for _, c in utf8_codes(s) do
    local cw = cp_width(c)
    if w + cw > cols then break end
    w = w + cw
    out[#out + 1] = utf8_char(c)
  end
  return concat(out), w
end

-- s cut to `cols` columns, ending with the ellipsis when something was cut.
function M.truncate(s, cols, ellipsis)
  ellipsis = ellipsis or "…"
  if M.width(s) <= cols then return s end
  local ew = M.width(ellipsis)
  if cols < ew then return (fit(s, cols)) end
  return (fit(s, cols - ew)) .. ellipsis
end

local function pad(s, cols) return s .. rep(" ", max(0, cols - M.width(s))) end

-- Renders segments {{text, style}, ...} into at most `cols` columns: the string and its width.
local function render(segs, cols, color, ellipsis)
  local out, w = {}, 0
  local total = 0
  for _, seg in ipairs(segs) do total = total + M.width(seg[1]) end
  local limit = total > cols and cols - M.width(ellipsis) or cols
  for _, seg in ipairs(segs) do
    if w >= limit then break end
    local text, tw = fit(seg[1], limit - w)
    if tw > 0 then
      local sgr = color and seg[2] and STYLE[seg[2]]
      out[#out + 1] = sgr and ("\27[" .. sgr .. "m" .. text .. "\27[0m") or text
      w = w + tw
    end
  end
  if total > cols and cols >= M.width(ellipsis) then
    out[#out + 1] = ellipsis
    w = w + M.width(ellipsis)
  end
  return concat(out), w
end

-- "0:07", "12:34", "1:02:03"
local function clock(s)
  s = max(0, floor(s))
  if s >= 3600 then return fmt("%d:%02d:%02d", s // 3600, s % 3600 // 60, s % 60) end
  return fmt("%d:%02d", s // 60, s % 60)
end
M.clock = clock

-- "0.4s", "12.3s", "2m05s", "1h02m"
local function duration(s)
  if s < 60 then return fmt("%.1fs", s) end
  s = floor(s + 0.5)
  if s < 3600 then return fmt("%dm%02ds", s // 60, s % 60) end
  return fmt("%dh%02dm", s // 3600, s % 3600 // 60)
end
M.duration = duration

-- ---- environment ---------------------------------------------------------------------------

-- Whether the locale (LC_ALL, else LC_CTYPE, else LANG) is UTF-8.
function M.utf8_locale(getenv)
  getenv = getenv or os.getenv
  for _, name in ipairs {"LC_ALL", "LC_CTYPE", "LANG"} do
    local v = getenv(name)
    if v and v ~= "" then return v:lower():gsub("-", ""):find("utf8", 1, true) ~= nil end
  end
  return false
end

-- --color always|never|auto: auto colors a terminal unless NO_COLOR is set (and not empty)
-- or TERM is dumb.
function M.use_color(mode, is_tty, getenv)
  getenv = getenv or os.getenv
  if mode == "always" then return true end
  if mode == "never" then return false end
  local no_color = getenv("NO_COLOR")
  return is_tty and not (no_color and no_color ~= "") and getenv("TERM") ~= "dumb"
end

local function term() return require("moonship.core").term end

-- The live view is for deploy's own stdout when it is a terminal that can move its cursor.
function M.wanted(s)
  if s.stdout or s.output ~= "text" then return false end
  local t = os.getenv("TERM")
  return term().isatty(1) and t ~= nil and t ~= "" and t ~= "dumb"
end

-- ---- the view ------------------------------------------------------------------------------

local View = {}
View.__index = View

function M.new(opts)
  local self = setmetatable({
    size = opts.size, write = opts.write, clock = opts.now or sched.now,
    color = opts.color or false, logs = opts.logs or "all", quiet = opts.quiet or false,
    shown = events.shown_logs(),
    g = opts.utf8 == false and GLYPHS.ascii or GLYPHS.utf8,
    run = nil, base = nil, steps = {}, tasks = {}, order = {}, plan = {},
    step_index = 0, step_name = nil,
    out = {},                 -- lines to print above the block on the next frame
    drawn = {}, drawn_w = {}, drawn_cols = nil,
    frame_no = 0, dirty = true, finished = false,
  }, View)
  return self
end
M.View = View

function View:now()
  return self.base and (self.clock() - self.base) or 0
end

local function task_rec(self, id)
  local rec = self.tasks[id]
  if not rec then
    rec = {id = id, state = "pending", attempt = 0}
    self.tasks[id] = rec
  end
  return rec
end

local function show(self, rec)
  if not rec.shown then
    rec.shown = true
    self.order[#self.order + 1] = rec
  end
end

-- Queues a line to print above the block: segments, with a task prefix when given (and the
-- mark that tells job output, "│", from what moonship or a hook says, "▸").
function View:print(segs, task, mark)
  if self.quiet then return end
  if task then
    table.insert(segs, 1, {pad(task, self.name_w or 0) .. " " .. (mark or self.g.bar) .. " ", "dim"})
  end
  self.out[#self.out + 1] = segs
end

function View:event(ev)
  local e = ev.event
  self.dirty = true
  self.shown:fold(ev)
  if e == "run_started" then
    self.run = ev
    self.base = self.clock() - (ev.t or 0)
    self.plan = ev.tasks or {}
    self.name_w = 0
    for _, id in ipairs(self.plan) do self.name_w = max(self.name_w, M.width(M.sanitize(id))) end
    -- The plan's steps (when the engine sends them): a task that never starts keeps its step.
    for i, st in ipairs(ev.plan or {}) do
      self.steps[st.step] = self.steps[st.step] or {index = i, background = st.background, state = "pending"}
      for _, id in ipairs(st.tasks or {}) do
        local rec = task_rec(self, id)
        rec.step = rec.step or st.step
      end
    end
  elseif e == "step_started" then
    self.steps[ev.step] = {index = ev.index, background = ev.background, state = "running"}
    if (ev.index or 0) >= self.step_index then
      self.step_index, self.step_name = ev.index or self.step_index, ev.step
    end
  elseif e == "step_finished" then
    local st = self.steps[ev.step]
    if st then st.state = ev.state or "finished" end
  elseif e == "task_started" then
    local rec = task_rec(self, ev.task)
    show(self, rec)
    rec.state, rec.step, rec.attempt = "running", ev.step or rec.step, ev.attempt or (rec.attempt + 1)
    rec.first = rec.first or ev.t
    rec.detail, rec.job_since, rec.settling = nil, nil, false
  elseif e == "task_progress" then
    local rec = task_rec(self, ev.task)
    local msg = ev.message and M.sanitize(ev.message)
    rec.detail = msg
    if ev.phase == "job_running" then
      rec.job_since = rec.job_since or ev.t
    end
    if FINAL[rec.state] then
      rec.settling = ev.settling == true
      if msg and not rec.settling then rec.after = msg end
    end
  elseif e == "task_finished" then
    local rec = task_rec(self, ev.task)
    show(self, rec)
    rec.state, rec.finished, rec.settling = ev.state, ev.t, false
    rec.step = ev.step or rec.step
    rec.attempt = ev.attempt or rec.attempt
    rec.message = ev.message and M.sanitize(ev.message)
    rec.reason, rec.restarts = ev.reason, ev.restarts
    if ev.logs and #ev.logs > 0 then
      rec.logs = ev.logs
      if self.logs ~= "none" then
        for _, l in ipairs(self.shown:unshown(ev)) do
          for part in tostring(l):gmatch("[^\n]+") do self:print({{M.sanitize(part)}}, ev.task) end
        end
      end
    end
  elseif e == "log" then
    local rec = ev.task and task_rec(self, ev.task)
    local job_output = ev.pod ~= nil
    local hook = ev.hook and ("hook " .. M.sanitize(ev.hook) .. ": ") or ""
    for part in tostring(ev.message or ""):gmatch("[^\n]+") do
      part = M.sanitize(part)
      if rec and job_output then rec.last_log = part end
      if job_output then
        if self.logs ~= "none" then self:print({{part}}, ev.task or "") end
      else
        self:print({{hook, "dim"}, {part}}, ev.task or "moonship", self.g.hook)
      end
    end
  elseif e == "run_halting" then
    self:print({{"HALT: " .. M.sanitize(ev.message or ""), "halt"}})
  elseif e == "rollback_started" then
    -- the rollback's steps and tasks join the plan: after the halted run's when on_error
    -- asked for it, the whole plan when `moonship rollback` runs
    self.rollback = ev
    self:print({{M.sanitize(M.rollback_line(ev)), "bold"}})
    local known = {}
    for _, id in ipairs(self.plan) do known[id] = true end
    for _, id in ipairs(ev.tasks or {}) do
      if not known[id] then self.plan[#self.plan + 1] = id end
    end
    local offset = ev.reason == "on_error" and ((self.run or {}).steps or 0) or 0
    for i, st in ipairs(ev.plan or {}) do
      self.steps[st.step] = self.steps[st.step] or {index = offset + i, background = st.background, state = "pending"}
      for _, id in ipairs(st.tasks or {}) do
        local rec = task_rec(self, id)
        rec.step = rec.step or st.step
        self.name_w = max(self.name_w or 0, M.width(M.sanitize(id)))
      end
    end
    if self.run and ev.reason == "on_error" then self.run.steps = (self.run.steps or 0) + (ev.steps or 0) end
  elseif e == "run_finished" then
    self.result = ev
  end
end

function View:animating()
  for _, rec in ipairs(self.order) do
    if rec.state == "running" or rec.settling then return true end
  end
  return false
end

-- What a task waits on right now, or how it ended.
local function detail(self, rec, now)
  if rec.state == "running" or rec.settling then
    local text
    if rec.job_since and not rec.settling then
      text = "job running " .. clock(now - rec.job_since)
      if rec.last_log then text = text .. " " .. self.g.dot .. " " .. rec.last_log end
    else
      text = rec.detail or "starting"
    end
    if rec.attempt > 1 and not rec.settling then text = fmt("attempt %d: %s", rec.attempt, text) end
    return text
  end
  local msg = rec.message or ""
  if rec.state == "failed" then
    local last = rec.logs and rec.logs[#rec.logs]
    if last then
      if rec.reason == "CrashLoopBackOff" and rec.restarts then
        msg = fmt("CrashLoopBackOff (restart %d): %s", rec.restarts, M.sanitize(last))
      else
        msg = msg .. ": " .. M.sanitize(last)
      end
    end
    if rec.after then msg = rec.after .. " " .. self.g.dot .. " " .. msg end
  end
  return msg
end

local function mark(self, rec)
  if rec.state == "running" or rec.settling then
    local sp = self.g.spinner
    return sp[self.frame_no % #sp + 1], "running"
  end
  return self.g[rec.state] or "?", rec.state
end

local function step_label(self, rec)
  local st = rec.step and self.steps[rec.step]
  return (rec.step or "") .. ((st and st.background) and " (bg)" or "")
end

function View:header_segs(now)
  local run, g = self.run or {}, self.g
  local segs = {{run.workflow or "?", "head"}, {" " .. (run.app or "") .. " " .. g.arrow .. " " .. (run.namespace or "")}}
  local bg = 0
  for name, st in pairs(self.steps) do
    if st.background and st.state == "running" and name ~= self.step_name then bg = bg + 1 end
  end
  segs[#segs + 1] = {fmt("  %s step %d/%d %s", g.dot, self.step_index, run.steps or 0, self.step_name or "")}
  if bg > 0 then segs[#segs + 1] = {fmt(" (+%d in the background)", bg), "dim"} end
  local done = 0
  for _, rec in ipairs(self.order) do if FINAL[rec.state] then done = done + 1 end end
  segs[#segs + 1] = {fmt("  %s %d/%d done  %s %s", g.dot, done, #self.plan, g.dot, clock(now))}
  segs[#segs + 1] = {fmt("  %s run %s", g.dot, run.run or "?"), "dim"}
  if run.dry_run then segs[#segs + 1] = {"  [dry run]", "bold"} end
  return segs
end

-- Which tasks fit in `room` lines: running ones first, then failures, then the rest, most
-- recent first; shown in their order, the hidden ones counted on one last line.
local RANK = {running = 1, failed = 2, cancelled = 2, recovered = 3, succeeded = 4, skipped = 4}
local function rec_rank(rec) return rec.settling and 1 or RANK[rec.state] or 5 end

local function visible(self, room)
  if #self.order <= room then return self.order, nil end
  local ranked = {}
  for i, rec in ipairs(self.order) do ranked[i] = {rec = rec, i = i} end
  table.sort(ranked, function(a, b)
    local ra = rec_rank(a.rec)
    local rb = rec_rank(b.rec)
    if ra ~= rb then return ra < rb end
    return a.i > b.i
  end)
  local keep = {}
  for k = 1, max(0, room - 1) do keep[ranked[k].i] = true end
  local shown, hidden = {}, {}
  for i, rec in ipairs(self.order) do
    if keep[i] then shown[#shown + 1] = rec else hidden[rec.state] = (hidden[rec.state] or 0) + 1 end
  end
  return shown, hidden
end

-- The block's lines, as segment lists, for a terminal of cols x rows.
function View:block(cols, rows)
  local now = self:now()
  local lines = {self:header_segs(now)}
  local shown, hidden = visible(self, max(1, rows - 2))
  local name_w, step_w = 0, 0
  for _, rec in ipairs(self.order) do
    name_w = max(name_w, M.width(rec.id))
    step_w = max(step_w, M.width(step_label(self, rec)))
  end
  name_w = min(name_w, max(12, cols // 3))
  local with_step = cols >= 72
  local with_time = cols >= 40
  for _, rec in ipairs(shown) do
    local m, style = mark(self, rec)
    local segs = {{"  "}, {m, style}, {" "}, {pad(M.truncate(rec.id, name_w, self.g.ellipsis), name_w), "bold"}}
    if with_step then segs[#segs + 1] = {"  " .. pad(step_label(self, rec), step_w), "dim"} end
    if with_time then
      local elapsed = rec.first and clock((rec.finished and not rec.settling and rec.finished or now) - rec.first) or ""
      segs[#segs + 1] = {"  " .. fmt("%7s", elapsed), "dim"}
    end
    local d = detail(self, rec, now)
    if d ~= "" then
      local dstyle = (rec.state == "failed" and not rec.settling) and "failed"
        or (rec.state == "cancelled" and "cancelled") or nil
      segs[#segs + 1] = {"  " .. d, dstyle}
    end
    lines[#lines + 1] = segs
  end
  if hidden then
    local parts = {}
    for _, state in ipairs {"running", "failed", "cancelled", "recovered", "succeeded", "skipped"} do
      if hidden[state] then parts[#parts + 1] = fmt("%d %s", hidden[state], state) end
    end
    lines[#lines + 1] = {{"  " .. self.g.ellipsis .. " and " .. concat(parts, ", "), "dim"}}
  end
  return lines
end

-- The summary table's lines: one per task of the plan, in plan order (tasks that never
-- started included), with the state, duration and attempts of their last task_finished.
function View:table_segs()
  local res, run, g = self.result or {}, self.run or {}, self.g
  local rows = {{"TASK", "STEP", "STATE", "DURATION", "ATTEMPTS", "MESSAGE"}}
  local styles = {}
  local seen = {}
  local ids = {}
  for _, id in ipairs(self.plan) do ids[#ids + 1] = id; seen[id] = true end
  for _, rec in ipairs(self.order) do if not seen[rec.id] then ids[#ids + 1] = rec.id end end
  for _, id in ipairs(ids) do
    local rec = self.tasks[id] or {id = id, state = "pending", attempt = 0}
    local dur = (rec.first and rec.finished) and duration(rec.finished - rec.first) or "-"
    -- a task that succeeded says nothing more, unless it has a word of its outcome (the prune
    -- task: "deleted 2 objects")
    local msg = rec.state == "succeeded" and (rec.message or "")
      or detail(self, setmetatable({settling = false}, {__index = rec}), 0)
    -- a task of a dry run deployed nothing: it passed the dry run
    local word = run.dry_run and rec.state == "succeeded" and "passed" or rec.state
    rows[#rows + 1] = {id, rec.step or "", (g[rec.state] or "?") .. " " .. word, dur,
                       tostring(rec.attempt or 0), msg}
    styles[#rows] = rec.state
  end
  local widths = {}
  for _, r in ipairs(rows) do
    for c = 1, 5 do widths[c] = max(widths[c] or 0, M.width(r[c])) end
  end
  local lines = {}
  local state = res.state or "finished"
  local title = {{fmt("%s %s %s %s", run.workflow or "?", run.app or "", g.arrow, run.namespace or ""), "head"},
                 {": "}, {M.RUN_WORDS[state] or state, state == "succeeded" and "succeeded" or (state == "failed" and "failed")
                   or (state == "halted" and "halt") or "cancelled"},
                 {fmt(" in %s (exit %s)", duration(res.t or self:now()), tostring(res.exit_code))}}
  if res.halted_by then title[#title + 1] = {" " .. g.dot .. " halted by " .. res.halted_by, "halt"} end
  if self.rollback then
    local rb = res.rollback or state
    title[#title + 1] = {fmt(" %s rollback to run %s: %s", g.dot, tostring(self.rollback.to), rb),
                         rb == "succeeded" and "succeeded" or "halt"}
  elseif res.rollback then
    title[#title + 1] = {fmt(" %s rollback: %s", g.dot, res.rollback), "halt"}
  end
  if run.dry_run then title[#title + 1] = {"  [dry run: nothing was applied]", "bold"} end
  title[#title + 1] = {"  " .. g.dot .. " run " .. (run.run or "?"), "dim"}
  lines[1] = title
  for i, r in ipairs(rows) do
    local st = styles[i]
    local segs = {{"  "}, {pad(r[1], widths[1]), i == 1 and "head" or "bold"},
                  {"  " .. pad(r[2], widths[2]), i == 1 and "head" or "dim"},
                  {"  "}, {pad(r[3], widths[3]), i == 1 and "head" or st},
                  {"  " .. fmt("%" .. widths[4] .. "s", r[4]), i == 1 and "head" or nil},
                  {"  " .. fmt("%" .. widths[5] .. "s", r[5]), i == 1 and "head" or nil}}
    if r[6] ~= "" then segs[#segs + 1] = {"  " .. r[6], i == 1 and "head" or (st == "failed" and "failed" or nil)} end
    lines[#lines + 1] = segs
  end
  return lines
end

-- The summary table as lines of text, not cut to a width: the plain output's last lines.
function View:summary_lines()
  local lines = {}
  for i, segs in ipairs(self:table_segs()) do
    local total = 0
    for _, s in ipairs(segs) do total = total + M.width(s[1]) end
    lines[i] = (render(segs, total, self.color, self.g.ellipsis))
  end
  return lines
end

-- Renders queued output lines (not cut: long log lines wrap above the block).
local function out_lines(self, cols)
  local lines = {}
  for _, segs in ipairs(self.out) do
    local total = 0
    for _, s in ipairs(segs) do total = total + M.width(s[1]) end
    lines[#lines + 1] = (render(segs, total, self.color, self.g.ellipsis))
  end
  self.out = {}
  return lines
end

-- Draws one frame: one write, or none when nothing on screen would change.
function View:draw(final)
  local cols, rows = self.size()
  cols, rows = max(cols or 80, 10), max(rows or 24, 3)
  self.frame_no = self.frame_no + 1
  self.dirty = false
  local segs = final and self:table_segs() or self:block(cols, rows)
  local lines, widths = {}, {}
  for i, s in ipairs(segs) do lines[i], widths[i] = render(s, cols - 1, self.color, self.g.ellipsis) end
  local above = out_lines(self, cols)
  -- Auto-wrap is off while the block is written (and on again at the end of each frame): a
  -- frame written for a width the terminal no longer has (a resize the process has not been
  -- told about yet) then still moves the cursor by exactly one row per line, and the full
  -- redraw that follows the resize finds the block where it left it. Each line is erased
  -- whole before it is written (not after): a terminal that re-wraps on resize (tmux) then
  -- counts the line's own width, not the width of what was there before.
  local buf = {"\27[?7l"}
  local full = final or #above > 0 or cols ~= self.drawn_cols or #lines < #self.drawn
  if full then
    -- The block's rows: the terminal may have re-wrapped its lines to a new width.
    local up = 0
    for _, w in ipairs(self.drawn_w) do
      up = up + (cols ~= self.drawn_cols and max(1, ceil(w / cols)) or 1)
    end
    buf[#buf + 1] = up > 0 and ("\r\27[" .. up .. "A") or "\r"
    if #above > 0 then
      buf[#buf + 1] = "\27[?7h" -- log lines wrap: they stay above the block
      for _, l in ipairs(above) do buf[#buf + 1] = "\27[2K" .. l .. "\n" end
      buf[#buf + 1] = "\27[?7l"
    end
    for _, l in ipairs(lines) do buf[#buf + 1] = "\27[2K" .. l .. "\n" end
    -- Erase what is left below, never from the top-left corner (where some terminals, tmux
    -- among them, would push the screen into the scrollback instead).
    buf[#buf + 1] = "\27[J"
  else
    local n, skip, changed = #self.drawn, 0, false
    if n > 0 then buf[#buf + 1] = "\r\27[" .. n .. "A" end
    for i, l in ipairs(lines) do
      if self.drawn[i] == l then
        skip = skip + 1
      else
        if skip > 0 then buf[#buf + 1] = "\27[" .. skip .. "B" end
        skip, changed = 0, true
        buf[#buf + 1] = "\27[2K" .. l .. "\n"
      end
    end
    if not changed then return false end
    if skip > 0 then buf[#buf + 1] = "\27[" .. skip .. "B" end
  end
  buf[#buf + 1] = "\27[?7h"
  if final then
    self.drawn, self.drawn_w = {}, {}
  else
    self.drawn, self.drawn_w = lines, widths
  end
  self.drawn_cols = cols
  self.write(concat(buf))
  return true
end

-- The last frame: the block replaced by the summary table.
function View:finish()
  if self.finished then return end
  self.finished = true
  self:draw(true)
end

-- ---- on the scheduler ------------------------------------------------------------------------

-- The size to draw for: the terminal's, else (a pseudo-terminal that reports none, as CI
-- runners and `docker run -t` give) COLUMNS and LINES, else 80x24.
function M.terminal_size(t, getenv)
  getenv = getenv or os.getenv
  local cols, rows = t.size(1)
  if math.type(cols) ~= "integer" or math.type(rows) ~= "integer" then cols, rows = nil, nil end
  local function env(name)
    local v = math.tointeger(tonumber(getenv(name) or ""))
    return v and v > 0 and v or nil
  end
  return cols or env("COLUMNS") or 80, rows or env("LINES") or 24
end

-- A journal sink that draws the view on stdout: a ticker task redraws while something runs
-- (or when an event or a resize arrives), and run_finished draws the summary. A failure of the
-- view (an event it cannot draw) gives the terminal its line wrap back, stops its tasks and is
-- raised from the sink, or, in the ticker, handed to opts.on_error(err): the journal then goes
-- on with plain lines.
function M.sink(opts)
  local t = term()
  local view = M.new {
    size = function() return M.terminal_size(t) end,
    now = sched.now, logs = opts.logs, utf8 = M.utf8_locale(),
    color = M.use_color(opts.color or "auto", t.isatty(1)),
    write = function(s)
      io.stdout:flush()
      t.write(1, s)
    end,
  }
  local ticker, resizer, wake, failed
  local function poke()
    if wake then wake:set() end
  end
  local function fail(err)
    if failed then return end
    failed = err
    pcall(t.write, 1, "\27[?7h\27[0m\n")
    for _, task in pairs {ticker, resizer} do
      if task ~= sched.current() then task:cancel() end
    end
  end
  local function start()
    ticker = sched.spawn(function()
      while not view.finished and not failed do
        if not view.dirty and not view:animating() then
          wake = sched.event()
          wake:wait()
          wake = nil
        end
        if view.finished then break end
        local ok, err = pcall(view.draw, view)
        if not ok then
          fail(err)
          if opts.on_error then opts.on_error(err) end
          return
        end
        sched.sleep(M.FRAME)
      end
    end)
    resizer = sched.spawn(function()
      local w <close> = t.resize_watcher()
      while w:wait() do
        view.dirty = true
        poke()
      end
    end)
  end
  return function(ev)
    if failed then error(failed, 0) end
    local ok, err = pcall(function()
      if not ticker and ev.event == "run_started" then start() end
      view:event(ev)
      if ev.event == "run_finished" then
        view:finish()
        if ticker then ticker:cancel() end
        if resizer then resizer:cancel() end
      else
        poke()
      end
    end)
    if not ok then
      fail(err)
      error(err, 0)
    end
  end, view
end

return M
