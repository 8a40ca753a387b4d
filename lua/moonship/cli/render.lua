-- moonship render [TEMPLATE] [-w WORKFLOW]: the Kubernetes objects a deploy would apply, as a
-- YAML stream; nothing is deployed.
local yaml = require "moonship.yaml"
local template = require "moonship.template"
local manifests = require "moonship.manifests"
local validate = require "moonship.cli.validate"
local EXIT = require "moonship.exit"

-- Jobs are named <job>-<short run id>; a render has no run, so its names use this id.
local RENDER_RUN_ID = "render"

return {
  usage = "render [TEMPLATE] [-w WORKFLOW] [--env NAME] [-n NAMESPACE] [--hooks FILE] [--run-id ID] [--image NAME=REF]... [--domain DOMAIN]",
  summary = "Print the Kubernetes objects of a template (or of a workflow, in its order) as YAML.",
  options = {
    {long = "workflow", short = "w", arg = "WORKFLOW", help = "only this workflow's tasks, in its order"},
    {long = "env", short = "e", arg = "NAME", help = "environment name (${env_id})"},
    {long = "namespace", short = "n", arg = "NAMESPACE", help = "namespace of the objects"},
    {long = "hooks", arg = "FILE", help = "Lua hooks file (custom task kinds)"},
    {long = "run-id", arg = "ID", help = "run id for Job names and annotations (default: render)"},
    {long = "image", arg = "NAME=REF", many = true, help = "the image of service or job NAME (repeatable)"},
    {long = "domain", arg = "DOMAIN", help = "${domain} in hostnames (default: the template's domain key)"},
  },
  run = function(opts, args, out)
    local loaded = validate.load(opts, args, out)
    if not loaded or not loaded.model then return EXIT.bad_input end
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
