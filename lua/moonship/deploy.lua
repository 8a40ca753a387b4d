-- A deployment from start to end, shared by `moonship deploy` and require("moonship").deploy:
-- load and validate (bad input exits 2 before any API call), optionally start kubesim, connect,
-- open the journal and its outputs, resume from the last run, run the engine.
local duration = require "moonship.duration"
local engine = require "moonship.engine"
local hooks_mod = require "moonship.hooks"
local journal_mod = require "moonship.journal"
local kube = require "moonship.kube"
local plain = require "moonship.ui.plain"
local template = require "moonship.template"
local EXIT = require "moonship.exit"

local fmt = string.format

local M = {}

-- Turns parsed CLI options into settings, or nil and a usage error.
function M.settings_from_cli(opts, args)
  local s = {
    template = args[1], workflow = opts.workflow, env = opts.env, namespace = opts.namespace,
    context = opts.context, kubeconfig = opts.kubeconfig, hooks = opts.hooks,
    dry_run = opts["dry-run"] or false, resume = opts.resume or false,
    output = opts.output or "text", logs = opts.logs or "all",
    sim = opts.sim or false, scenario = opts.scenario, journal_dir = opts["journal-dir"],
  }
  if #args > 1 then return nil, "more than one template given: " .. table.concat(args, " ") end
  if not s.workflow then return nil, "missing -w WORKFLOW" end
  if s.output ~= "text" and s.output ~= "json" then return nil, "--output must be text or json" end
  if s.logs ~= "all" and s.logs ~= "failed" and s.logs ~= "none" then return nil, "--logs must be all, failed or none" end
  s.color = opts.color or "auto"
  s.report = opts.report
  if s.color ~= "auto" and s.color ~= "always" and s.color ~= "never" then return nil, "--color must be auto, always or never" end
  if opts.concurrency then
    s.concurrency = math.tointeger(tonumber(opts.concurrency))
    if not s.concurrency or s.concurrency < 1 then return nil, "--concurrency must be a positive integer" end
  end
  if opts.qps then
    s.qps = tonumber(opts.qps)
    if not s.qps or s.qps < 0 or s.qps ~= s.qps or s.qps == math.huge then
      return nil, "--qps must be a number of requests per second (0: no limit)"
    end
  end
  if opts.burst then
    s.burst = math.tointeger(tonumber(opts.burst))
    if not s.burst or s.burst < 1 then return nil, "--burst must be a positive integer" end
  end
  for _, key in ipairs {"timeout", "settle"} do
    if opts[key] then
      local v, err = duration.parse(opts[key])
      if not v then return nil, "--" .. key .. ": " .. err end
      s[key] = v
    end
  end
  if opts["time-scale"] then
    s.time_scale = tonumber(opts["time-scale"])
    if not s.time_scale or s.time_scale <= 0 then return nil, "--time-scale must be a positive number" end
  end
  if (s.scenario or s.time_scale) and not s.sim then return nil, "--scenario and --time-scale need --sim" end
  return s
end

local function dirname(path) return path:match("^(.*)/[^/]*$") or "." end

local function file_exists(path)
  local f = io.open(path)
  if f then f:close() return true end
  return false
end

-- The namespace before the template is read: -n, else (without --env, which names the
-- environment's own namespace <app>-<env>) the kubeconfig context's. Reading the kubeconfig
-- makes no request; a broken one is reported when the client connects.
function M.namespace_hint(s)
  if s.namespace or s.env then return s.namespace end
  if s.sim then return "default" end
  local ok, cfg = pcall(require("moonship.kubeconfig").load, {kubeconfig = s.kubeconfig, context = s.context})
  return ok and cfg and cfg.namespace or nil
end

-- Makes sure the namespace exists (an environment's namespace usually does not yet).
local function ensure_namespace(client, namespace)
  local ns, _, code = client:get("v1", "Namespace", namespace)
  if ns or code ~= "not_found" then return true end
  return client:apply {apiVersion = "v1", kind = "Namespace",
                       metadata = {name = namespace, labels = {["app.kubernetes.io/managed-by"] = "moonship"}}}
end

-- Loads hooks and template and picks the workflow. Returns model, workflow, hooks, warnings
-- or nil, {messages}.
function M.load(s)
  local path = s.template or template.find(".")
  if not path then
    return nil, {"no template given, and neither .release/application_template.yaml nor moonship.yaml exists here"}
  end
  local hooks_path = s.hooks
  if not hooks_path and file_exists(dirname(path) .. "/hooks.lua") then hooks_path = dirname(path) .. "/hooks.lua" end
  local hooks, herr = hooks_mod.load(hooks_path)
  if not hooks then return nil, {herr} end
  local model, problems, more_warnings = template.load(path, {env = s.env, namespace = M.namespace_hint(s),
                                               custom_kinds = hooks:custom_kinds(), hooks = hooks_path})
  if not model then
    local msgs = {}
    for _, w in ipairs(more_warnings or {}) do msgs[#msgs + 1] = template.format_message(w) end
    for _, p in ipairs(problems) do msgs[#msgs + 1] = template.format_message(p) end
    return nil, msgs
  end
  local warnings = {}
  for i, w in ipairs(problems or {}) do warnings[i] = template.format_message(w) end
  if not s.hooks and not hooks_path and model.hooks_path then
    hooks, herr = hooks_mod.load(model.hooks_path)
    if not hooks then return nil, {herr} end
  end
  local wf, werr = template.workflow(model, s.workflow)
  if not wf then return nil, {tostring(werr and (werr.text or werr) or ("no workflow " .. s.workflow))} end
  return model, wf, hooks, warnings
end

-- Runs a deployment inside a task. Returns the engine's result (with exit_code); bad input
-- gives {exit_code = 2, errors = {...}}.
function M.run(s)
  local stderr = s.stderr or function(text) io.stderr:write(text) end
  local stdout = s.stdout or function(text) io.stdout:write(text) io.stdout:flush() end
  local model, wf, hooks, warnings = M.load(s)
  if not model then
    for _, msg in ipairs(wf) do stderr(msg .. "\n") end
    return {exit_code = EXIT.bad_input, errors = wf}
  end
  for _, w in ipairs(warnings) do stderr(w .. "\n") end

  local sim
  if s.sim then
    local err
    sim, err = require("moonship.sim").start {scenario = s.scenario, time_scale = s.time_scale}
    if not sim then
      stderr("moonship: " .. err .. "\n")
      return {exit_code = EXIT.bad_input, errors = {err}}
    end
    s.kubeconfig = sim.kubeconfig
  end
  local _ <close> = setmetatable({}, {__close = function() if sim then sim:stop() end end})

  local client, cerr = s.client, nil
  if not client then
    client, cerr = kube.connect {kubeconfig = s.kubeconfig, context = s.context, namespace = s.namespace,
                                 qps = s.qps, burst = s.burst}
    if not client then
      stderr("moonship: " .. tostring(cerr) .. "\n")
      return {exit_code = EXIT.bad_input, errors = {cerr}}
    end
  end
  local namespace = model.namespace or client.namespace
  client.namespace = namespace
  if not s.dry_run then
    local ok, nerr = ensure_namespace(client, namespace)
    if not ok then
      stderr("moonship: namespace " .. namespace .. ": " .. tostring(nerr) .. "\n")
      return {exit_code = EXIT.halted, errors = {nerr}}
    end
  end

  local journal = journal_mod.new {
    app = model.app, workflow = wf.name, namespace = namespace, env = s.env,
    dir = s.journal_dir or (model.dir or dirname(model.file)) .. "/.moonship/runs",
  }
  if s.output == "json" then
    journal:add_sink(function(_, line) stdout(line .. "\n") end)
  elseif s.output ~= "none" then
    local tty = require "moonship.ui.tty"
    journal:add_sink(tty.wanted(s) and tty.sink {logs = s.logs, color = s.color} or plain.sink(stdout, {logs = s.logs}))
  end
  for _, sink in ipairs(s.sinks or {}) do journal:add_sink(sink) end

  local previous, history
  if s.resume then
    previous = journal_mod.load_last {client = client, app = model.app, workflow = wf.name,
                                      namespace = namespace, dir = journal.dir}
    if not previous then stderr("moonship: --resume: no earlier run of this workflow found; running everything\n") end
  else -- the local record of the last run, for its durations (the engine starts long tasks first)
    history = journal_mod.load_last {app = model.app, workflow = wf.name, dir = journal.dir, times_only = true}
  end

  local result = engine.run {
    model = model, workflow = wf, client = client, hooks = hooks, journal = journal,
    namespace = namespace, env = s.env, concurrency = s.concurrency, timeout = s.timeout,
    settle = s.settle, dry_run = s.dry_run, resume = previous, history = history, logs = s.logs,
  }
  client:close()
  result.journal_path = journal.path
  if s.report then
    -- The HTML timeline report, from the run's events as the journal file has them.
    local html = require "moonship.render.html"
    local events, jerr = html.read_journal(journal.path)
    local f, rerr = events and io.open(s.report, "wb")
    if not events then rerr = jerr end
    if f then
      f:write(html.render(events))
      f:close()
      result.report_path = s.report
      if s.output == "text" then stderr(fmt("moonship: report %s\n", s.report)) end
    else
      stderr(fmt("moonship: --report: %s\n", tostring(rerr)))
    end
  end
  if s.output == "text" and journal.path then
    stderr(fmt("moonship: journal %s\n", journal.path))
  end
  return result
end

return M
