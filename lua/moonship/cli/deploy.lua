-- moonship deploy [TEMPLATE] -w WORKFLOW ...: validate, connect, run the workflow, report.
local deploy = require "moonship.run.deploy"

local O = require "moonship.cli.options"
local duration = require "moonship.duration"
local template = require "moonship.model.template"

local OPTIONS = {
  O.workflow("the workflow to run (required)"), O.env, O.image, O.domain, O.namespace, O.context, O.kubeconfig,
  O.hooks, O.concurrency, O.qps, O.burst, O.timeout, O.settle, O.dry_run,
  {long = "resume", help = "skip tasks that succeeded with the same spec in the last run"},
  {long = "prune", help = "after the workflow succeeded, delete what it applied before and no longer produces"},
  O.no_prune,
  O.output, O.logs, O.color, O.sim, O.scenario,
  {long = "time-scale", arg = "F", help = "kubesim time scale (with --sim; 0.1 runs 10x faster)"},
  O.journal_dir, O.report, O.history,
}

-- Turns parsed CLI options into settings, or nil and a usage error (moonship diff's and
-- rollback's too: they take some of deploy's options, which mean the same; the others are
-- absent). need_workflow: -w is required.
local function settings_from_cli(opts, args, need_workflow)
  local s = {
    template = args[1], workflow = opts.workflow, env = opts.env, namespace = opts.namespace,
    context = opts.context, kubeconfig = opts.kubeconfig, hooks = opts.hooks,
    dry_run = opts["dry-run"] or false, resume = opts.resume or false,
    output = opts.output or "text", logs = opts.logs or "all",
    sim = opts.sim or false, scenario = opts.scenario, journal_dir = opts["journal-dir"],
    domain = opts.domain,
  }
  if #args > 1 then return nil, "more than one template given: " .. table.concat(args, " ") end
  local images, ierr = template.parse_images(opts.image)
  if not images then return nil, ierr end
  s.images = images
  if need_workflow and not s.workflow then return nil, "missing -w WORKFLOW" end
  -- prune: true or false as the command line says, else nil: the template's prune: decides
  if opts.prune and opts["no-prune"] then return nil, "--prune and --no-prune contradict each other" end
  if opts.prune then s.prune = true elseif opts["no-prune"] then s.prune = false end
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
      -- no time at all for each task would fail every one at once (a settle of 0 is no settle)
      if key == "timeout" and v <= 0 then return nil, "--timeout must be more than 0s" end
      s[key] = v
    end
  end
  if opts["time-scale"] then
    s.time_scale = tonumber(opts["time-scale"])
    if not s.time_scale or s.time_scale <= 0 then return nil, "--time-scale must be a positive number" end
  end
  if (s.scenario or s.time_scale) and not s.sim then return nil, "--scenario and --time-scale need --sim" end
  if opts.history then
    s.history = math.tointeger(tonumber(opts.history))
    if not s.history or s.history < 0 then return nil, "--history must be a number of runs (0: keep all)" end
  end
  return s
end

return {
  usage = "deploy " .. O.TEMPLATE .. " -w WORKFLOW [OPTIONS]",
  summary = "Deploy a workflow of an application template.",
  options = OPTIONS,
  settings = settings_from_cli,
  run = function(opts, args, out)
    local settings, err = settings_from_cli(opts, args, true)
    if not settings then return nil, err end
    local ok, result = out.run(deploy.run, settings)
    if not ok then return result end
    return result.exit_code
  end,
}
