-- moonship validate [TEMPLATE] [-w WORKFLOW]: loads and checks a template without deploying
-- anything; prints every warning and error as file:line:col and a one-line summary.
local template = require "moonship.model.template"
local EXIT = require "moonship.exit"
local O = require "moonship.cli.options"

local fmt = string.format

local M = {
  usage = "validate " .. O.TEMPLATE .. " [-w WORKFLOW] [OPTIONS]",
  summary = "Check a template (and a workflow) without deploying anything.",
  options = {
    O.workflow("also check that this workflow exists"), O.env, O.image, O.domain, O.namespace, O.context,
    O.kubeconfig, O.hooks,
  },
}

-- Loads the template for a command and prints its warnings and errors to stderr, by position.
-- Returns {model=, path=, errors=, warnings=}; or nil and a usage error (a bad option value);
-- or nil when no template was found or the kubeconfig named cannot be read (said on stderr).
-- The namespace follows deploy's rule (kubeconfig.default_namespace), reading the kubeconfig.
function M.load(opts, args, out)
  local images, ierr = template.parse_images(opts.image)
  if not images then return nil, ierr end
  local path, err = template.resolve(args[1])
  if not path then
    out.error("%s", err)
    return nil
  end
  local namespace, kerr = require("moonship.kube.kubeconfig").default_namespace(opts)
  if kerr and (opts.kubeconfig or opts.context) then
    out.error("%s", kerr)
    return nil
  end
  local model, errors, warnings = template.load(path, {
    env = opts.env, namespace = namespace, hooks = opts.hooks, images = images, domain = opts.domain,
  })
  if model then errors, warnings = {}, errors end
  warnings = warnings or {}
  local all = {}
  for _, m in ipairs(warnings) do all[#all + 1] = m end
  for _, m in ipairs(errors) do all[#all + 1] = m end
  -- by position within a file; messages of different files in the order they were found
  table.sort(all, function(a, b)
    if a.file ~= b.file then return a.seq < b.seq end
    if a.line ~= b.line then return (a.line or 0) < (b.line or 0) end
    if a.col ~= b.col then return (a.col or 0) < (b.col or 0) end
    return a.seq < b.seq
  end)
  for _, m in ipairs(all) do io.stderr:write(template.format_message(m), "\n") end
  return {model = model, path = path, errors = errors, warnings = warnings}
end

local function plural(n, word)
  return fmt("%d %s%s", n, word, n == 1 and "" or "s")
end

function M.run(opts, args, out)
  local loaded, uerr = M.load(opts, args, out)
  if not loaded then
    if uerr then return nil, uerr end
    return EXIT.bad_input
  end
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
  io.stdout:write(fmt("%s: ok (app '%s' in namespace %s; %s; %s)\n", loaded.path, model.app, model.namespace, what,
    plural(nwarn, "warning")))
  return EXIT.ok
end

return M
