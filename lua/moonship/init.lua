-- require "moonship": the programmatic API, the same scheduler, client and engine as the CLI.
--   moonship.load_template(path, opts) -> model, warnings | nil, errors
--   moonship.deploy(path, opts) -> result {state=, exit_code=, run_id=, journal=}; a script ends
--     with os.exit(result.exit_code), which a stock lua5.4 needs to exit with it
--     opts as the CLI's long options: workflow=, env=, namespace=, context=, kubeconfig=,
--     hooks=, concurrency=, timeout=, settle=, dry_run=, resume=, prune=, output="text"|"json"|"none",
--     sim=, scenario=, time_scale=, history= (records kept: the run is recorded in the run
--     history, as the CLI's deploy records it), sinks={fn(event)}, client= (an existing kube client)
--   moonship.rollback(path, opts) -> result, as deploy's: the last good run (or opts.to, a run id
--     or revision) re-applied; opts as the CLI's rollback options (workflow=, env=, namespace=, ...)
--   moonship.history(path, opts) -> {exit_code=, runs={...newest first}} (or errors=)
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

-- Runs fn(settings) (settings: opts over {template = path, output = "none"}): in a stock lua5.4
-- this starts the scheduler; inside one (moonship run) it runs as a task.
local function command(fn, path, opts)
  local settings = {template = path, output = "none"}
  for k, v in pairs(opts or {}) do settings[k] = v end
  return M.sched.run(fn, settings)
end

function M.deploy(path, opts)
  return command(require("moonship.run.deploy").run, path, opts)
end

function M.rollback(path, opts)
  return command(require("moonship.run.rollback").run, path, opts)
end

function M.history(path, opts)
  return command(require("moonship.run.rollback").list, path, opts)
end

function M.plan(path, opts)
  return require("moonship.model.plan").build(path, opts or {})
end

return M
