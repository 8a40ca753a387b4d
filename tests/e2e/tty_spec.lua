-- A recorded terminal session of the live view: the shop example deployed on kubesim inside a
-- throwaway tmux server (120x40), captured at fixed moments. The moments are made by a hooks
-- file that holds services.backend before it starts and services.frontend before it finishes
-- until the test opens the gate (a FIFO); the test learns that a frame was drawn by reading the
-- pane's output stream (tmux pipe-pane into a FIFO). No sleeps: every wait is a blocking read.
local json = require "dkjson"

local SRC = os.getenv("MOONSHIP_SOURCE_DIR") or "."
local BIN = os.getenv("MOONSHIP_BIN") or (SRC .. "/build/moonship")

local proc = require "support.proc"
local q, write_file = proc.quote, proc.write_file

local function sh(cmd)
  local p = assert(io.popen("env -u LD_PRELOAD sh -c " .. q(cmd) .. " 2>&1"))
  local out = p:read("a")
  local ok, _, code = p:close()
  return out, ok and 0 or code
end

local function have_tmux() return select(2, sh("command -v tmux")) == 0 end

-- A tmux server of our own, a FIFO-fed stream of the pane's output, and the journal dir.
local Session = {}
Session.__index = Session

local function start_session(opts)
  local dir = assert(sh("mktemp -d /tmp/moonship-tty-XXXXXX"):match("[^\n]+"))
  local self = setmetatable({dir = dir, sock = "moonship-tty-" .. dir:match("[^/]+$"), target = "t"}, Session)
  for _, f in ipairs {"start", "pane", "gate-frontend", "gate-backend"} do
    assert(select(2, sh("mkfifo " .. q(dir .. "/" .. f))) == 0)
  end
  write_file(dir .. "/hooks.lua", string.format([[
-- Test gates: each blocks its task (not the scheduler) until the test writes to the FIFO.
local function gate(ctx, name) ctx.exec {"sh", "-c", "cat \"$0\" >/dev/null", %q .. "/gate-" .. name} end
return {
  before_task = function(ctx, task) if task.id == "services.backend" then gate(ctx, "backend") end end,
  after_task = function(ctx, task) if task.id == "services.frontend" then gate(ctx, "frontend") end end,
}
]], dir))
  local cmd = table.concat({
    "cat", q(dir .. "/start"), ">/dev/null;",
    "env -u LC_ALL -u NO_COLOR LANG=C.UTF-8", q(BIN), "deploy", q(SRC .. "/examples/shop/moonship.yaml"),
    "-w deploy --sim --scenario", q(SRC .. "/examples/shop/scenario.yaml"), "--time-scale 0.05",
    "--hooks", q(dir .. "/hooks.lua"), "--journal-dir", q(dir .. "/runs"), table.concat(opts.args or {}, " "),
    "; echo EXIT=$?",
  }, " ")
  self:tmux("-f /dev/null new-session -d -x 120 -y 40 -s t " .. q(cmd))
  self:tmux("set-option -t t remain-on-exit on")
  self:tmux("pipe-pane -O -t t " .. q("cat > " .. q(dir .. "/pane")))
  self.stream = assert(io.open(dir .. "/pane", "r"))
  write_file(dir .. "/start", "go\n")
  return self
end

function Session:tmux(args)
  local out, code = sh("tmux -u -L " .. q(self.sock) .. " " .. args)
  assert(code == 0, "tmux " .. args .. ": " .. out)
  return out
end

-- Reads the pane's output until a line (frames end their lines with \n) contains `text`.
function Session:await(text)
  while true do
    local line = self.stream:read("l")
    assert(line, "the pane's output ended before '" .. text .. "'")
    if line:find(text, 1, true) then return line end
    assert(not line:find("EXIT=", 1, true) or text == "EXIT=", "moonship exited before '" .. text .. "'")
  end
end

function Session:open_gate(name) write_file(self.dir .. "/gate-" .. name, "go\n") end

-- The visible screen (or, with history, everything since the start) as lines.
function Session:capture(history)
  local out = self:tmux("capture-pane -p -t t" .. (history and " -S -" or ""))
  local lines = {}
  for l in (out .. "\n"):gmatch("(.-)\n") do lines[#lines + 1] = l end
  while #lines > 0 and lines[#lines] == "" do lines[#lines] = nil end
  return lines
end

function Session:close()
  pcall(self.tmux, self, "kill-server")
  -- Release a hook still blocked on a gate (after a failed assertion): opening a FIFO for
  -- reading and writing never blocks, and lets its reader's open return.
  sh("for f in " .. q(self.dir) .. "/gate-*; do exec 3<>\"$f\"; exec 3>&-; done")
  if self.stream then self.stream:close() end
  sh("rm -rf " .. q(self.dir))
end

local function find(lines, text)
  local found = {}
  for _, l in ipairs(lines) do if l:find(text, 1, true) then found[#found + 1] = l end end
  return found
end

-- The block's or the table's line of a task: "  <mark> <id> ..."
local function row(lines, id)
  local found = {}
  for _, l in ipairs(lines) do
    if l:find("^  [^ ]+ " .. id:gsub("%p", "%%%0") .. " ") then found[#found + 1] = l end
  end
  return found
end

local function utf8_width(s) return utf8.len(s) or #s end

-- Asserts that the line's mark is a spinner frame (the task is running) and returns the line
-- with the mark replaced by "*".
local SPINNER = {}
for _, c in utf8.codes("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏") do SPINNER[utf8.char(c)] = true end
local function running(line)
  local mark = assert(line, "no such line"):match("^  (%S+) ")
  assert(SPINNER[mark], "not running: " .. line)
  return (line:gsub("^  %S+ ", "  * ", 1))
end

-- The journal's view of the run: each task's last task_finished.
local function journal_outcome(dir)
  local path = sh("ls " .. q(dir .. "/runs") .. "/*.jsonl"):match("[^\n]+")
  local tasks, order = {}, nil
  for line in io.lines(path) do
    local ev = assert(json.decode(line))
    if ev.event == "run_started" then order = ev.tasks end
    if ev.event == "task_finished" then tasks[ev.task] = ev end
  end
  return order, tasks
end

describe("choosing the output", function()
  -- deploy of the shop with its stdout in a file (no terminal); its exit code, then its stdout
  local function piped(...)
    return sh(table.concat({"d=$(mktemp -d /tmp/moonship-tty-plain-XXXXXX);", q(BIN), "deploy",
      q(SRC .. "/examples/shop/moonship.yaml"), "-w deploy --sim --scenario", q(SRC .. "/examples/shop/scenario.yaml"),
      "--time-scale 0.02", table.concat({...}, " "), "--journal-dir \"$d\" >\"$d/out\"; echo \"exit=$?\";",
      "cat \"$d/out\"; rm -rf \"$d\""}, " "))
  end

  it("prints plain timestamped lines without a terminal, and the live view's summary table at the end", function()
    local out = piped()
    assert.truthy(out:find("exit=0\n", 1, true), out)
    assert.matches("%d%d:%d%d:%d%d run %S+: workflow deploy of shop in namespace default %(3 steps%)\n", out)
    assert.matches("%d%d:%d%d:%d%d services%.frontend ok\n", out)
    assert.matches("%d%d:%d%d:%d%d step migrate finished: succeeded\n", out)
    assert.matches("%d%d:%d%d:%d%d run %S+ succeeded %(exit 0%)\n\ndeploy shop [^\n]+ default: succeeded in %S+ %(exit 0%)", out)
    assert.matches("\n  TASK +STEP +STATE +DURATION +ATTEMPTS +MESSAGE\n", out)
    for _, id in ipairs {"services.frontend", "jobs.migrate", "jobs.scrub", "services.backend"} do
      assert.matches("\n  " .. id:gsub("%p", "%%%0") .. " +%S+ +%S+ succeeded +%d+%.%ds +1\n", out)
    end
    assert.falsy(out:find("\27", 1, true), out)
  end)

  it("colours the plain lines and their summary with --color always, as on a terminal", function()
    local out = piped("--color always")
    assert.truthy(out:find("exit=0\n", 1, true), out)
    assert.matches("%d%d:%d%d:%d%d services%.frontend \27%[32mok\27%[0m\n", out)
    assert.matches("run %S+ \27%[32msucceeded\27%[0m %(exit 0%)", out)
    assert.truthy(out:find("\27[1mdeploy shop", 1, true), out)
    assert.falsy(piped("--color never"):find("\27", 1, true))
  end)

  it("rejects an unknown --color", function()
    local out = sh(q(BIN) .. " deploy " .. q(SRC .. "/examples/shop/moonship.yaml") .. " -w deploy --color sometimes; echo exit=$?")
    assert.matches("%-%-color must be auto, always or never", out)
    assert.matches("exit=2\n$", out)
  end)
end)

describe("the live view in tmux", function()
  if not have_tmux() then
    pending("tmux is not installed (scripts/deps installs it)")
    return
  end

  it("keeps the background frontend line live while later steps run, re-lays out on resize, and ends with the journal's table", function()
    local s = start_session {args = {"--color never"}}
    local ok, err = pcall(function()
      -- Moment 1: step 3 has started services.backend (held before it applies anything).
      s:await("services.backend")
      local screen = s:capture()
      local header = find(screen, "step 3/3 backend")
      assert.equal(1, #header, table.concat(screen, "\n"))
      assert.matches("%(%+1 in the background%)", header[1])
      local front = row(screen, "services.frontend")
      assert.equal(1, #front, table.concat(screen, "\n"))
      assert.matches("^  %* services%.frontend%s+frontend %(bg%)%s+%d+:%d%d", running(front[1]))
      assert.matches("^  ✓ jobs%.migrate%s+migrate", row(screen, "jobs.migrate")[1])
      assert.matches("^  ✓ jobs%.scrub%s+migrate", row(screen, "jobs.scrub")[1])
      assert.matches("^  %* services%.backend%s+backend%s+%d+:%d%d  starting$", running(row(screen, "services.backend")[1]))
      -- the job logs are above the block, prefixed by their task
      assert.equal(1, #find(screen, "migrating schema to v42"), table.concat(screen, "\n"))
      assert.matches("^jobs%.migrate%s+│ migrating schema to v42$", find(screen, "migrating schema")[1])
      assert.matches("^jobs%.scrub%s+│ scrubbed 1,204 rows$", find(screen, "scrubbed 1,204")[1])

      -- Moment 2: the backend rolled out; the frontend (held before it finishes) still runs.
      s:open_gate("backend")
      s:await("✓ services.backend")
      screen = s:capture()
      assert.matches("^  %* services%.frontend%s+frontend %(bg%)", running(row(screen, "services.frontend")[1]))
      assert.matches("^  ✓ services%.backend%s+backend%s+%d+:%d%d$", row(screen, "services.backend")[1])
      assert.equal(1, #find(screen, "step 3/3 backend"))

      -- Resize to 60 columns: the next frame is a full redraw (ending with an erase below)
      -- that fits; the line after it is read when the next frame starts.
      s:tmux("resize-window -t t -x 60 -y 40")
      s:await("\27[J")
      screen = s:capture()
      for _, l in ipairs(screen) do
        if not l:find("│", 1, true) then assert.is_true(utf8_width(l) < 60, "too wide: " .. l .. "\n" .. table.concat(s:capture(true), "\n")) end
      end
      assert.equal(1, #find(screen, "services.frontend"), table.concat(screen, "\n"))
      assert.equal(1, #find(screen, "step 3/3"))
      assert.matches("…$", find(screen, "step 3/3")[1])

      -- The end: the block is replaced by the summary table, which matches the journal.
      s:tmux("resize-window -t t -x 120 -y 40")
      s:await("\27[J")
      s:open_gate("frontend")
      s:await("EXIT=")
      local all = s:capture(true)
      assert.equal(1, #find(all, "EXIT=0"), table.concat(all, "\n"))
      local title = find(all, "succeeded in")
      assert.equal(1, #title)
      assert.matches("^deploy shop → default: succeeded in [%d.]+s %(exit 0%)", title[1])
      assert.equal(1, #find(all, "  TASK  "))
      local order, finished = journal_outcome(s.dir)
      assert.equal(4, #order)
      for _, id in ipairs(order) do
        -- the live lines are gone: each task appears once, as its table row
        local rows = {}
        for _, l in ipairs(all) do if l:find("^  " .. id:gsub("%p", "%%%0") .. "%s") then rows[#rows + 1] = l end end
        assert.equal(1, #rows, id .. " in\n" .. table.concat(all, "\n"))
        local ev = finished[id]
        local step, state, attempts = rows[1]:match("^  %S+%s+(%S+)%s+%S+ (%a+)%s+[%d.]+%a+%s+(%d+)")
        assert.equal(ev.step, step, rows[1])
        assert.equal(ev.state, state)
        assert.equal(ev.attempt, tonumber(attempts))
      end
    end)
    s:close()
    assert(ok, err)
  end)
end)
