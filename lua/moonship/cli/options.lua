-- The options that mean the same in every command that takes them, described once: deploy,
-- diff, plan, validate and render pick theirs from here, so --help, README, the man page and the
-- completions (tests/e2e/man_spec.lua compares them) have one text per option.
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

-- The usage line of the commands that read a template.
M.TEMPLATE = "[TEMPLATE | DIR]"

return M
