-- moonship deploy [TEMPLATE] -w WORKFLOW ...: validate, connect, run the workflow, report.
local EXIT = require "moonship.exit"
local deploy = require "moonship.deploy"

local OPTIONS = {
  {long = "workflow", short = "w", arg = "NAME", help = "the workflow to run (required)"},
  {long = "env", arg = "NAME", help = "environment id: ${env_id}, and the environment template of that name"},
  {long = "image", arg = "NAME=REF", many = true, help = "the image of service or job NAME (repeatable), for images built elsewhere"},
  {long = "domain", arg = "DOMAIN", help = "${domain} in hostnames (default: the template's domain key)"},
  {long = "namespace", short = "n", arg = "NS", help = "namespace (default: the context's)"},
  {long = "context", arg = "NAME", help = "kubeconfig context"},
  {long = "kubeconfig", arg = "PATH", help = "kubeconfig file (default: $KUBECONFIG, ~/.kube/config)"},
  {long = "hooks", arg = "FILE", help = "Lua hooks file (default: the template's hooks key, or hooks.lua beside it)"},
  {long = "concurrency", arg = "N", help = "at most N tasks of a step at once"},
  {long = "qps", arg = "N", help = "API requests per second at most, client side (default 100; 0: no limit)"},
  {long = "burst", arg = "N", help = "API requests at once above --qps (default 200)"},
  {long = "timeout", arg = "DURATION", help = "per-task time limit (default 10m; 90s, 5m, 1h)"},
  {long = "settle", arg = "DURATION", help = "how long the end-of-run check waits for failed services to recover (default 30s)"},
  {long = "dry-run", help = "validate against the server (server-side dry run); deploy nothing"},
  {long = "resume", help = "skip tasks that succeeded with the same spec in the last run"},
  {long = "output", short = "o", arg = "text|json", help = "json: one JSON event per line on stdout"},
  {long = "logs", arg = "all|failed|none", help = "which job logs to show (default all)"},
  {long = "color", arg = "auto|always|never", help = "color the live view (default auto: on a terminal, unless NO_COLOR is set)"},
  {long = "sim", help = "start kubesim on a free loopback port for this run"},
  {long = "scenario", arg = "FILE", help = "kubesim scenario (with --sim)"},
  {long = "time-scale", arg = "F", help = "kubesim time scale (with --sim; 0.1 runs 10x faster)"},
  {long = "journal-dir", arg = "DIR", help = "where run journals are kept (default .moonship/runs beside the template)"},
  {long = "report", arg = "FILE.html", help = "after the run, write its HTML timeline report (as moonship report does)"},
}

return {
  usage = "deploy [TEMPLATE] -w WORKFLOW [OPTIONS]",
  summary = "Deploy a workflow of an application template.",
  options = OPTIONS,
  run = function(opts, args, out)
    local settings, err = deploy.settings_from_cli(opts, args)
    if not settings then
      out.error("%s", err)
      return EXIT.bad_input
    end
    local ok, result = out.run(deploy.run, settings)
    if not ok then return result end
    return result.exit_code
  end,
}
