-- moonship plan [TEMPLATE] -w WORKFLOW: the workflow's steps and tasks, background lanes, halt
-- points, and the predicted timeline (durations from the last run when there is one), as text,
-- Mermaid, Graphviz DOT or JSON.
local EXIT = require "moonship.exit"
local deploy = require "moonship.deploy"
local journal = require "moonship.journal"
local plan = require "moonship.plan"
local plan_text = require "moonship.render.plan_text"
local template = require "moonship.template"

local FORMATS = {text = true, json = true, mermaid = true, dot = true}

return {
  usage = "plan [TEMPLATE] -w WORKFLOW [--format text|mermaid|dot|json] [--ascii]",
  summary = "Show what a workflow will do, in what order, and how long it should take.",
  options = {
    {long = "workflow", short = "w", arg = "NAME", help = "the workflow to show (required)"},
    {long = "env", arg = "NAME", help = "environment id: ${env_id}, and the environment template of that name"},
    {long = "image", arg = "NAME=REF", many = true, help = "the image of service or job NAME (repeatable)"},
    {long = "domain", arg = "DOMAIN", help = "${domain} in hostnames (default: the template's domain key)"},
    {long = "hooks", arg = "FILE", help = "Lua hooks file (for custom task kinds)"},
    {long = "format", short = "f", arg = "text|mermaid|dot|json", help = "output format (default text)"},
    {long = "ascii", help = "text without Unicode box drawing (the default when the locale is not UTF-8)"},
    {long = "width", arg = "N", help = "text width in columns (default $COLUMNS, else 100)"},
    {long = "concurrency", arg = "N", help = "predict with at most N tasks of a step at once, as deploy --concurrency"},
  },
  run = function(opts, args, out)
    if not opts.workflow then return nil, "missing -w WORKFLOW" end
    local format = opts.format or "text"
    if not FORMATS[format] then return nil, "--format must be text, mermaid, dot or json" end
    local width = tonumber(opts.width or os.getenv("COLUMNS") or "") or 100
    local concurrency
    if opts.concurrency then
      concurrency = math.tointeger(tonumber(opts.concurrency))
      if not concurrency or concurrency < 1 then return nil, "--concurrency must be a positive integer" end
    end
    local images, ierr = template.parse_images(opts.image)
    if not images then return nil, ierr end
    -- A plan shows the workflow even when a deploy of it would still need an --image.
    local model, wf, _, warnings = deploy.load {template = args[1], workflow = opts.workflow,
                                                env = opts.env, hooks = opts.hooks, images = images,
                                                domain = opts.domain, for_plan = true}
    if not model then
      for _, msg in ipairs(wf) do io.stderr:write(msg, "\n") end
      return EXIT.bad_input
    end
    for _, w in ipairs(warnings) do io.stderr:write(w, "\n") end
    local dir = (model.dir or (model.file:match("^(.*)/[^/]*$") or ".")) .. "/.moonship/runs"
    local last = journal.load_last {app = model.app, workflow = wf.name, dir = dir, times_only = true}
    local schedule = plan.schedule(wf, plan.durations_from(last), {concurrency = concurrency})
    local ascii = opts.ascii or not plan_text.locale_is_utf8()
    io.stdout:write(plan[format](wf, schedule, {ascii = ascii, width = width, app = model.app,
                                                 from_run = last and last.run}))
    return EXIT.ok
  end,
}
