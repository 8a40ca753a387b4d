-- moonship diff [TEMPLATE] -w WORKFLOW ...: what a deploy of the workflow would change, object
-- by object, against the cluster (moonship.run.diff). Exits as kubectl diff: 0 no differences,
-- 1 differences, 2 bad input or an error.
local diff = require "moonship.run.diff"
local O = require "moonship.cli.options"

local OPTIONS = {
  O.workflow("the workflow whose objects to compare (required)"), O.env, O.image, O.domain, O.namespace,
  O.context, O.kubeconfig, O.hooks,
  {long = "output", short = "o", arg = "text|json", help = "json: one JSON document on stdout"},
  {long = "prune", help = "also list what deploy --prune would delete (on by default when the template says prune: true)"},
  O.no_prune,
  O.color, O.sim, O.scenario,
}

return {
  usage = "diff " .. O.TEMPLATE .. " -w WORKFLOW [OPTIONS]",
  summary = "Show what a deploy of a workflow would change in the cluster, object by object.",
  options = OPTIONS,
  run = function(opts, args, out)
    local settings, err = require("moonship.cli.deploy").settings(opts, args, true)
    if not settings then return nil, err end
    local ok, result = out.run(diff.run, settings)
    if not ok then return result end
    return result.exit_code
  end,
}
