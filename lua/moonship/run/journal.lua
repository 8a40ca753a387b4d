-- The run journal: a sink of the run's events (moonship.run.events). It writes each as JSON Lines
-- to a local file (flushed per line, so a crash leaves everything up to it), hands it to any
-- number of other sinks (the --output json stream, the progress UI), each under pcall, and
-- keeps the run's state from the events (events.state) for its snapshot: a ConfigMap in the
-- namespace with each task's state, attempts, times, spec hash and objects, which --resume
-- and cleanup hooks read.
local events = require "moonship.run.events"
local json = require "moonship.json"
local sched = require "moonship.sched"
local fs = require "moonship.fs"

local fmt = string.format

local M = {}

local Journal = {}
Journal.__index = Journal

-- A run id: sortable by time, unique enough across machines.
function M.new_run_id()
  local t = os.date("!%Y%m%d-%H%M%S")
  -- The suffix comes from the OS: two runs started in the same second must not share an id (a
  -- Job's name carries it), and a Lua state's own seed repeats where addresses do not vary.
  local f = io.open("/dev/urandom", "rb")
  local bytes = f and f:read(3)
  if f then f:close() end
  if not bytes or #bytes < 3 then
    bytes = string.char(math.random(0, 255), math.random(0, 255), math.random(0, 255))
  end
  return t .. "-" .. (bytes:gsub(".", function(c) return string.format("%02x", c:byte()) end))
end

-- The local journal directory of a template's runs when --journal-dir names none:
-- .moonship/runs beside the template.
function M.default_dir(model)
  return fs.join(model.dir or fs.dirname(model.file), ".moonship/runs")
end

-- journal.new{run_id=, app=, workflow=, namespace=, env=, dir= (local journal directory),
-- dry_run= (every event then says so), time_scale= (a --sim run's: its snapshot says so, and
-- plans from its durations), warn=fn(text) (where a failing sink is reported; default stderr)}
-- -> journal, or nil and a message when the journal file cannot be written
function M.new(opts)
  local self = setmetatable({
    run_id = opts.run_id or M.new_run_id(),
    app = opts.app, workflow = opts.workflow, namespace = opts.namespace, env = opts.env,
    dir = opts.dir, dry_run = opts.dry_run or nil, time_scale = opts.time_scale,
    warn = opts.warn or function(text) io.stderr:write(text) end,
    started = sched.now(),
    started_at = os.date("!%Y-%m-%dT%H:%M:%SZ"),
    sinks = {},                -- the events themselves are kept only in the file: a run of
                               -- thousands of tasks must not hold them all in memory
    run = events.state(),      -- each task's state, from the events, for the snapshot
  }, Journal)
  -- journal.tasks (id -> record) and journal.order (ids) as the Lua API has always given them
  self.tasks, self.order = self.run.tasks, self.run.order
  if self.dir then
    -- the directories made here, innermost first, for discard
    self.made = {}
    local d = self.dir
    while d ~= "" and d ~= "/" and d ~= "." and not fs.exists(d) do
      self.made[#self.made + 1] = d
      d = fs.dirname(d)
    end
    fs.mkdir_p(self.dir) -- a failure shows at the open below
    self.path = fmt("%s/%s.jsonl", self.dir, self.run_id)
    -- a run that cannot say what it applied does not start
    local file, err = io.open(self.path, "w")
    if not file then return nil, "cannot write the run journal: " .. err .. " (set --journal-dir)" end
    self.file = file
  end
  return self
end

-- journal:add_sink(fn, {name=, fallback=}) -> sink: fn(event, json_line) is called for every
-- event. A sink that raises never changes the run: the failure is reported once, and the sink
-- is replaced by its fallback (which sees that event too) or detached. A sink that fails
-- outside emit (a view's own redraw task) reports it with journal:sink_failed(sink, err).
function Journal:add_sink(fn, opts)
  opts = opts or {}
  local sink = {fn = fn, name = opts.name or fmt("output %d", #self.sinks + 1), fallback = opts.fallback}
  self.sinks[#self.sinks + 1] = sink
  return sink
end

function Journal:sink_failed(sink, err, ev, line)
  if sink.failed then return end
  sink.failed = true
  sink.fn = sink.fallback or function() end
  self.warn(fmt("moonship: %s failed: %s; %s\n", sink.name, tostring(err):gsub("\n.*", ""),
    sink.fallback and "going on with plain lines" or "going on without it"))
  if ev and sink.fallback then
    local ok, ferr = pcall(sink.fallback, ev, line)
    if not ok then
      sink.fn = function() end
      self.warn(fmt("moonship: %s failed too: %s\n", sink.name, tostring(ferr):gsub("\n.*", "")))
    end
  end
end

-- Records an event: fills in t, run, workflow (and dry_run); folds it into the run's state;
-- writes and forwards it.
function Journal:emit(ev)
  assert(events.NAMES[ev.event], "journal: unknown event")
  ev.dry_run = self.dry_run or ev.dry_run
  ev.t = math.floor((sched.now() - self.started) * 1000 + 0.5) / 1000
  ev.run = self.run_id
  ev.workflow = ev.workflow or self.workflow
  self.run:apply(ev)
  local line = json.encode(ev, {sort_keys = true})
  if self.file then
    self.file:write(line, "\n")
    self.file:flush()
  end
  for _, sink in ipairs(self.sinks) do
    local ok, err = pcall(sink.fn, ev, line)
    if not ok then self:sink_failed(sink, err, ev, line) end
  end
  return ev
end

function Journal:snapshot()
  local tasks = {}
  for _, id in ipairs(self.run.order) do
    local r = self.run.tasks[id]
    tasks[#tasks + 1] = {id = id, state = r.state, attempts = r.attempts, step = r.step,
      started = r.started, finished = r.finished, message = r.message, spec_hash = r.spec_hash,
      objects = json.array(r.objects)}
  end
  return {
    run = self.run_id, app = self.app, workflow = self.workflow, namespace = self.namespace,
    env = self.env, state = self.run.run_state, started_at = self.started_at, time_scale = self.time_scale,
    tasks = json.array(tasks),
  }
end

-- The snapshot as a ConfigMap in the namespace: moonship-run-<app>-<workflow>, with the latest
-- run's snapshot, so that a resume from another machine finds it.
function M.configmap_name(app, workflow)
  local name = ("moonship-run-" .. app .. "-" .. workflow):lower():gsub("[^a-z0-9%-%.]", "-")
  return name:sub(1, 253)
end

-- The local copy of the snapshot of app's last run of workflow.
local function last_path(dir, app, workflow)
  return fmt("%s/last-%s-%s.json", dir, app, workflow)
end

function Journal:save(client)
  local text = json.encode(self:snapshot(), {sort_keys = true})
  if self.dir then
    fs.write(last_path(self.dir, self.app, self.workflow), text .. "\n")
  end
  if client then
    local cm = {
      apiVersion = "v1", kind = "ConfigMap",
      metadata = {name = M.configmap_name(self.app, self.workflow), namespace = self.namespace,
        labels = {["app.kubernetes.io/part-of"] = self.app, ["app.kubernetes.io/managed-by"] = "moonship",
                  ["moonship.dev/journal"] = "true"}},
      data = {["run.json"] = text},
    }
    -- the answer is the ConfigMap again: not worth decoding the snapshot back
    return client:apply(cm, {drop = {"data", "metadata.managedFields"}})
  end
  return true
end

-- The last run's snapshot: from the cluster's ConfigMap when a client is given, else from the
-- local directory. nil when there is none. opts.times_only: each task's id, state and times,
-- not the objects it applied (most of the text), for those who want durations.
function M.load_last(opts)
  local decode_opts = opts.times_only and {drop = {"tasks.*.objects"}} or nil
  if opts.client then
    local cm = opts.client:get("v1", "ConfigMap", M.configmap_name(opts.app, opts.workflow), opts.namespace)
    if cm and cm.data and cm.data["run.json"] then return json.decode(cm.data["run.json"], decode_opts) end
  end
  if opts.dir then
    local text = fs.read(last_path(opts.dir, opts.app, opts.workflow))
    if text then return json.decode(text, decode_opts) end
  end
end

function Journal:close()
  if self.file then
    self.file:close()
    self.file = nil
  end
end

-- Closes and removes the journal of a run that did not start (its preflight refused), with
-- the directories made for it: it holds no event, and a journal says what a run applied.
function Journal:discard()
  self:close()
  if self.path then os.remove(self.path) end
  for _, d in ipairs(self.made or {}) do os.remove(d) end -- only what it made, and only if empty
end

return M
