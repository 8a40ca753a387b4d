-- moonship rollback [TEMPLATE] [-w WORKFLOW] [--to RUN_ID] ...: re-apply the objects of the last
-- good run before the current one (or of run RUN_ID), as a run of the engine.
local rollback = require "moonship.run.rollback"

local O = require "moonship.cli.options"

local OPTIONS = {
  O.workflow("only the runs of this workflow (default: every workflow's)"),
  {long = "to", arg = "RUN_ID", help = "the run to go back to (a run id or a revision moonship history lists; "
    .. "default: the last run before the current one that succeeded)"},
  O.env, O.namespace, O.context, O.kubeconfig, O.hooks, O.concurrency, O.qps, O.burst, O.timeout, O.settle,
  O.dry_run, O.output, O.logs, O.color, O.journal_dir, O.report, O.history,
}

return {
  usage = "rollback " .. O.TEMPLATE .. " [-w WORKFLOW] [--to RUN_ID] [OPTIONS]",
  summary = "Re-apply what the last good run (or run RUN_ID) applied, as a run.",
  options = OPTIONS,
  run = function(opts, args, out)
    local settings, err = require("moonship.cli.deploy").settings(opts, args, false)
    if not settings then return nil, err end
    settings.to = opts.to
    local ok, result = out.run(rollback.run, settings)
    if not ok then return result end
    return result.exit_code
  end,
}
