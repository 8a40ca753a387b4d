-- moonship history [TEMPLATE] [-w WORKFLOW] [-o text|json]: the recorded runs of an app and
-- environment, newest first, as `helm history` lists a release's revisions.
local json = require "moonship.json"
local rollback = require "moonship.run.rollback"
local EXIT = require "moonship.exit"

local O = require "moonship.cli.options"

local fmt = string.format

local COLUMNS = {"REVISION", "RUN", "WORKFLOW", "STATE", "FINISHED", "TEMPLATE", "DESCRIPTION"}

-- "2026-01-02T10:48:02Z" as "2026-01-02 10:48:02Z" (a table column reads it better).
local function when(stamp)
  return stamp and (stamp:gsub("T", " ")) or "-"
end

-- The runs as a table of aligned columns.
local function table_text(runs)
  local rows = {COLUMNS}
  for _, r in ipairs(runs) do
    rows[#rows + 1] = {tostring(r.revision), r.run or "-", r.workflow or "-", r.state or "-", when(r.finished_at),
                       r.template_hash or "-", r.rollback_of and ("rollback to " .. r.rollback_of) or ""}
  end
  local widths = {}
  for _, row in ipairs(rows) do
    for c, cell in ipairs(row) do widths[c] = math.max(widths[c] or 0, #cell) end
  end
  local lines = {}
  for i, row in ipairs(rows) do
    local cells = {}
    for c, cell in ipairs(row) do cells[c] = c < #row and (cell .. string.rep(" ", widths[c] - #cell)) or cell end
    lines[i] = (table.concat(cells, "  "):gsub("%s+$", ""))
  end
  return table.concat(lines, "\n") .. "\n"
end

return {
  usage = "history " .. O.TEMPLATE .. " [-w WORKFLOW] [OPTIONS]",
  summary = "List the recorded runs of the app and environment, newest first.",
  options = {
    O.workflow("only the runs of this workflow"), O.env, O.namespace, O.context, O.kubeconfig, O.hooks,
    {long = "output", short = "o", arg = "text|json", help = "json: the runs as a JSON array on stdout"},
  },
  run = function(opts, args, out)
    if #args > 1 then return nil, "more than one template given: " .. table.concat(args, " ") end
    local output = opts.output or "text"
    if output ~= "text" and output ~= "json" then return nil, "--output must be text or json" end
    local settings = {template = args[1], workflow = opts.workflow, env = opts.env, namespace = opts.namespace,
                      context = opts.context, kubeconfig = opts.kubeconfig, hooks = opts.hooks}
    local ok, result = out.run(rollback.list, settings)
    if not ok then return result end
    if result.exit_code ~= EXIT.ok then return result.exit_code end
    if output == "json" then
      io.stdout:write(json.encode(json.array(result.runs), {sort_keys = true, indent = 2}), "\n")
    elseif #result.runs == 0 then
      io.stderr:write(fmt("moonship: no runs are recorded (%s)\n", result.about))
    else
      io.stdout:write(table_text(result.runs))
    end
    return EXIT.ok
  end,
}
