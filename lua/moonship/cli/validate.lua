-- moonship validate [TEMPLATE] [-w WORKFLOW]: loads and checks a template without deploying
-- anything; prints every warning and error as file:line:col and a one-line summary.
local template = require "moonship.template"
local EXIT = require "moonship.exit"

local fmt = string.format

local M = {
  usage = "validate [TEMPLATE] [-w WORKFLOW] [--env NAME] [--hooks FILE] [--image NAME=REF]... [--domain DOMAIN]",
  summary = "Check a template (and a workflow) without deploying anything.",
  options = {
    {long = "workflow", short = "w", arg = "WORKFLOW", help = "also check that this workflow exists"},
    {long = "env", short = "e", arg = "NAME", help = "environment name (${env_id}; the environment template of that name)"},
    {long = "namespace", short = "n", arg = "NAMESPACE", help = "namespace (${namespace})"},
    {long = "hooks", arg = "FILE", help = "Lua hooks file (custom task kinds)"},
    {long = "image", arg = "NAME=REF", many = true, help = "the image of service or job NAME (repeatable)"},
    {long = "domain", arg = "DOMAIN", help = "${domain} in hostnames (default: the template's domain key)"},
  },
}

-- The template path from the arguments: a file, a directory to search, or the current one.
function M.template_path(args)
  local given = args[1]
  if given then
    local f = io.open(given .. "/.", "rb")
    if f then
      f:close()
      return template.find(given)
    end
    return given
  end
  return template.find(".")
end

-- Loads the template for a command and prints its warnings and errors to stderr, by position.
-- Returns {model=, path=, errors=, warnings=}, or nil when no template was found or an option
-- is wrong (said on stderr).
function M.load(opts, args, out)
  local images, ierr = template.parse_images(opts.image)
  if not images then
    out.error("%s", ierr)
    return nil
  end
  local path, err = M.template_path(args)
  if not path then
    out.error("%s", err)
    return nil
  end
  local model, errors, warnings = template.load(path, {
    env = opts.env, namespace = opts.namespace, hooks = opts.hooks, images = images, domain = opts.domain,
  })
  if model then errors, warnings = {}, errors end
  warnings = warnings or {}
  local all = {}
  for _, m in ipairs(warnings) do all[#all + 1] = m end
  for _, m in ipairs(errors) do all[#all + 1] = m end
  table.sort(all, function(a, b)
    if a.file ~= b.file then return a.seq < b.seq end
    if a.line ~= b.line then return a.line < b.line end
    if a.col ~= b.col then return a.col < b.col end
    return a.seq < b.seq
  end)
  for _, m in ipairs(all) do io.stderr:write(template.format_message(m), "\n") end
  return {model = model, path = path, errors = errors, warnings = warnings}
end

local function plural(n, word)
  return fmt("%d %s%s", n, word, n == 1 and "" or "s")
end

function M.run(opts, args, out)
  local loaded = M.load(opts, args, out)
  if not loaded then return EXIT.bad_input end
  local nwarn = #loaded.warnings
  if not loaded.model then
    io.stderr:write(fmt("%s: invalid: %s, %s\n", loaded.path, plural(#loaded.errors, "error"),
      plural(nwarn, "warning")))
    return EXIT.bad_input
  end
  local model = loaded.model
  local what
  if opts.workflow then
    local wf, err = template.workflow(model, opts.workflow)
    if not wf then
      io.stderr:write(fmt("%s: error: %s\n", loaded.path, err))
      return EXIT.bad_input
    end
    local ntasks = 0
    for _, step in ipairs(wf.steps) do ntasks = ntasks + #step.tasks end
    what = fmt("workflow '%s': %s, %s", wf.name, plural(#wf.steps, "step"), plural(ntasks, "task"))
  else
    what = fmt("%s, %s, %s", plural(#model.services, "service"), plural(#model.jobs, "job"),
      plural(#model.workflows, "workflow"))
  end
  io.stdout:write(fmt("%s: ok (app '%s'; %s; %s)\n", loaded.path, model.app, what,
    plural(nwarn, "warning")))
  return EXIT.ok
end

return M
