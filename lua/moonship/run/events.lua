-- The event contract: every event a run emits, its fields, the final states, and the one
-- reducer that turns events into a run's state (the engine's own, the journal's snapshot, the
-- report's). Views read these fields, never message text. The JSON Lines of the journal and of
-- `-o json` are these events (README "The run journal and JSON events"): fields are added,
-- never renamed.
--
--   run_started    app, namespace, env, steps, tasks, plan [{step, background, halt_on_error, tasks}],
--                  dry_run, resume_of, time_scale (a --sim run's kubesim time scale), rollback_of
--                  (`moonship rollback`: the run whose recorded objects this run re-applies)
--   step_started   step, index, background, tasks
--   step_finished  step, index, background, state (succeeded | failed | cancelled), halt (a
--                  failure of this step halted the run; a failed step without it had its
--                  failures ignored)
--   task_started   task, step, attempt
--   task_progress  task, step, message, and the structured fields of PROGRESS
--   task_finished  task, step, state (FINAL), attempt, message, reason, restarts, logs, halt,
--                  spec_hash
--   log            task, step, pod (job output), hook (a line a hook wrote with ctx.log, or a
--                  message about a hook that failed: the hook's name), message
--   run_halting    task, cause (halt_on_error | on_error: what decided the halt), message, rollback
--                  (true: on_error answered "rollback": the rollback follows the cleanup)
--   rollback_started  to (the run whose recorded objects are re-applied), revision (its record's),
--                  target_workflow, template_hash (the record's), reason (command: `moonship
--                  rollback`, right after run_started | on_error: after the halted run's cleanup,
--                  before run_finished), steps, tasks, plan (as run_started's: the rollback's
--                  steps "rollback.<step>" and tasks "rollback.<task id>", whose events follow)
--   run_finished   state (succeeded | failed | halted | interrupted), exit_code, failed, halted_by,
--                  rollback (after on_error's "rollback": succeeded | failed | halted |
--                  interrupted, or unavailable when no earlier run succeeded; the state and
--                  exit code stay the halted run's)
-- Every event also has t (seconds since the run started), run, workflow, and dry_run in a dry run.
-- A run that prunes (deploy --prune, the template's prune: true) has one more step after the
-- workflow's, "prune", with one task, "prune" (in run_started's plan and tasks, steps counting
-- it): it runs only after every task succeeded (or recovered), with one task_progress of phase
-- "deleted" per object it deleted (in a dry run, "would delete ..."); otherwise its task_finished
-- is skipped (or cancelled, for an interrupted run) without step events.
local M = {}

M.NAMES = {
  run_started = true, step_started = true, step_finished = true, task_started = true,
  task_progress = true, task_finished = true, log = true, run_halting = true, run_finished = true,
  rollback_started = true,
}

-- The states a task ends in, in the order summaries list them.
M.FINAL_ORDER = {"succeeded", "recovered", "failed", "cancelled", "skipped"}
M.FINAL = {}
for _, state in ipairs(M.FINAL_ORDER) do M.FINAL[state] = true end

-- The structured fields of task_progress:
--   phase     "applied" (objects were applied; objects lists them), "waiting" (a rollout or a
--             readiness rule), "job_pending", "job_running", "retrying", "settling" (the
--             end-of-run check of an ignored failure), "deleting" (release.remove_environment),
--             "deleted" (the prune task: objects lists the object, gone now; in a dry run, the
--             server's dry run of its deletion passed)
--   ready, desired   replicas (or a Job's completions) ready and wanted
--   reason    what blocks it now (ImagePullBackOff, CrashLoopBackOff, ...)
--   restarts  the restarts of the container behind reason
--   settling  true while the settle check runs (phase "settling")
--   objects   [{kind, apiVersion, name, namespace, uid, resourceVersion}] with phase "applied",
--             [{kind, apiVersion, name, namespace, uid}] with phase "deleted"
M.PROGRESS = {phase = true, ready = true, desired = true, reason = true, restarts = true, settling = true,
              objects = true, attempt = true, retry = true}

-- task_progress for a task ({id=, step=}): the message and the structured fields.
function M.progress(task, message, fields)
  local ev = {event = "task_progress", task = task.id, step = task.step, message = message}
  for k, v in pairs(fields or {}) do
    if not M.PROGRESS[k] then error("events.progress: unknown field '" .. tostring(k) .. "'", 2) end
    ev[k] = v
  end
  return ev
end

-- task_finished for a task: state (one of FINAL) and the other fields.
function M.finished(task, state, fields)
  if not M.FINAL[state] then error("events.finished: not a final state: " .. tostring(state), 2) end
  local ev = {event = "task_finished", task = task.id, step = task.step, state = state}
  for k, v in pairs(fields or {}) do ev[k] = v end
  return ev
end

-- ---- job output shown once ------------------------------------------------------------------

-- A failed job's last log lines arrive twice: streamed as log events while it runs, then again
-- as task_finished's `logs` (which a service's failure has as its only copy). Views keep one
-- of these per run: shown:fold(ev) for every event, and shown:unshown(ev) on task_finished
-- gives the lines of ev.logs that the task's output of the same attempt has not shown yet.
local Shown = {}
Shown.__index = Shown

function M.shown_logs()
  return setmetatable({by_task = {}}, Shown)
end

function Shown:fold(ev)
  if not ev.task then return end
  if ev.event == "task_started" then
    self.by_task[ev.task] = nil
  elseif ev.event == "log" and ev.pod ~= nil then
    local lines = self.by_task[ev.task]
    if not lines then lines = {}; self.by_task[ev.task] = lines end
    lines[#lines + 1] = ev.message
  end
end

-- The streamed output ends with the lines `logs` holds (the pod's last ones): what follows the
-- longest such overlap was not shown. No overlap (a service's crash, output cut short) shows
-- them all.
function Shown:unshown(ev)
  local logs = ev.logs or {}
  local shown = self.by_task[ev.task] or {}
  for k = math.min(#shown, #logs), 1, -1 do
    local same = true
    for i = 1, k do
      if shown[#shown - k + i] ~= logs[i] then same = false break end
    end
    if same then return table.move(logs, k + 1, #logs, 1, {}) end
  end
  return table.move(logs, 1, #logs, 1, {})
end

-- ---- the run's state, from its events ---------------------------------------------------------

local State = {}
State.__index = State

-- events.state() -> state: tasks (id -> {state, attempts, step, started, finished, message,
-- spec_hash, objects (applied), deleted (by the prune task)}), order (ids as they first
-- appeared), run_state (run_finished's state).
function M.state()
  return setmetatable({tasks = {}, order = {}, run_state = "running"}, State)
end

function State:task(id)
  local rec = self.tasks[id]
  if not rec then
    rec = {state = "pending", attempts = 0, objects = {}, deleted = {}}
    self.tasks[id] = rec
    self.order[#self.order + 1] = id
  end
  return rec
end

-- Folds one event into the state.
function State:apply(ev)
  local e = ev.event
  if ev.task then
    local rec = self:task(ev.task)
    rec.step = ev.step or rec.step
    if e == "task_started" then
      rec.state, rec.started, rec.attempts = "running", ev.t, ev.attempt or (rec.attempts + 1)
    elseif e == "task_finished" then
      rec.state, rec.finished, rec.message = ev.state, ev.t, ev.message
      if ev.spec_hash then rec.spec_hash = ev.spec_hash end
    end
    if ev.objects then
      -- what the prune task deleted is not what the run applied (run_info, the snapshot)
      local into = ev.phase == "deleted" and rec.deleted or rec.objects
      for _, o in ipairs(ev.objects) do into[#into + 1] = o end
    end
  elseif e == "run_started" then
    for _, step in ipairs(ev.plan or {}) do
      for _, id in ipairs(step.tasks) do self:task(id).step = step.step end
    end
  elseif e == "run_finished" then
    self.run_state = ev.state
  end
end

-- How many of ids (default: every task) are in each state: {failed = n, ...}.
function State:count(ids)
  local counts = {}
  for _, id in ipairs(ids or self.order) do
    local rec = self.tasks[id]
    local state = rec and rec.state or "pending"
    counts[state] = (counts[state] or 0) + 1
  end
  return counts
end

return M
