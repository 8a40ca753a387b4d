-- moonship deploy [TEMPLATE] -w WORKFLOW ...: validate, connect, run the workflow, report.
local deploy = require "moonship.run.deploy"

local O = require "moonship.cli.options"

local OPTIONS = {
  O.workflow("the workflow to run (required)"), O.env, O.image, O.domain, O.namespace, O.context, O.kubeconfig,
  O.hooks, O.concurrency,
  {long = "qps", arg = "N", help = "API requests per second at most, client side (default 100; 0: no limit)"},
  {long = "burst", arg = "N", help = "API requests at once above --qps (default 200)"},
  {long = "timeout", arg = "DURATION", help = "per-task time limit (default 10m; 90s, 5m, 1h)"},
  {long = "settle", arg = "DURATION", help = "how long the end-of-run check waits for failed services to recover (default 30s)"},
  {long = "dry-run", help = "validate against the server (server-side dry run); deploy nothing"},
  {long = "resume", help = "skip tasks that succeeded with the same spec in the last run"},
  {long = "output", short = "o", arg = "text|json", help = "json: one JSON event per line on stdout"},
  {long = "logs", arg = "all|failed|none", help = "which job logs to show (default all)"},
  {long = "color", arg = "auto|always|never", help = "color the output (default auto: on a terminal, unless NO_COLOR is set)"},
  {long = "sim", help = "start kubesim on a free loopback port for this run"},
  {long = "scenario", arg = "FILE", help = "kubesim scenario (with --sim)"},
  {long = "time-scale", arg = "F", help = "kubesim time scale (with --sim; 0.1 runs 10x faster)"},
  O.journal_dir,
  {long = "report", arg = "FILE.html", help = "after the run, write its HTML timeline report (as moonship report does)"},
}

return {
  usage = "deploy " .. O.TEMPLATE .. " -w WORKFLOW [OPTIONS]",
  summary = "Deploy a workflow of an application template.",
  options = OPTIONS,
  run = function(opts, args, out)
    local settings, err = deploy.settings_from_cli(opts, args)
    if not settings then return nil, err end
    local ok, result = out.run(deploy.run, settings)
    if not ok then return result end
    return result.exit_code
  end,
}
