-- The run history: every finished run (not a dry run) is recorded in a Secret of its namespace,
-- as Helm keeps its releases: `moonship.run.v1.<app>.<env>.<revision>`, type
-- moonship.dev/run.v1, labelled with the app, environment, workflow, state, revision and run,
-- holding the gzip of a JSON document with what the run applied, task by task, rendered (the
-- objects as sent, not as the server stored them). A Secret because env values may hold
-- secrets. The newest `keep` records of an app and environment are kept (`--history N`).
-- `moonship history` lists them; `moonship rollback` (and on_error's "rollback") re-applies one
-- through the engine, as the steps and tasks of rollback_workflow.
--
-- The record (version 1):
--   {version = 1, run, revision, app, env, namespace, workflow, state, template_hash,
--    started_at, finished_at, rollback_of (the run a rollback went back to), reason,
--    steps = {{step, background, halt_on_error, timeout, max_parallel,
--              tasks = {{id, kind, name, state, halt_on_error, timeout, spec_hash, objects}}}}}
local json = require "moonship.json"
local codec = require("moonship.core").codec

local fmt = string.format

local M = {}

M.TYPE = "moonship.dev/run.v1"
M.KEY = "run.json.gz"           -- the data key of the record
M.DEFAULT_KEEP = 10
M.MAX_BYTES = 64 * 1024 * 1024  -- a record decompresses to at most this (a Secret holds 1 MiB)
M.VERSION = 1

M.LABELS = {
  app = "moonship.dev/app", env = "moonship.dev/env", workflow = "moonship.dev/workflow",
  state = "moonship.dev/state", revision = "moonship.dev/revision", run = "moonship.dev/run",
}
M.ANNOTATIONS = {
  workflow = "moonship.dev/workflow", template_hash = "moonship.dev/template-hash",
  started_at = "moonship.dev/started-at", finished_at = "moonship.dev/finished-at",
  rollback_of = "moonship.dev/rollback-of",
}

-- A part of a DNS subdomain: lowercase letters, digits and '-', starting and ending with a
-- letter or digit, at most `max` characters.
local function dns_part(text, max)
  local s = tostring(text):lower():gsub("[^a-z0-9%-]", "-"):sub(1, max)
  s = s:gsub("^%-+", ""):gsub("%-+$", "")
  return s ~= "" and s or "x"
end

-- A label value: at most 63 of [A-Za-z0-9_.-], starting and ending with a letter or digit.
local function label_value(text)
  local s = tostring(text):gsub("[^%w_%.%-]", "-"):sub(1, 63)
  s = s:gsub("^[^%w]+", ""):gsub("[^%w]+$", "")
  return s
end

-- The Secret of revision n: moonship.run.v1.<app>.<env>.<n> (at most 253 characters).
function M.secret_name(app, env, revision)
  return fmt("moonship.run.v1.%s.%s.%d", dns_part(app, 63), dns_part(env, 63), revision)
end

-- ---- the record as bytes ------------------------------------------------------------------

-- record -> the gzip of its JSON
function M.encode(record)
  return codec.gzip(json.encode(record, {sort_keys = true}))
end

-- bytes -> record | nil, message
function M.decode(bytes)
  local text, err = codec.gunzip(bytes, M.MAX_BYTES)
  if not text then return nil, err end
  local record, jerr = json.decode(text)
  if record == nil then return nil, "the record is not JSON: " .. tostring(jerr) end
  if type(record) ~= "table" or type(record.steps) ~= "table" or type(record.run) ~= "string" then
    return nil, "not a run record (no run id or steps)"
  end
  if record.version ~= M.VERSION then
    return nil, fmt("a run record of version %s (this moonship reads version %d)", tostring(record.version), M.VERSION)
  end
  return record
end

-- The Secret that holds a record.
function M.secret(record)
  local L, A = M.LABELS, M.ANNOTATIONS
  return {
    apiVersion = "v1", kind = "Secret", type = M.TYPE, immutable = true,
    metadata = {
      name = M.secret_name(record.app, record.env, record.revision), namespace = record.namespace,
      labels = {
        [L.app] = label_value(record.app), [L.env] = label_value(record.env),
        [L.workflow] = label_value(record.workflow), [L.state] = record.state,
        [L.revision] = tostring(record.revision), [L.run] = label_value(record.run),
        ["app.kubernetes.io/managed-by"] = "moonship",
      },
      annotations = {
        [A.workflow] = record.workflow, [A.template_hash] = record.template_hash,
        [A.started_at] = record.started_at, [A.finished_at] = record.finished_at,
        [A.rollback_of] = record.rollback_of,
      },
    },
    data = {[M.KEY] = codec.base64_encode(M.encode(record))},
  }
end

-- The record a Secret holds, or nil and why.
function M.from_secret(secret)
  local name = secret.metadata and secret.metadata.name or "?"
  local b64 = secret.data and secret.data[M.KEY]
  if type(b64) ~= "string" then return nil, fmt("secret/%s: no %s in its data", name, M.KEY) end
  local bytes = codec.base64_decode(b64)
  if not bytes then return nil, fmt("secret/%s: its %s is not base64", name, M.KEY) end
  local record, err = M.decode(bytes)
  if not record then return nil, fmt("secret/%s: %s", name, err) end
  return record
end

-- What the labels and annotations of a record's Secret say (no need to decode its data):
-- {revision, run, workflow, state, started_at, finished_at, template_hash, rollback_of, secret}
function M.summary(secret)
  local md = secret.metadata or {}
  local labels, ann = md.labels or {}, md.annotations or {}
  local L, A = M.LABELS, M.ANNOTATIONS
  return {
    revision = math.tointeger(tonumber(labels[L.revision] or "")), run = labels[L.run],
    workflow = ann[A.workflow] or labels[L.workflow], state = labels[L.state],
    started_at = ann[A.started_at], finished_at = ann[A.finished_at], template_hash = ann[A.template_hash],
    rollback_of = ann[A.rollback_of], secret = md.name,
  }
end

-- ---- the records in the cluster -------------------------------------------------------------

-- history.list(client, {namespace=, app=, env=, workflow=}) -> summaries, newest first (only
-- the workflow's when given) | nil, message, code
function M.list(client, q)
  local L = M.LABELS
  local selector = fmt("%s=%s,%s=%s", L.app, label_value(q.app), L.env, label_value(q.env))
  local list, err, code = client:list("v1", "Secret", {namespace = q.namespace, label_selector = selector,
                                                       drop = {"data", "metadata.managedFields"}})
  if not list then return nil, err, code end
  local out = {}
  for _, secret in ipairs(list.items) do
    local s = M.summary(secret)
    if secret.type == M.TYPE and s.revision and (q.workflow == nil or s.workflow == q.workflow) then
      out[#out + 1] = s
    end
  end
  table.sort(out, function(a, b) return a.revision > b.revision end)
  return out
end

-- history.fetch(client, namespace, summary) -> record | nil, message
function M.fetch(client, namespace, summary)
  local secret, err = client:get("v1", "Secret", summary.secret, namespace)
  if not secret then return nil, err end
  return M.from_secret(secret)
end

-- Creates attempts at most this many revisions in a row when another run takes the same one.
local CREATE_TRIES = 5

-- history.write(client, record, {keep=}) -> summary of the new record, prune problem (a
-- message, or nil) | nil, message. Gives the record the next revision of its app and
-- environment (a create, so two runs never share one), then deletes the oldest records beyond
-- `keep` (0: keep every one).
function M.write(client, record, opts)
  local keep = opts and opts.keep or M.DEFAULT_KEEP
  local q = {namespace = record.namespace, app = record.app, env = record.env}
  local path = assert(client:path("v1", "Secret", nil, record.namespace))
  local existing, err
  for _ = 1, CREATE_TRIES do
    existing, err = M.list(client, q)
    if not existing then return nil, "list the run records: " .. tostring(err) end
    record.revision = (existing[1] and existing[1].revision or 0) + 1
    local secret = M.secret(record)
    local resp, cerr, code = client:request("POST", path, secret)
    if resp then
      local mine = M.summary(secret)
      table.insert(existing, 1, mine)
      return mine, M.prune(client, record.namespace, existing, keep)
    end
    if code ~= "conflict" then return nil, fmt("create secret/%s: %s", secret.metadata.name, tostring(cerr)) end
    err = cerr
  end
  return nil, fmt("no free revision after %d tries: %s", CREATE_TRIES, tostring(err))
end

-- Deletes the records of summaries (newest first) beyond the first `keep`. Returns nil, or a
-- message naming what could not be deleted.
function M.prune(client, namespace, summaries, keep)
  if not keep or keep <= 0 then return nil end
  local failed = {}
  for i = keep + 1, #summaries do
    local ok, err = client:delete("v1", "Secret", summaries[i].secret, namespace)
    if not ok then failed[#failed + 1] = tostring(err) end
  end
  if #failed > 0 then return "could not delete old run records: " .. table.concat(failed, "; ") end
end

-- ---- which record a rollback goes to ------------------------------------------------------

-- history.target(summaries, {to=, exclude_run=}) -> summary | nil, why
--   to: a run id (or a revision number): that run's successful record.
--   exclude_run: the newest successful record of another run (a run whose on_error asked for
--     a rollback goes back to the last good run before it).
--   neither: the newest record is the current state; the newest successful one before it.
function M.target(summaries, opts)
  opts = opts or {}
  if #summaries == 0 then return nil, "no runs are recorded" end
  if opts.to then
    local found
    for _, s in ipairs(summaries) do
      if s.run == opts.to or tostring(s.revision) == opts.to then
        if s.state == "succeeded" then return s end
        found = found or s
      end
    end
    if found then
      return nil, fmt("run %s ended %s: a rollback goes back to a run that succeeded", found.run, found.state)
    end
    return nil, fmt("no run %s is recorded (moonship history lists them)", opts.to)
  end
  local first = opts.exclude_run and 1 or 2
  for i = first, #summaries do
    local s = summaries[i]
    if s.state == "succeeded" and s.run ~= opts.exclude_run then return s end
  end
  if opts.exclude_run then return nil, "no earlier run succeeded" end
  return nil, fmt("no run before the current one (revision %d, run %s, %s) succeeded", summaries[1].revision,
    summaries[1].run, summaries[1].state)
end

-- The record a rollback goes back to: history.target's choice (opts as its), fetched. Returns
-- the record or nil, why (said as the rollback's reason for not running).
function M.rollback_record(client, namespace, summaries, opts)
  local target, why = M.target(summaries, opts)
  if not target then return nil, why end
  local record, err = M.fetch(client, namespace, target)
  if not record then return nil, fmt("cannot read the record of run %s: %s", target.run, tostring(err)) end
  return record
end

-- ---- a record as a workflow ---------------------------------------------------------------

-- Task ids and step names of a rollback carry this prefix: in the journal, the views and the
-- report they stand apart from the tasks of the run that asked for it.
M.PREFIX = "rollback."

-- Why a recorded task is not re-applied, or nil.
local function not_reapplied(t)
  if t.kind == "jobs" then
    return "not re-run: a rollback restores what runs (services, manifests, cron jobs), it does not run jobs again"
  end
  if type(t.objects) ~= "table" or #t.objects == 0 then
    return "not re-run: it applied no objects moonship recorded (a rollback re-applies recorded objects only)"
  end
end

-- The workflow that re-applies a record: its steps in order, as recorded (background,
-- halt_on_error, timeout, max_parallel), each task of kind "rollback" named by the recorded
-- task's id ("rollback.services.web" is kind "rollback", name "services.web"), `of` its kind,
-- `objects` its recorded objects; jobs and tasks without recorded objects are `skip`ped.
function M.rollback_workflow(record)
  local steps = {}
  for i, s in ipairs(record.steps) do
    local tasks = {}
    for j, t in ipairs(s.tasks or {}) do
      tasks[j] = {id = M.PREFIX .. t.id, kind = "rollback", name = t.id, of = t.kind, objects = t.objects,
                  halt_on_error = t.halt_on_error, timeout = t.timeout, recorded = t, skip = not_reapplied(t)}
    end
    steps[i] = {name = M.PREFIX .. s.step, wait_for_finish = not s.background, halt_on_error = s.halt_on_error,
                timeout = s.timeout, max_parallel = s.max_parallel, recorded = s, tasks = tasks}
  end
  return {name = record.workflow, steps = steps, rollback_of = record}
end

return M
