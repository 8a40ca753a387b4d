-- A deployment from start to end, shared by `moonship deploy` and require("moonship").deploy:
-- load and validate (bad input exits 2 before any API call), optionally start kubesim, connect,
-- check that the cluster can be used (a preflight: exit 2 with one line when it cannot), open
-- the journal and its outputs, resume from the last run, run the engine, which records the run
-- in the run history. `moonship diff`, `moonship rollback` and `moonship history` (run/diff.lua,
-- run/rollback.lua) use the same steps.
local applyset = require "moonship.kube.applyset"
local engine = require "moonship.run.engine"
local fs = require "moonship.fs"
local history = require "moonship.run.history"
local hooks_mod = require "moonship.run.hooks"
local journal_mod = require "moonship.run.journal"
local kube = require "moonship.kube"
local plain = require "moonship.output.plain"
local sched = require "moonship.sched"
local template = require "moonship.model.template"
local EXIT = require "moonship.exit"

local fmt = string.format

local M = {}

-- The namespace before the template is read (kubeconfig.default_namespace: the one rule);
-- kubesim's context names none. A broken kubeconfig is reported when the client connects.
function M.namespace_hint(s)
  if s.sim and not (s.namespace or s.env) then return nil end
  return (require("moonship.kube.kubeconfig").default_namespace(s))
end

-- A namespace's name must be an RFC 1123 label, as the apiserver validates it.
local NAMESPACE_RULE = "a namespace name must be a lowercase RFC 1123 label: at most 63 characters, "
  .. "only a-z, 0-9 and '-', starting and ending with a letter or digit"

local function valid_namespace(name)
  return type(name) == "string" and #name >= 1 and #name <= 63
    and name:match("^[a-z0-9][a-z0-9%-]*$") ~= nil and name:match("[a-z0-9]$") ~= nil
end

-- Where the namespace of a run comes from, for messages.
local function namespace_source(s)
  if s.namespace then return "-n" end
  if s.env then return "<app>-<env>" end
  return "the kubeconfig context's namespace"
end

-- Can the run use the cluster? Asked after connecting and before the journal and the first
-- step, so that a cluster that cannot be reached or refuses the credentials is one line within
-- seconds, not a failure per task. Makes sure the namespace exists: only a 200 says it does, a
-- 404 has it created (a dry run has the server check it and creates nothing; so does a command
-- that only reads, keep_missing). Returns true and "exists" | "created" | "missing" (dry run,
-- keep_missing), or nil and the cause in words.
local function preflight(client, namespace, dry_run, keep_missing)
  local ok, err = client:check()
  if not ok then return nil, err end
  local state, nerr = client:check_namespace(namespace)
  if not state then return nil, nerr end
  if state == "exists" then return true, state end
  if keep_missing then return true, "missing" end
  local created, aerr, code, status = client:apply({apiVersion = "v1", kind = "Namespace",
    metadata = {name = namespace, labels = {["app.kubernetes.io/managed-by"] = "moonship"}}}, {dry_run = dry_run})
  if not created then
    if code == "forbidden" then
      return nil, fmt("403 forbidden: cannot create namespace '%s'%s", namespace,
        status and status.message and (" (" .. status.message .. ")") or "")
    end
    return nil, aerr
  end
  return true, dry_run and "missing" or "created"
end

-- Loads hooks and template. Returns model, hooks, warnings or nil, {messages}. s.template may
-- be a file or a directory.
function M.load_template(s)
  local path, perr = template.resolve(s.template)
  if not path then return nil, {"moonship: " .. perr} end
  -- The template finds the hooks file (--hooks, its hooks key, or hooks.lua beside it) and
  -- reports its problems as its own; the hooks are loaded once, here.
  local hooks
  local model, problems, more_warnings = template.load(path, {
    env = s.env, namespace = M.namespace_hint(s), hooks = s.hooks, images = s.images, domain = s.domain,
    custom_kinds = function(hooks_path, display)
      local loaded, err, list = hooks_mod.load(hooks_path, display)
      if not loaded then return nil, err, list end
      hooks = loaded
      return loaded:custom_kinds()
    end,
  })
  if not model then
    local msgs = {}
    for _, w in ipairs(more_warnings or {}) do msgs[#msgs + 1] = template.format_message(w) end
    for _, p in ipairs(problems) do msgs[#msgs + 1] = template.format_message(p) end
    return nil, msgs
  end
  hooks = hooks or hooks_mod.load(nil)
  local warnings = {}
  for i, w in ipairs(problems or {}) do warnings[i] = template.format_message(w) end
  return model, hooks, warnings
end

-- Loads hooks and template and picks the workflow. Returns model, workflow, hooks, warnings
-- or nil, {messages}; a workflow that needs what the template lacks (an --image, a chart's
-- directory) is such an error, unless s.for_plan. s.template may be a file or a directory.
function M.load(s)
  local model, hooks, warnings = M.load_template(s)
  if not model then return nil, hooks end
  local wf, werr = template.workflow(model, s.workflow)
  if not wf then
    warnings[#warnings + 1] = fmt("%s: error: %s", model.file, werr)
    return nil, warnings
  end
  -- What validate only warns about stops a deploy whose workflow needs it.
  local blocked = s.for_plan and {} or template.undeployable(model, wf)
  if #blocked > 0 then
    local msgs, said = {}, {}
    for _, b in ipairs(blocked) do said[b.warning] = true end
    for _, w in ipairs(warnings) do if not said[w] then msgs[#msgs + 1] = w end end
    for _, b in ipairs(blocked) do msgs[#msgs + 1] = b.text end
    return nil, msgs
  end
  return model, wf, hooks, warnings
end

-- The HTML timeline report of a finished run, from its events as the journal file has them.
-- A failure is reported; it does not change the run's outcome.
function M.write_report(journal_path, report_path, result, stderr, announce)
  local html = require "moonship.output.html"
  local ok, err = pcall(function()
    local events = assert(html.read_journal(journal_path))
    local page = html.render(events)
    assert(fs.write(report_path, page))
  end)
  if not ok then
    stderr(fmt("moonship: --report: %s\n", tostring(err)))
    return
  end
  result.report_path = report_path
  if announce then stderr(fmt("moonship: report %s\n", report_path)) end
end

-- Input that stops a deploy before anything is applied: said on stderr, exit 2.
local function refused(stderr, msg)
  stderr("moonship: " .. msg .. "\n")
  return {exit_code = EXIT.bad_input, errors = {msg}}
end
M.refused = refused

-- Where a command writes: the settings' stdout and stderr, else the process's.
function M.outputs(s)
  local stderr = s.stderr or function(text) io.stderr:write(text) end
  local stdout = s.stdout or function(text) io.stdout:write(text) io.stdout:flush() end
  return stdout, stderr
end

-- The template, hooks and workflow of settings s, loaded under a guard (a large template
-- computes for a while without waiting: a Ctrl-C meanwhile stops it at once, and other tasks,
-- a --sim kubesim's reader, keep running), with its warnings written.
-- Returns model, workflow, hooks or nil, the result of bad input {exit_code = 2, errors=}.
-- without_workflow: the template and hooks only (workflow nil), as rollback and history need.
function M.prepare(s, stderr, without_workflow)
  local load = M.load
  if without_workflow then
    load = function(settings)
      local model, hooks, warnings = M.load_template(settings)
      if not model then return nil, hooks end
      return model, nil, hooks, warnings
    end
  end
  local loaded = table.pack(sched.guard(0, load, s))
  if not loaded[1] then error(loaded[2], 0) end
  local model, wf, hooks, warnings = table.unpack(loaded, 2, 5)
  if not model then
    for _, msg in ipairs(wf) do stderr(msg .. "\n") end
    return nil, {exit_code = EXIT.bad_input, errors = wf}
  end
  for _, w in ipairs(warnings) do stderr(w .. "\n") end
  return model, wf, hooks
end

-- From a loaded template to a cluster the run can use: checks the namespace's name, starts
-- kubesim when s.sim, connects (or takes s.client) and runs the preflight, which creates the
-- namespace when it is missing, unless s.dry_run or keep_missing (for the commands that only
-- read what is there, or re-apply into what exists). Returns a connection {client=, state=
-- "exists" | "created" | "missing", sim=} whose closing stops the kubesim it started, or nil
-- and the message (bad input, or a cluster that cannot be used: nothing was applied).
local Connection = {}
Connection.__index = Connection
function Connection:__close()
  if self.sim then
    self.sim:stop()
    self.sim = nil
  end
end

function M.open(s, model, keep_missing)
  if not valid_namespace(model.namespace) then
    return nil, fmt("invalid namespace '%s' (from %s): %s", tostring(model.namespace), namespace_source(s),
      NAMESPACE_RULE)
  end
  local conn, opened = setmetatable({}, Connection), false
  -- an error or a cancellation on the way stops the kubesim as well
  local _ <close> = setmetatable({}, {__close = function() if not opened then conn:__close() end end})
  if s.sim then
    local sim, err = require("moonship.kube.sim").start {scenario = s.scenario, time_scale = s.time_scale}
    if not sim then return nil, err end
    conn.sim = sim
    s.kubeconfig = sim.kubeconfig
  end
  local client, cerr = s.client, nil
  if not client then
    client, cerr = kube.connect {kubeconfig = s.kubeconfig, context = s.context, namespace = s.namespace,
                                 qps = s.qps, burst = s.burst}
    if not client then return nil, tostring(cerr) end
  end
  client.namespace = model.namespace
  -- Nothing has been applied when this fails: like bad input, exit 2, and no journal.
  local usable, state = preflight(client, model.namespace, s.dry_run, keep_missing)
  if not usable then return nil, fmt("cannot use %s: %s", client:describe(), state) end
  conn.client, conn.state, opened = client, state, true
  return conn
end

-- The app's ApplySet for settings s, once checked usable: a parent Secret of another tool is
-- refused, never changed (KEP-3659). Returns the set or nil, message.
function M.applyset(s, client, model)
  local set = applyset.new(client, {app = model.app, environment = s.env, namespace = model.namespace})
  local ok, err = set:check()
  if not ok then return nil, err end
  return set
end

-- The journal of the run (workflow: the name it records), with its outputs: the JSON event
-- stream, or the live view (which, should it fail, is reported once and replaced by plain
-- lines; it never changes the run) or the progress lines; then the caller's sinks. Returns
-- the journal or nil, message (its file cannot be written).
function M.open_journal(s, model, workflow, stdout, stderr)
  local journal, err = journal_mod.new {
    app = model.app, workflow = workflow, namespace = model.namespace, env = s.env, dry_run = s.dry_run,
    time_scale = s.sim and (s.time_scale or 1) or nil,
    dir = s.journal_dir or journal_mod.default_dir(model), warn = stderr,
  }
  if not journal then return nil, err end
  if s.output == "json" then
    journal:add_sink(function(_, line) stdout(line .. "\n") end, {name = "the JSON event stream"})
  elseif s.output ~= "none" then
    local tty = require "moonship.output.tty"
    local on_tty = not s.stdout and require("moonship.core").term.isatty(1)
    local lines = plain.sink(stdout, {logs = s.logs, color = tty.use_color(s.color or "auto", on_tty)})
    if tty.wanted(s) then
      local view
      view = journal:add_sink((tty.sink {logs = s.logs, color = s.color,
        on_error = function(verr) journal:sink_failed(view, verr) end}), {name = "the live view", fallback = lines})
    else
      journal:add_sink(lines, {name = "the progress lines"})
    end
  end
  for _, sink in ipairs(s.sinks or {}) do journal:add_sink(sink) end
  return journal
end

-- The last run of the workflow: the one to resume (--resume), else the local record of it for
-- its durations (the engine starts long tasks first). Returns previous, last.
local function last_run(s, client, model, wf, journal, stderr)
  if not s.resume then
    return nil, journal_mod.load_last {app = model.app, workflow = wf.name, dir = journal.dir, times_only = true}
  end
  local previous = journal_mod.load_last {client = client, app = model.app, workflow = wf.name,
                                          namespace = model.namespace, dir = journal.dir}
  if not previous then stderr("moonship: --resume: no earlier run of this workflow found; running everything\n") end
  return previous, nil
end

-- Whether the run prunes: --prune or --no-prune (s.prune true or false), else the template's
-- prune: key.
function M.prunes(s, model)
  if s.prune ~= nil then return s.prune end
  return model.prune or false
end

-- What the engine records of a run in the run history (not in a dry run).
function M.recording(s, model)
  if s.dry_run then return nil end
  return {keep = s.history or history.DEFAULT_KEEP, env = model.env_id, template = model.file}
end

-- After the run: closes the client, writes --report, names the journal. Nothing here may
-- change the outcome: the exit code is the one run_finished gave.
function M.finish(s, result, client, journal, stderr)
  result.journal_path = journal.path
  local ok, err = pcall(function()
    client:close()
    if s.report then M.write_report(journal.path, s.report, result, stderr, s.output == "text") end
  end)
  if not ok then stderr(fmt("moonship: after the run: %s\n", tostring(err))) end
  if s.output == "text" and journal.path then
    stderr(fmt("moonship: journal %s\n", journal.path))
  end
  return result
end

-- Runs a deployment inside a task. Returns the engine's result (with exit_code); bad input
-- gives {exit_code = 2, errors = {...}}.
function M.run(s)
  local stdout, stderr = M.outputs(s)
  local model, wf, hooks = M.prepare(s, stderr)
  if not model then return wf end
  -- The journal first: a run that could not say what it applied does not start, and the
  -- preflight may already create the namespace.
  local journal, jerr = M.open_journal(s, model, wf.name, stdout, stderr)
  if not journal then return refused(stderr, jerr) end
  local conn, oerr = M.open(s, model)
  if not conn then
    journal:discard()
    return refused(stderr, oerr)
  end
  local _ <close> = conn
  local client, namespace = conn.client, model.namespace
  local set, serr = M.applyset(s, client, model)
  if not set then
    journal:discard()
    return refused(stderr, serr)
  end
  if conn.state == "missing" then
    stderr(fmt("moonship: dry run: namespace %s does not exist yet (the server accepted it as a new one); the "
      .. "objects to go in it are checked against the API schema only, as their validation and admission (quotas, "
      .. "limit ranges, pod security, webhooks) need the namespace\n", namespace))
  end

  local previous, last = last_run(s, client, model, wf, journal, stderr)
  local result = engine.run {
    model = model, workflow = wf, client = client, hooks = hooks, journal = journal,
    namespace = namespace, env = s.env, concurrency = s.concurrency, timeout = s.timeout,
    settle = s.settle, dry_run = s.dry_run, resume = previous, history = last, logs = s.logs,
    prune = M.prunes(s, model), applyset = set, record = M.recording(s, model),
  }
  return M.finish(s, result, client, journal, stderr)
end

return M
