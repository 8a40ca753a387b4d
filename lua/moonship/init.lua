-- require "moonship": the programmatic API, the same scheduler, client and engine as the CLI.
--   moonship.load_template(path, opts) -> model, warnings | nil, errors
--   moonship.deploy(path, opts) -> result {state=, exit_code=, run_id=, journal=}; a script ends
--     with os.exit(result.exit_code), which a stock lua5.4 needs to exit with it
--     opts as the CLI's long options: workflow=, env=, namespace=, context=, kubeconfig=,
--     hooks=, concurrency=, timeout=, settle=, dry_run=, resume=, prune=, output="text"|"json"|"none",
--     sim=, scenario=, time_scale=, history= (records kept: the run is recorded in the run
--     history, as the CLI's deploy records it), sinks={fn(event)}, client= (an existing kube client)
--   moonship.sched, moonship.kube, moonship.connect(opts)
local M = {}

M.sched = require "moonship.sched"
M.kube = require "moonship.kube"
M.version = require("moonship.core").version

function M.load_template(path, opts)
  return require("moonship.model.template").load(path, opts or {})
end

function M.connect(opts)
  return M.kube.connect(opts)
end

function M.deploy(path, opts)
  local settings = {template = path, output = "none"}
  for k, v in pairs(opts or {}) do settings[k] = v end
  -- in a stock lua5.4 this starts the scheduler; inside one (moonship run) it runs as a task
  return M.sched.run(require("moonship.run.deploy").run, settings)
end

function M.plan(path, opts)
  return require("moonship.model.plan").build(path, opts or {})
end

return M
