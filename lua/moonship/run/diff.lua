-- `moonship diff` and `moonship plan --diff`: what a deploy of a workflow would change. Every object
-- the workflow applies (in the engine's order: step by step, task by task) is sent as a
-- server-side dry-run apply with moonship's field manager and compared with the live object
-- (moonship.model.compare); a job's new Job is compared with the newest live Job of that job.
-- Charts and custom task kinds change what moonship cannot see: they are listed as not compared.
--   diff.compare(client, model, workflow, hooks, {namespace_missing=, deleted=, run_id=, applyset=, env=})
--     -> result; applyset: the app's set (default: diff.applyset(client, model, env)), whose labels
--     every object gets as a deploy gives them
--     deleted: the live objects a deploy would delete (a prune), listed as "- deleted": a list, or
--     fn(objects) -> list, given the objects the workflow applies (those compared, in order)
--   diff.run(settings) -> {exit_code=, result=}   the CLI command, inside a task
-- result = {app=, workflow=, namespace=, server=, objects={entry...}, tasks={task entry...},
--           counts={created=, changed=, unchanged=, deleted=, not_compared=, errors=}, differences=}
-- entry = {action="created"|"changed"|"unchanged"|"deleted"|"error", apiVersion=, kind=, name=,
--          namespace=, task= (task id; nil for deleted), diff={lines}, previous= (a Job's: the
--          live Job it reruns), spec_changed= (a Job's), message= (an error's)}
-- task entry = {task=, state="new"|"changed"|"unchanged"|"not_compared"|"error", reason=, objects=}
local compare = require "moonship.model.compare"
local deploy = require "moonship.run.deploy"
local manifests = require "moonship.model.manifests"
local sched = require "moonship.sched"
local EXIT = require "moonship.exit"

local fmt = string.format

local M = {}

-- Objects compared at once (each takes a GET and a dry-run PATCH; the client's rate limit
-- holds above this).
M.CONCURRENCY = 8

-- Why a task that applies no objects of its own is not compared.
local function not_compared_reason(model, hooks, task)
  if task.kind == "release" then
    return "release." .. task.name .. " deletes what the app has in the namespace; moonship diff does not list it"
  end
  if task.kind == "charts" and model.by_name.charts and model.by_name.charts[task.name]
      and not (hooks and hooks:custom_kinds().charts) then
    return "a helm chart (helm upgrade --install): moonship diff does not render charts"
  end
  return fmt("a custom task kind (the hooks file's tasks.%s): what it changes is not known", task.kind)
end

-- The names of the task's env variables marked secret: true, a set (or nil).
local function secret_env(model, task)
  local units = model.by_name[task.kind]
  local unit = units and units[task.name]
  return unit and unit.secret_env or nil
end

local function entry_of(obj, task, action)
  local meta = obj.metadata or {}
  return {action = action, apiVersion = obj.apiVersion, kind = obj.kind, name = meta.name,
          namespace = meta.namespace, task = task and task.id, diff = {}}
end

-- The newest Job of a job (by the moonship.dev/job label within the app), or nil; or nil,
-- message when the list fails.
local function newest_job(client, model, obj)
  local labels = obj.metadata.labels or {}
  local selector = fmt("%s=%s,app.kubernetes.io/part-of=%s", manifests.JOB_LABEL, labels[manifests.JOB_LABEL],
    model.app)
  local list, err = client:list("batch/v1", "Job", {namespace = obj.metadata.namespace, label_selector = selector,
                                                    drop = {"metadata.managedFields"}})
  if not list then return nil, err end
  local newest
  for _, job in ipairs(list.items) do
    local t, n = job.metadata.creationTimestamp or "", job.metadata.name
    if not newest or t > newest.t or (t == newest.t and n > newest.n) then newest = {t = t, n = n, job = job} end
  end
  return newest and newest.job
end

-- Compares one object; returns its entry.
local function compare_one(client, model, task, obj, opts)
  local e = entry_of(obj, task, "created")
  if opts.namespace_missing then return e end
  local meta = obj.metadata
  local function failed(message)
    e.action, e.message = "error", message
    return e
  end
  local is_job = obj.kind == "Job" and obj.apiVersion == "batch/v1" and (meta.labels or {})[manifests.JOB_LABEL]
  local live, err, code
  if is_job then
    live, err = newest_job(client, model, obj)
    if err then return failed(err) end
  else
    live, err, code = client:get(obj.apiVersion, obj.kind, meta.name, meta.namespace)
    if not live and code ~= "not_found" then return failed(err) end
  end
  local want, aerr = client:apply(obj, {dry_run = true})
  if not want then return failed(aerr) end
  if not live then return e end
  local action, diff = compare.objects(live, want, {job = is_job and true or nil, secret_env = secret_env(model, task)})
  e.diff = diff
  if is_job then
    e.previous, e.spec_changed = live.metadata.name, action == "changed"
    e.action = action == "changed" and "created" or "unchanged"
  else
    e.action = action
  end
  return e
end

-- A task's state from its objects' entries: new when none of them was there before.
local function task_state(entries)
  local any_error, all_new, all_same = false, true, true
  for _, e in ipairs(entries) do
    if e.action == "error" then any_error = true end
    if e.action ~= "created" or e.previous then all_new = false end
    if e.action ~= "unchanged" then all_same = false end
  end
  if any_error then return "error" end
  if all_same then return "unchanged" end
  if all_new then return "new" end
  return "changed"
end

-- Runs fns (each returns one value), at most n at once; their results in order.
local function bounded(fns, n)
  local sem, wrapped = sched.semaphore(n), {}
  for i, fn in ipairs(fns) do
    wrapped[i] = function() return sem:with(fn) end
  end
  return table.pack(sched.all(wrapped))
end

function M.compare(client, model, wf, hooks, opts)
  opts = opts or {}
  local run_id = opts.run_id or require("moonship.run.journal").new_run_id()
  local by_task = manifests.by_task(model, wf, {run_id = run_id, namespace = model.namespace})
  -- labelled as the engine labels what it applies, so that a deploy's labels are no difference
  local set = opts.applyset or M.applyset(client, model, opts.env)
  for _, t in ipairs(by_task) do
    for _, obj in ipairs(t.objects) do set:label(obj, wf.name) end
  end
  local result = {app = model.app, workflow = wf.name, namespace = model.namespace,
                  server = client.describe and client:describe() or nil, objects = {}, tasks = {},
                  namespace_missing = opts.namespace_missing or nil}
  local fns, slots = {}, {}
  for _, t in ipairs(by_task) do
    local te = {task = t.task.id, objects = {}}
    result.tasks[#result.tasks + 1] = te
    if not manifests.APPLIED_KINDS[t.task.kind] then
      te.state, te.reason = "not_compared", not_compared_reason(model, hooks, t.task)
    end
    for _, obj in ipairs(t.objects) do
      fns[#fns + 1] = function() return compare_one(client, model, t.task, obj, opts) end
      slots[#slots + 1] = te
    end
  end
  local entries = #fns > 0 and bounded(fns, M.CONCURRENCY) or {}
  for i = 1, #fns do
    local te = slots[i]
    te.objects[#te.objects + 1] = entries[i]
    result.objects[#result.objects + 1] = entries[i]
  end
  for _, te in ipairs(result.tasks) do
    if not te.state then te.state = task_state(te.objects) end
  end
  local deleted = opts.deleted or {}
  if type(deleted) == "function" then
    local objects = {}
    for _, t in ipairs(by_task) do table.move(t.objects, 1, #t.objects, #objects + 1, objects) end
    deleted = deleted(objects)
  end
  for _, obj in ipairs(deleted) do
    result.objects[#result.objects + 1] = entry_of(obj, nil, "deleted")
  end
  local counts = {created = 0, changed = 0, unchanged = 0, deleted = 0, errors = 0, not_compared = 0}
  for _, e in ipairs(result.objects) do
    local key = e.action == "error" and "errors" or e.action
    counts[key] = counts[key] + 1
  end
  for _, te in ipairs(result.tasks) do
    if te.state == "not_compared" then counts.not_compared = counts.not_compared + 1 end
  end
  result.counts = counts
  result.differences = counts.created + counts.changed + counts.deleted > 0
  return result
end

-- The exit code of a diff: as kubectl diff's, 0 no differences, 1 differences, 2 an error.
function M.exit_code(result)
  if result.counts.errors > 0 then return EXIT.bad_input end
  return result.differences and EXIT.differences or EXIT.ok
end

-- The app's ApplySet in the template's namespace (for the environment env), as a deploy has it.
function M.applyset(client, model, env)
  return require("moonship.kube.applyset").new(client, {app = model.app, environment = env,
                                                        namespace = model.namespace})
end

-- What a prune after this workflow would delete: the stale members of the app's ApplySet, as the
-- prune step finds them (engine.prune_scope); or nil, message.
function M.stale(set, model, wf)
  local engine = require "moonship.run.engine"
  local produced, scope = engine.prune_scope(model, wf, {run_id = "diff", namespace = model.namespace})
  return set:stale(produced, wf.name, scope)
end

-- Loads, connects (creating nothing: the preflight of a dry run) and compares; writes the
-- result as text or JSON. s: deploy's settings (template, workflow, env, namespace, context,
-- kubeconfig, hooks, images, domain, sim, scenario) and output, color, stdout, stderr.
function M.run(s)
  local stdout, stderr = deploy.outputs(s)
  s.dry_run = true
  local model, wf, hooks = deploy.prepare(s, stderr)
  if not model then return wf end
  local conn, oerr = deploy.open(s, model)
  if not conn then return deploy.refused(stderr, oerr) end
  local _ <close> = conn
  if conn.state == "missing" then
    stderr(fmt("moonship: namespace %s does not exist yet: every object would be created (and is not checked "
      .. "by the server)\n", model.namespace))
  end
  local set = M.applyset(conn.client, model, s.env)
  local deleted, left = {}, {}
  if conn.state ~= "missing" then
    local stale, serr = M.stale(set, model, wf)
    if not stale then return deploy.refused(stderr, serr) end
    if deploy.prunes(s, model) then deleted = stale else left = stale end
  end
  local result = M.compare(conn.client, model, wf, hooks, {namespace_missing = conn.state == "missing",
                                                           deleted = deleted, applyset = set})
  result.left_behind = #left > 0 and left or nil
  conn.client:close()
  local view = require "moonship.output.diff_text"
  if s.output == "json" then
    stdout(view.json(result))
  else
    local on_tty = not s.stdout and require("moonship.core").term.isatty(1)
    local color = require("moonship.output.tty").use_color(s.color or "auto", on_tty)
    stdout(view.text(result, {color = color}))
  end
  return {exit_code = M.exit_code(result), result = result}
end

return M
