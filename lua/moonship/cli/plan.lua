-- moonship plan [TEMPLATE] -w WORKFLOW: the workflow's steps and tasks, background lanes, halt
-- points, and the predicted timeline (durations from the last run when there is one), as text,
-- Mermaid, Graphviz DOT or JSON. With --diff, each task is also compared with the cluster, as
-- moonship diff does, and marked new, changed or unchanged.
local EXIT = require "moonship.exit"
local deploy = require "moonship.run.deploy"
local journal = require "moonship.run.journal"
local plan = require "moonship.model.plan"
local plan_text = require "moonship.output.plan_text"
local template = require "moonship.model.template"
local O = require "moonship.cli.options"

local FORMATS = {text = true, json = true, mermaid = true, dot = true}

return {
  usage = "plan " .. O.TEMPLATE .. " -w WORKFLOW [OPTIONS]",
  summary = "Show what a workflow will do, in what order, and how long it should take.",
  options = {
    O.workflow("the workflow to show (required)"), O.env, O.image, O.domain, O.hooks,
    {long = "diff", help = "compare each task's objects with the cluster (as moonship diff does) and mark it "
      .. "new, changed or unchanged (text and json)"},
    O.namespace, O.context, O.kubeconfig,
    {long = "format", short = "f", arg = "text|mermaid|dot|json", help = "output format (default text)"},
    {long = "ascii", help = "text without Unicode box drawing (the default when the locale is not UTF-8)"},
    {long = "width", arg = "N", help = "text width in columns, at least 40 (default $COLUMNS, else 100)"},
    {long = "concurrency", arg = "N", help = "predict with at most N tasks of a step at once, as deploy --concurrency"},
    O.journal_dir,
  },
  run = function(opts, args, out)
    if not opts.workflow then return nil, "missing -w WORKFLOW" end
    local format = opts.format or "text"
    if not FORMATS[format] then return nil, "--format must be text, mermaid, dot or json" end
    if opts.diff and format ~= "text" and format ~= "json" then return nil, "--diff marks the text and json plans only" end
    -- --width is honoured, down to the narrowest the text plan can be drawn in; a narrower
    -- terminal ($COLUMNS) gets that narrowest
    local width = math.tointeger(tonumber(opts.width or os.getenv("COLUMNS") or "")) or 100
    if opts.width then
      width = math.tointeger(tonumber(opts.width))
      if not width or width < plan_text.MIN_WIDTH then
        return nil, ("--width must be a number of columns, at least %d (the narrowest text plan)"):format(plan_text.MIN_WIDTH)
      end
    end
    local concurrency
    if opts.concurrency then
      concurrency = math.tointeger(tonumber(opts.concurrency))
      if not concurrency or concurrency < 1 then return nil, "--concurrency must be a positive integer" end
    end
    local images, ierr = template.parse_images(opts.image)
    if not images then return nil, ierr end
    -- A plan shows the workflow even when a deploy of it would still need an --image (its
    -- diff does not: the objects are compared).
    local settings = {template = args[1], workflow = opts.workflow, env = opts.env, hooks = opts.hooks,
                      images = images, domain = opts.domain, for_plan = not opts.diff,
                      namespace = opts.namespace, context = opts.context, kubeconfig = opts.kubeconfig,
                      dry_run = true}
    local model, wf, hooks, warnings = deploy.load(settings)
    if not model then
      for _, msg in ipairs(wf) do io.stderr:write(msg, "\n") end
      return EXIT.bad_input
    end
    for _, w in ipairs(warnings) do io.stderr:write(w, "\n") end
    local marks
    if opts.diff then
      local ok, result, err = out.run(function()
        local conn, oerr = deploy.open(settings, model)
        if not conn then return nil, oerr end
        local _ <close> = conn
        local r = require("moonship.run.diff").compare(conn.client, model, wf, hooks,
                                                        {namespace_missing = conn.state == "missing",
                                                         env = settings.env})
        conn.client:close()
        return r
      end)
      if not ok then return result end
      if not result then
        out.error("%s", err)
        return EXIT.bad_input
      end
      marks = {}
      for _, te in ipairs(result.tasks) do marks[te.task] = te.state end
      -- an object the server refused is an error of the plan, as of moonship diff
      local failed = false
      for _, e in ipairs(result.objects) do
        if e.action == "error" then
          out.error("%s %s/%s: %s", e.task or "", e.kind:lower(), e.name, e.message)
          failed = true
        end
      end
      if failed then return EXIT.bad_input end
    end
    local dir = opts["journal-dir"] or journal.default_dir(model)
    local last = journal.load_last {app = model.app, workflow = wf.name, dir = dir, times_only = true}
    local schedule = plan.schedule(wf, plan.durations_from(last), {concurrency = concurrency})
    if marks then plan.mark(schedule, marks) end
    local ascii = opts.ascii or not plan_text.locale_is_utf8()
    io.stdout:write(plan[format](wf, schedule, {ascii = ascii, width = width, app = model.app,
                                                 durations_from = last and {run = last.run, time_scale = last.time_scale}}))
    return EXIT.ok
  end,
}
