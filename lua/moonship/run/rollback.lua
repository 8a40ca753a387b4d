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

-- The template (for the app, environment and namespace), a connection (deploy.open: close it),
-- and the records, newest first (s.workflow's only, when given). Returns model, hooks, conn,
-- summaries, or nil and the result to return {exit_code = 2, errors=}. A namespace that does not
-- exist is not made: it has no records.
local function open(s, stderr)
  local model, failed, hooks = deploy.prepare(s, stderr, true)
  if not model then return nil, failed end
  local conn, oerr = deploy.open(s, model, true)
  if not conn then return nil, deploy.refused(stderr, oerr) end
  if conn.state == "missing" then return model, hooks, conn, {} end
  local summaries, err = history.list(conn.client, {namespace = model.namespace, app = model.app,
                                                    env = model.env_id, workflow = s.workflow})
  if not summaries then
    conn.client:close()
    conn:__close()
    return nil, deploy.refused(stderr, "cannot read the run history: " .. tostring(err))
  end
  return model, hooks, conn, summaries
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
  local model, failed, conn, summaries = open(s, stderr)
  if not model then return failed end
  local _ <close> = conn
  conn.client:close()
  return {exit_code = EXIT.ok, runs = summaries, about = whose(s, model)}
end

-- moonship rollback: the engine's result (exit_code as a deploy's), or {exit_code = 2,
-- errors=} when nothing can be rolled back to (said on stderr).
function M.run(s)
  local stdout, stderr = deploy.outputs(s)
  local model, hooks, conn, summaries = open(s, stderr)
  if not model then return hooks end
  local _ <close> = conn
  local client = conn.client
  local function cannot(why)
    client:close()
    return deploy.refused(stderr, fmt("rollback: %s (%s; moonship history lists the runs)", why, whose(s, model)))
  end
  local record, why = history.rollback_record(client, model.namespace, summaries, {to = s.to})
  if not record then return cannot(why) end
  local set, serr = deploy.applyset(s, client, model)
  if not set then return cannot(serr) end
  local journal, jerr = deploy.open_journal(s, model, record.workflow, stdout, stderr)
  if not journal then return cannot(jerr) end
  local result = engine.run {
    model = model, workflow = history.rollback_workflow(record), client = client, hooks = hooks,
    journal = journal, namespace = model.namespace, env = s.env, concurrency = s.concurrency,
    timeout = s.timeout, settle = s.settle, dry_run = s.dry_run, logs = s.logs,
    record = deploy.recording(s, model), applyset = set,
  }
  return deploy.finish(s, result, client, journal, stderr)
end

return M
