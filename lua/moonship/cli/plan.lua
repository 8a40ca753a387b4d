-- moonship plan [TEMPLATE] -w WORKFLOW: the workflow's steps and tasks, background lanes, halt
-- points, and the predicted timeline (durations from the last run when there is one).
local EXIT = require "moonship.exit"
local deploy = require "moonship.deploy"
local journal = require "moonship.journal"
local plan = require "moonship.plan"

return {
  usage = "plan [TEMPLATE] -w WORKFLOW [--format text|json]",
  summary = "Show what a workflow will do, in what order, and how long it should take.",
  options = {
    {long = "workflow", short = "w", arg = "NAME", help = "the workflow to show (required)"},
    {long = "env", arg = "NAME", help = "environment id: ${env_id} in the template"},
    {long = "hooks", arg = "FILE", help = "Lua hooks file (for custom task kinds)"},
    {long = "format", short = "f", arg = "text|json", help = "output format (default text)"},
  },
  run = function(opts, args, out)
    if not opts.workflow then return nil, "missing -w WORKFLOW" end
    local format = opts.format or "text"
    if not plan[format] then return nil, "--format must be text or json" end
    local model, wf, _, warnings = deploy.load {template = args[1], workflow = opts.workflow,
                                                env = opts.env, hooks = opts.hooks}
    if not model then
      for _, msg in ipairs(wf) do io.stderr:write(msg, "\n") end
      return EXIT.bad_input
    end
    for _, w in ipairs(warnings) do io.stderr:write(tostring(w.text or w), "\n") end
    local dir = (model.dir or (model.file:match("^(.*)/[^/]*$") or ".")) .. "/.moonship/runs"
    local last = journal.load_last {app = model.app, workflow = wf.name, dir = dir}
    local schedule = plan.schedule(wf, plan.durations_from(last))
    io.stdout:write(plan[format](wf, schedule))
    return EXIT.ok
  end,
}
