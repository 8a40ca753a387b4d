-- moonship render [TEMPLATE] [-w WORKFLOW]: the Kubernetes objects a deploy would apply, as a
-- YAML stream; nothing is deployed.
local yaml = require "moonship.yaml"
local template = require "moonship.model.template"
local manifests = require "moonship.model.manifests"
local validate = require "moonship.cli.validate"
local EXIT = require "moonship.exit"
local O = require "moonship.cli.options"

-- Jobs are named <job>-<short run id>; a render has no run, so its names use this id.
local RENDER_RUN_ID = "render"

return {
  usage = "render " .. O.TEMPLATE .. " [-w WORKFLOW] [OPTIONS]",
  summary = "Print the Kubernetes objects of a template (or of a workflow, in its order) as YAML.",
  options = {
    O.workflow("only this workflow's tasks, in its order"), O.env, O.image, O.domain, O.namespace, O.context,
    O.kubeconfig, O.hooks,
    {long = "run-id", arg = "ID", help = "run id for Job names and annotations (default: render)"},
  },
  run = function(opts, args, out)
    local loaded, uerr = validate.load(opts, args, out)
    if not loaded then
      if uerr then return nil, uerr end
      return EXIT.bad_input
    end
    if not loaded.model then return EXIT.bad_input end
    local model = loaded.model
    local mopts = {run_id = opts["run-id"] or RENDER_RUN_ID, namespace = model.namespace}
    local wf
    if opts.workflow then
      local err
      wf, err = template.workflow(model, opts.workflow)
      if not wf then
        io.stderr:write(string.format("%s: error: %s\n", loaded.path, err))
        return EXIT.bad_input
      end
    end
    -- An object without its image is no object: what stops a deploy stops a render.
    local blocked = template.undeployable(model, wf or template.every_task(model))
    if #blocked > 0 then
      for _, b in ipairs(blocked) do io.stderr:write(b.text, "\n") end
      return EXIT.bad_input
    end
    local objects = wf and manifests.for_workflow(model, wf, mopts) or manifests.all(model, mopts)
    for _, obj in ipairs(objects) do
      io.stdout:write("---\n", yaml.dump(obj))
    end
    return EXIT.ok
  end,
}
