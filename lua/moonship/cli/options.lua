-- The options that mean the same in every command that takes them, described once: deploy,
-- diff, rollback, history, plan, validate and render pick theirs from here, so --help, README,
-- the man page and the completions (tests/e2e/man_spec.lua compares them) have one text per option.
local M = {}

-- -w: what the workflow is for differs by command; its metavar does not.
function M.workflow(help) return {long = "workflow", short = "w", arg = "WORKFLOW", help = help} end

M.env = {long = "env", short = "e", arg = "NAME",
         help = "environment id: ${env_id}, and the environment template of that name"}
M.image = {long = "image", arg = "NAME=REF", many = true,
           help = "the image of service or job NAME (repeatable), for images built elsewhere"}
M.domain = {long = "domain", arg = "DOMAIN", help = "${domain} in hostnames (default: the template's domain key)"}
M.namespace = {long = "namespace", short = "n", arg = "NS",
               help = "namespace (default: <app>-<env> with --env, else the kubeconfig context's, else default)"}
M.context = {long = "context", arg = "NAME", help = "kubeconfig context (default: the current context)"}
M.kubeconfig = {long = "kubeconfig", arg = "PATH", help = "kubeconfig file (default: $KUBECONFIG, else ~/.kube/config)"}
M.hooks = {long = "hooks", arg = "FILE",
           help = "Lua hooks file (default: the template's hooks key, else hooks.lua beside the template)"}
M.concurrency = {long = "concurrency", arg = "N", help = "at most N tasks of a step at once"}
M.color = {long = "color", arg = "auto|always|never",
           help = "color the output (default auto: on a terminal, unless NO_COLOR is set)"}
M.sim = {long = "sim", help = "start kubesim on a free loopback port for this run"}
M.scenario = {long = "scenario", arg = "FILE", help = "kubesim scenario (with --sim)"}
M.journal_dir = {long = "journal-dir", arg = "DIR",
                 help = "where run journals are kept (default .moonship/runs beside the template)"}

-- What deploy and rollback share: how a run talks to the API, waits, and shows itself.
M.qps = {long = "qps", arg = "N", help = "API requests per second at most, client side (default 100; 0: no limit)"}
M.burst = {long = "burst", arg = "N", help = "API requests at once above --qps (default 200)"}
M.timeout = {long = "timeout", arg = "DURATION", help = "per-task time limit (default 10m; 90s, 5m, 1h)"}
M.settle = {long = "settle", arg = "DURATION",
            help = "how long the end-of-run check waits for failed services to recover (default 30s)"}
M.dry_run = {long = "dry-run", help = "validate against the server (server-side dry run); deploy nothing"}
M.output = {long = "output", short = "o", arg = "text|json", help = "json: one JSON event per line on stdout"}
M.logs = {long = "logs", arg = "all|failed|none", help = "which job logs to show (default all)"}
M.report = {long = "report", arg = "FILE.html",
            help = "after the run, write its HTML timeline report (as moonship report does)"}
M.history = {long = "history", arg = "N",
             help = "keep the records of the last N runs of the app and environment in the namespace, for "
               .. "rollback and history (default 10; 0: keep all)"}

-- Pruning for one run, whatever the template's prune: says (deploy, diff).
M.no_prune = {long = "no-prune", help = "do not prune in this run, even when the template says prune: true"}

-- The usage line of the commands that read a template.
M.TEMPLATE = "[TEMPLATE | DIR]"

return M
