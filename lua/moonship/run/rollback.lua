-- The commands over the run history (moonship.run.history), with deploy's steps
-- (moonship.run.deploy): `moonship history` lists the recorded runs of an app and environment;
-- `moonship rollback` re-applies the record of the last good run before the current one (or
-- the one --to names) through the engine, as steps and tasks of kind "rollback", journalled,
-- viewed, reported and recorded as a deploy is.
local deploy = require "moonship.run.deploy"
local engine = require "moonship.run.engine"
local history = require "moonship.run.history"
local EXIT = require "moonship.exit"

local fmt = string.format

local M = {}

-- The template (for the app, environment and namespace), a client, and the records, newest
-- first (s.workflow's only, when given). Returns model, hooks, client, summaries, or nil and
-- the result to return {exit_code = 2, errors=}. A namespace that does not exist is not made:
-- it has no records.
local function open(s, stderr)
  local model, failed, hooks = deploy.prepare(s, stderr, true)
  if not model then return nil, failed end
  local client, state = deploy.connect(s, model, stderr, true)
  if not client then return nil, state end
  if state == "missing" then return model, hooks, client, {} end
  local summaries, err = history.list(client, {namespace = model.namespace, app = model.app, env = model.env_id,
                                               workflow = s.workflow})
  if not summaries then
    client:close()
    local msg = "cannot read the run history: " .. tostring(err)
    stderr("moonship: " .. msg .. "\n")
    return nil, {exit_code = EXIT.bad_input, errors = {msg}}
  end
  return model, hooks, client, summaries
end

-- Which records a question was about, for messages.
local function whose(s, model)
  return fmt("app %s, environment %s%s, namespace %s", model.app, model.env_id,
    s.workflow and (", workflow " .. s.workflow) or "", model.namespace)
end

-- moonship history: {exit_code = 0, runs = summaries (newest first), about = text} or the
-- result of bad input.
function M.list(s)
  local _, stderr = deploy.outputs(s)
  local model, failed, client, summaries = open(s, stderr)
  if not model then return failed end
  client:close()
  return {exit_code = EXIT.ok, runs = summaries, about = whose(s, model)}
end

-- moonship rollback: the engine's result (exit_code as a deploy's), or {exit_code = 2,
-- errors=} when nothing can be rolled back to (said on stderr).
function M.run(s)
  local stdout, stderr = deploy.outputs(s)
  local model, hooks, client, summaries = open(s, stderr)
  if not model then return hooks end
  local function cannot(why)
    client:close()
    local msg = fmt("rollback: %s (%s; moonship history lists the runs)", why, whose(s, model))
    stderr("moonship: " .. msg .. "\n")
    return {exit_code = EXIT.bad_input, errors = {msg}}
  end
  local target, why = history.target(summaries, {to = s.to})
  if not target then return cannot(why) end
  local record, err = history.fetch(client, model.namespace, target)
  if not record then return cannot(fmt("cannot read the record of run %s: %s", target.run, tostring(err))) end
  local journal = deploy.open_journal(s, model, record.workflow, stdout, stderr)
  local result = engine.run {
    model = model, workflow = history.rollback_workflow(record), client = client, hooks = hooks,
    journal = journal, namespace = model.namespace, env = s.env, concurrency = s.concurrency,
    timeout = s.timeout, settle = s.settle, dry_run = s.dry_run, logs = s.logs,
    record = deploy.recording(s, model),
  }
  return deploy.finish(s, result, client, journal, stderr)
end

return M
