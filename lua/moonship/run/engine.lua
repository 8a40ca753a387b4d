-- The deploy engine: runs one workflow of a validated model on the scheduler, with the exact
-- semantics of DESIGN.md §3. Steps run in order; the tasks of a step run in parallel (bounded
-- by max_parallel / --concurrency); a wait_for_finish: false step counts as finished once its
-- tasks have started and runs on in the background; failures are ignored by default and
-- re-checked at the end (recovered or still failed); halt_on_error cancels everything in flight
-- and starts nothing more. Every state change is an event in the run journal. A finished run is
-- recorded in the run history (moonship.run.history); a rollback runs a recorded run's objects
-- as its steps and tasks (kind "rollback"), on its own (`moonship rollback`) or after a halt
-- that the on_error hook answered with "rollback".
local applyset = require "moonship.kube.applyset"
local events = require "moonship.run.events"
local history = require "moonship.run.history"
local json = require "moonship.json"
local sched = require "moonship.sched"
local hooks_mod = require "moonship.run.hooks"
local EXIT = require "moonship.exit"
local plan = require "moonship.model.plan"

local fmt = string.format

local M = {}

local Run = {}
Run.__index = Run

M.DEFAULT_TASK_TIMEOUT = 600   -- seconds, as a Deployment's default progress deadline
M.DEFAULT_SETTLE = 30          -- seconds to re-check ignored service failures at the end
local LOG_DRAIN = 2            -- seconds a job's log stream may take to end after the job
local INTERRUPTED_SAVE = 5     -- seconds the snapshot may take to reach the cluster after a signal

local is_cancel = sched.is_cancelled

-- ---- spec hashes (for --resume) ------------------------------------------------------------

local function strip_positions(v)
  if type(v) ~= "table" then return v end
  local out = {}
  for k, x in pairs(v) do
    if k ~= "pos" then out[k] = strip_positions(x) end
  end
  if json.is_array(v) then json.array(out) end
  return out
end

local function fnv1a(s)
  local h = 2166136261
  for i = 1, #s do
    h = ((h ~ s:byte(i)) * 16777619) & 0xffffffff
  end
  return fmt("%08x", h)
end

-- What a task deploys, hashed: the definition it comes from (for a rollback's task, the
-- recorded objects), where it goes.
function Run:spec_hash(task)
  local model = self.model
  local def = task.kind == "rollback" and task.objects
    or model.by_name[task.kind] and model.by_name[task.kind][task.name] or task
  if task.kind == "manifests" and def.objects then def = def.objects end
  local text = json.encode({def = strip_positions(def), app = model.app, namespace = self.namespace},
    {sort_keys = true})
  return fnv1a(text)
end

-- What the whole workflow deploys, hashed: its tasks' spec hashes, in plan order (a rollback
-- deploys what the run it goes back to did: that run's hash).
function Run:template_hash()
  if self.rollback_of then return self.rollback_of.template_hash end
  local parts = {}
  for _, step in ipairs(self.workflow.steps) do
    for _, t in ipairs(step.tasks) do parts[#parts + 1] = t.id .. "=" .. self:spec_hash(t) end
  end
  return fnv1a(table.concat(parts, ";"))
end

-- ---- events ------------------------------------------------------------------------------

-- Every event goes to the journal (which fills in its time and hands it to the views), and
-- into the engine's own state of the run, which its decisions read.
function Run:emit(ev)
  ev = self.journal:emit(ev)
  self.state:apply(ev)
  return ev
end

local function object_ref(obj)
  local md = obj.metadata or {}
  return {kind = obj.kind, apiVersion = obj.apiVersion, name = md.name, namespace = md.namespace,
          uid = md.uid, resourceVersion = md.resourceVersion}
end

-- ---- running one task --------------------------------------------------------------------

function Run:task_timeout(task)
  if task.timeout then return task.timeout end
  if task.kind == "jobs" then
    local job = self.model.by_name.jobs[task.name]
    if job and job.completed_timeout then return job.completed_timeout + 60 end
  end
  return self.timeout or M.DEFAULT_TASK_TIMEOUT
end

-- In a dry run, whether a failed apply was refused only because its namespace does not exist
-- yet: kube-apiserver's NamespaceLifecycle admission answers 404 for the namespace (not for the
-- object) after decoding the body against the schema and before the object's own validation.
local function namespace_missing(obj, code, status)
  local d = code == "not_found" and type(status) == "table" and status.details or nil
  local ns = obj.metadata.namespace
  return d ~= nil and ns ~= nil and d.kind == "namespaces" and (d.group or "") == "" and d.name == ns
end

-- Applies objects in order, each labelled a member of the app's ApplySet (whose parent is
-- made to cover them first; not in a dry run, which writes nothing); returns the live objects
-- (in a dry run, what the server would store) or nil, message. What was applied is also kept,
-- as sent, for the run's record (self.applied[task id]: the last attempt's).
function Run:apply_all(task, objects)
  local live, sent = {}, {}
  self.applied[task.id] = sent
  if self.applyset and not self.dry_run then
    local ok, err = self.applyset:record(objects)
    if not ok then return nil, err end
  end
  for _, obj in ipairs(objects) do
    if self.applyset then self.applyset:label(obj, self.workflow.name) end
    local what = obj.kind:lower() .. "/" .. obj.metadata.name
    local got, err, code, status = self.client:apply(obj, {dry_run = self.dry_run})
    local message = "applied " .. what
    if self.dry_run then
      message = "would apply " .. what .. " (the server's dry run passed)"
      if not got and namespace_missing(obj, code, status) then
        got = obj
        message = fmt("would apply %s (schema checked only: namespace %s does not exist yet)", what,
          obj.metadata.namespace)
      end
    end
    if not got then return nil, err end
    live[#live + 1] = got
    sent[#sent + 1] = obj
    self:emit(events.progress(task, message, {phase = "applied", objects = json.array {object_ref(got)}}))
  end
  return live
end

-- Follows the logs of a job's pods into the journal as "log" events, prefixed by the task:
-- one stream per pod as soon as it runs (a stream ends when its container exits). Returns
-- the watcher task (cancel it when the job is done) and the list of stream tasks.
function Run:follow_job_logs(task, job)
  local client, ns = self.client, job.metadata.namespace or self.namespace
  local pods = client:informer("v1", "Pod", ns)
  local uid = job.metadata.uid
  local followed, streams = {}, {}
  local buffered = self.logs == "failed" and {} or nil
  task.log_buffer = buffered
  local function emit_line(name, line)
    if buffered then
      buffered[#buffered + 1] = {pod = name, line = line}
    else
      self:emit {event = "log", task = task.id, step = task.step, pod = name, message = line}
    end
  end
  local watcher = sched.spawn(function()
    local changed = sched.event()
    local unsub = pods:subscribe_owned(uid, function() changed:set() end)
    local _ <close> = setmetatable({}, {__close = unsub})
    while true do
      for _, pod in ipairs(pods:owned_by(uid)) do
        local name = pod.metadata.name
        local phase = pod.status and pod.status.phase
        if not followed[name] and (phase == "Running" or phase == "Succeeded" or phase == "Failed") then
          followed[name] = true
          streams[#streams + 1] = sched.spawn(function()
            client:logs(name, ns, {follow = true, on_line = function(line) emit_line(name, line) end})
          end)
        end
      end
      changed = sched.event()
      changed:wait()
    end
  end)
  return watcher, streams
end

-- After the job's wait: stop looking for new pods, let the open log streams end on their own
-- (their containers have exited) for a bounded time, then stop them.
local function drain_logs(watcher, streams)
  watcher:cancel("job finished")
  sched.timeout(LOG_DRAIN, function()
    for _, t in ipairs(streams) do t:join() end
  end)
  for _, t in ipairs(streams) do t:cancel("job finished") end
end

-- charts.<name>: `helm upgrade --install --wait` of the chart into the run's namespace, on the
-- run's cluster (the kubeconfig files and context the client uses), as a child process of the
-- scheduler: cancelling the task (a halt, a step timeout, a signal) ends helm.
function Run:install_chart(task, chart)
  local timeout = self:task_timeout(task)
  local argv = {"helm", "upgrade", "--install", chart.release, chart.directory,
    "--namespace", self.namespace, "--wait", "--timeout", fmt("%ds", timeout)}
  if chart.values then table.move({"--values", chart.values}, 1, 2, #argv + 1, argv) end
  local cfg = self.client and self.client.cfg
  if cfg and cfg.context then table.move({"--kube-context", cfg.context}, 1, 2, #argv + 1, argv) end
  if self.dry_run then argv[#argv + 1] = "--dry-run=server" end
  local env_extra
  if cfg and cfg.source and #cfg.source > 0 then env_extra = {KUBECONFIG = table.concat(cfg.source, ":")} end
  self:emit {event = "task_progress", task = task.id, step = task.step, message = table.concat(argv, " ")}
  -- helm's own --timeout ends it first; this only guards against a helm that hangs.
  local r, err = require("moonship.process").run {argv = argv, env_extra = env_extra, timeout = timeout + 30}
  if not r then
    if tostring(err):find("ENOENT", 1, true) then
      return nil, "helm is not on PATH: charts are installed with helm upgrade --install (install helm, or define tasks.charts in a hooks file)", {}
    end
    return nil, err, {}
  end
  for _, stream in ipairs {r.stdout, r.stderr} do
    for line in stream:gmatch("[^\n]+") do
      self:emit {event = "log", task = task.id, step = task.step, message = line}
    end
  end
  if r.code ~= 0 then
    local last = r.stderr:gsub("%s+$", ""):match("([^\n]*)$")
    return nil, fmt("helm upgrade --install %s %s%s", chart.release,
      r.code and ("exited with code " .. r.code) or ("was killed by signal " .. tostring(r.signal)),
      last ~= "" and (": " .. last) or ""), {}
  end
  return true, {}
end

-- The objects a task applies: a rollback's from its record (a copy: each attempt sends them
-- afresh), the others' from the template (moonship.model.manifests); nil for a task that
-- applies none (release.*, charts, custom kinds).
function Run:objects_for(task)
  local manifests = require "moonship.model.manifests"
  if task.kind == "rollback" then
    local objects = {}
    for i, obj in ipairs(task.objects) do objects[i] = manifests.deep_copy(obj) end
    return objects
  end
  if manifests.APPLIED_KINDS[task.kind] then
    return manifests.for_task(self.model, task, {run_id = self.run_id, namespace = self.namespace,
                                                 attempt = task.attempt})
  end
end

-- Runs what a task does, once. Returns true, details or nil, message, details.
function Run:perform(task, ctx)
  local kind, model = task.kind, self.model
  local objects = self:objects_for(task)
  if objects then
    local live, err = self:apply_all(task, objects)
    if not live then return nil, err, {} end
    if self.dry_run then return true, {objects = live} end
    local waits = {}
    for _, obj in ipairs(live) do
      if obj.kind ~= "Service" or (obj.spec and obj.spec.type == "LoadBalancer") then
        waits[#waits + 1] = obj
      end
    end
    local timeout = self:task_timeout(task)
    local watcher, streams
    if kind == "jobs" and self.logs ~= "none" then
      for _, obj in ipairs(live) do
        if obj.kind == "Job" then watcher, streams = self:follow_job_logs(task, obj) end
      end
    end
    local function wait_one(obj)
      local ok, reason, details = self.client:wait_ready(obj, {
        timeout = timeout, health = self.health,
        on_progress = function(summary, info)
          self:emit(events.progress(task, summary, {phase = info.phase or "waiting", ready = info.ready,
                                                    desired = info.desired, reason = info.reason,
                                                    restarts = info.restarts}))
        end,
      })
      if ok then return true end
      return nil, reason, details
    end
    local failure
    for _, obj in ipairs(waits) do
      local ok, reason, details = wait_one(obj)
      if not ok then
        failure = {reason = reason, details = details or {}, object = obj}
        break
      end
    end
    if watcher then drain_logs(watcher, streams) end
    if failure then
      local d = failure.details
      local message = d.message or failure.reason
      if failure.reason == "timeout" then
        message = fmt("timed out after %gs: %s", timeout, d.message or "not ready")
      end
      return nil, message, {reason = failure.reason, restarts = d.restarts, logs = d.logs, pod = d.pod, objects = live}
    end
    return true, {objects = live}
  elseif kind == "release" and task.name == "remove_environment" then
    return self:remove_environment(task)
  elseif kind == "charts" and model.by_name.charts and model.by_name.charts[task.name]
      and not self.hooks:custom_kinds().charts then
    return self:install_chart(task, model.by_name.charts[task.name])
  else
    local ok, err = self.hooks:run_task(kind, ctx, task.name, task.spec or model.custom and model.custom[task.id])
    if not ok then return nil, err, {} end
    return true, {}
  end
end

-- release.remove_environment: deletes every object this app owns in the namespace (by the
-- part-of label) and waits until each is gone.
local REMOVABLE = {
  {"apps/v1", "Deployment"}, {"apps/v1", "StatefulSet"}, {"apps/v1", "DaemonSet"},
  {"batch/v1", "Job"}, {"v1", "Service"}, {"v1", "ConfigMap"}, {"v1", "Secret"},
  {"networking.k8s.io/v1", "Ingress"}, {"v1", "PersistentVolumeClaim"},
  {"batch/v1", "CronJob"}, {"v1", "ServiceAccount"},
}

function Run:remove_environment(task)
  local client, ns = self.client, self.namespace
  local selector = "app.kubernetes.io/part-of=" .. self.model.app
  local doomed = {}
  for _, gk in ipairs(REMOVABLE) do
    local list, err = client:list(gk[1], gk[2], {namespace = ns, label_selector = selector})
    if not list then return nil, err, {} end
    for _, obj in ipairs(list.items) do
      if not (obj.metadata.labels or {})["moonship.dev/journal"] then doomed[#doomed + 1] = obj end
    end
  end
  if self.dry_run then return true, {objects = doomed} end
  -- the ApplySet's parent is one of the app's Secrets: a later apply must write it again
  if self.applyset then self.applyset:forget() end
  for _, obj in ipairs(doomed) do
    local ok, err = client:delete(obj.apiVersion, obj.kind, obj.metadata.name, ns, {propagation = "Foreground"})
    if not ok then return nil, err, {} end
    self:emit(events.progress(task, "deleting " .. obj.kind:lower() .. "/" .. obj.metadata.name, {phase = "deleting"}))
  end
  local deadline = sched.now() + self:task_timeout(task)
  for _, obj in ipairs(doomed) do
    local ok, _, err = client:wait_deleted(obj, {timeout = math.max(0, deadline - sched.now())})
    if not ok then return nil, err, {} end
  end
  return true, {objects = doomed}
end

-- What a hook that failed, or answered nonsense, leaves in the run's events.
function Run:hook_note(task, hook, message)
  self:emit {event = "log", task = task.id, step = task.step, hook = hook, message = message}
end

-- Attempts that on_error's "retry" allows without a retry hook, and their back-off.
local DEFAULT_ATTEMPTS = 3
local function default_backoff(attempt) return math.min(30, 2 ^ (attempt - 1)) end

-- The task's policy after a failed attempt: "retry" and the delay, or "halt" and what decided it
-- ("halt_on_error" | "on_error"), or "ignore". README "Hooks": `retry` decides first, about
-- trying again (seconds to wait, or nil: give up); once it gives up, or when there is none,
-- `on_error` decides the policy: "ignore", "halt", "retry" (the default back-off, up to 3
-- attempts), "rollback" (a halt, then a rollback to the last good run: self.rollback_wanted)
-- or nil, the template's (halt_on_error, else ignore).
function Run:decide(task, ctx, info, err, attempt)
  local hooks = self.hooks
  if hooks:has("retry") then
    local ok, d, raw = hooks:call("retry", ctx, info, err, attempt)
    if not ok then
      self:hook_note(task, "retry", raw)
    elseif type(d) == "number" and d >= 0 and d < math.huge then
      return "retry", d
    elseif d ~= nil then
      self:hook_note(task, "retry", fmt("returned %s (want seconds to wait, or nil to give up): giving up", tostring(d)))
    end
  end
  local decision
  if hooks:has("on_error") then
    local ok, d, raw = hooks:call("on_error", ctx, info, err)
    if not ok then
      self:hook_note(task, "on_error", raw)
    elseif d ~= nil and not hooks_mod.ON_ERROR[d] then
      self:hook_note(task, "on_error", fmt("returned %q (want ignore, halt, retry or rollback): using the template's policy",
        tostring(d)))
    else
      decision = d
    end
  end
  if decision == "rollback" then
    decision = "halt"
    local why = self:rollback_unavailable()
    if why then
      self:hook_note(task, "on_error", fmt("returned \"rollback\", but %s: halting", why))
    else
      self.rollback_wanted = self.rollback_wanted or task.id
    end
  end
  if decision == "retry" then
    if attempt < DEFAULT_ATTEMPTS then return "retry", default_backoff(attempt) end
    self:hook_note(task, "on_error", fmt("returned \"retry\" after %d attempts: using the template's policy", attempt))
    decision = nil
  end
  if decision then return decision, decision == "halt" and "on_error" or nil end
  if task.halt_on_error then return "halt", "halt_on_error" end
  return "ignore"
end

function Run:run_task(step_state, task)
  local id = task.id
  task.step = step_state.step.name
  local spec_hash = self:spec_hash(task)
  local prev = self.previous[id]
  local skip = task.skip
  if prev and prev.spec_hash == spec_hash and (prev.state == "succeeded" or prev.state == "recovered" or prev.state == "skipped") then
    skip = fmt("succeeded in run %s with the same spec", self.previous_run)
  end
  if skip then
    self:emit(events.finished(task, "skipped", {attempt = 0, spec_hash = spec_hash, message = skip}))
    step_state:task_started()
    return
  end
  local ctx = hooks_mod.context(self, {id = id, step = task.step})
  local attempt = 0
  local ok, err = pcall(function()
    while true do
      attempt = attempt + 1
      task.attempt = attempt
      local info = {id = id, kind = task.kind, name = task.name, step = task.step, attempt = attempt,
                    halt_on_error = task.halt_on_error}
      self:emit {event = "task_started", task = id, step = task.step, attempt = attempt}
      self.started_tasks[id] = true
      if attempt == 1 then step_state:task_started() end
      local hook_ok, hook_err = self.hooks:call("before_task", ctx, info)
      local done, message, details
      if not hook_ok then
        done, message, details = nil, hook_err, {}
      else
        done, message, details = self:perform(task, ctx)
      end
      details = details or {}
      if type(message) == "table" then details, message = message, nil end
      info.objects = details.objects
      local result = {ok = done and true or false, state = done and "succeeded" or "failed",
                      error = not done and message or nil, reason = details.reason, logs = details.logs,
                      objects = details.objects}
      local after_ok, after_err = self.hooks:call("after_task", ctx, info, result)
      if done and not after_ok then done, message = nil, after_err end
      if done then
        self:emit(events.finished(task, "succeeded", {attempt = attempt, spec_hash = spec_hash}))
        return
      end
      local decision, delay_or_cause = self:decide(task, ctx, info, message, attempt)
      local delay = decision == "retry" and delay_or_cause or nil
      if decision == "retry" then
        self:emit(events.progress(task, fmt("attempt %d failed: %s; retrying in %gs", attempt, tostring(message), delay),
                                  {phase = "retrying", attempt = attempt, retry = true}))
        if delay > 0 then sched.sleep(delay) end
      else
        if task.log_buffer then
          for _, l in ipairs(task.log_buffer) do
            self:emit {event = "log", task = id, step = task.step, pod = l.pod, message = l.line}
          end
        end
        self:emit(events.finished(task, "failed", {attempt = attempt, message = tostring(message),
          reason = details.reason, restarts = details.restarts, logs = details.logs and json.array(details.logs),
          halt = decision == "halt" or nil, spec_hash = spec_hash}))
        if decision == "halt" then
          self:halt(id, message, delay_or_cause)
        elseif (task.of or task.kind) == "services" and not self.dry_run then
          self.ignored[#self.ignored + 1] = {task = task, objects = details.objects}
        end
        return
      end
    end
  end)
  if not ok then
    local cancelled = is_cancel(err)
    local why = (self.interrupted or sched.interrupted()) and "interrupted" or (self.halted and ("halted by " .. self.halted.task))
      or (step_state.timed_out and fmt("step %s timed out", task.step)) or "cancelled"
    local state = step_state.timed_out and not self.halted and not (self.interrupted or sched.interrupted())
      and "failed" or "cancelled"
    if not cancelled then state, why = "failed", tostring(err) end
    self:emit(events.finished(task, state, {attempt = attempt, message = why, spec_hash = spec_hash}))
    if state == "failed" and task.halt_on_error then self:halt(id, why, "halt_on_error") end
  end
end

-- ---- steps ---------------------------------------------------------------------------------

local Step = {}
Step.__index = Step

function Step:task_started()
  self.started = self.started + 1
  if self.started >= self.total then self.all_started:set() end
end

function Run:start_step(index, step)
  local st = setmetatable({
    index = index, step = step, started = 0, total = #step.tasks,
    all_started = sched.event(), finished = sched.event(), group = sched.group(),
  }, Step)
  self.step_groups[#self.step_groups + 1] = st.group
  self.step_states[#self.step_states + 1] = st
  if st.total == 0 then st.all_started:set() end
  local background = step.wait_for_finish == false
  local info = {name = step.name, index = index, background = background}
  local ids, halts = {}, {}
  for i, t in ipairs(step.tasks) do ids[i], halts[t.id] = t.id, true end
  st.runner = sched.spawn(function()
    self:emit {event = "step_started", step = step.name, index = index, background = background or nil,
               tasks = json.array(ids)}
    -- Whatever stops the runner (a second signal cancels it), the step is recorded as finished.
    local ran, err = pcall(function()
      self:step_hook("before_step", info)
      local limit = step.max_parallel or self.concurrency
      local sem = limit and sched.semaphore(limit)
      for _, task in ipairs(plan.start_order(step.tasks, self.expected)) do
        local t = setmetatable({}, {__index = task})
        st.group:spawn(function()
          if sem then
            sem:acquire()
            local _ <close> = setmetatable({}, {__close = function() sem:release() end})
            self:run_task(st, t)
          else
            self:run_task(st, t)
          end
        end)
      end
      local timer
      if step.timeout then
        timer = sched.spawn(function()
          sched.sleep(step.timeout)
          st.timed_out = true
          st.group:cancel("step timeout")
        end)
      end
      local _ <close> = setmetatable({}, {__close = function() if timer then timer:cancel() end end})
      st.group:wait()
    end)
    st.all_started:set()
    if ran then self:step_hook("after_step", info) end
    local count = self.state:count(ids)
    local halted_here = self.halted ~= nil and halts[self.halted.task] == true
    self:emit {event = "step_finished", step = step.name, index = index, background = background or nil,
               state = ((count.cancelled or 0) > 0 or not ran) and "cancelled" or (count.failed or 0) > 0 and "failed"
                 or "succeeded", halt = halted_here or nil}
    st.finished:set()
    if not ran and not is_cancel(err) then error(err, 0) end
  end)
  return st
end

-- Calls before_step or after_step in the step's runner. A failure is logged and the step goes
-- on; so does a cancellation (a signal reaching a hook that computes): the run's own task then
-- cancels the step's tasks.
function Run:step_hook(name, info)
  local ok, hook_ok, _, err = pcall(self.hooks.call, self.hooks, name, self.ctx, info)
  if not ok then
    if not is_cancel(hook_ok) then error(hook_ok, 0) end
    hook_ok, err = false, "stopped by a signal"
  end
  if not hook_ok then self:emit {event = "log", step = info.name, hook = name, message = err} end
end

-- What the run_halting message says decided a halt.
local HALT_CAUSE = {halt_on_error = "halted by halt_on_error", on_error = "halted by the on_error hook"}

-- Stops the deployment: records the halt point, cancels every task in flight (background steps
-- too). Step runners then record their cancelled tasks and finish. cause: "halt_on_error" (the
-- template's policy) or "on_error" (the hook's answer).
function Run:halt(task_id, message, cause)
  if self.halted then return end
  self.halted = {task = task_id, message = tostring(message), cause = cause}
  local rollback = cause == "on_error" and self.rollback_wanted == task_id or nil
  self:emit {event = "run_halting", task = task_id, cause = cause, rollback = rollback,
             message = fmt("%s failed: %s%s", task_id, HALT_CAUSE[cause],
               rollback and ", which asked for a rollback to the last good run" or "")}
  for _, g in ipairs(self.step_groups) do g:cancel("halt") end
end

function Run:cancel_all(reason)
  for _, g in ipairs(self.step_groups) do g:cancel(reason) end
end

-- The end-of-run settle check: every ignored service failure gets one more wait; those that
-- became ready are reported recovered.
function Run:settle()
  if #self.ignored == 0 or self.settle_seconds <= 0 then return end
  local checks = {}
  for _, entry in ipairs(self.ignored) do
    checks[#checks + 1] = function()
      local task = entry.task
      self:emit(events.progress(task, fmt("settle check: waiting up to %gs for recovery", self.settle_seconds),
                                {phase = "settling", settling = true}))
      local all_ready = true
      for _, obj in ipairs(entry.objects or {}) do
        if obj.kind ~= "Service" then
          local ok = self.client:wait_ready(obj, {timeout = self.settle_seconds, health = self.health,
                                                  crashloop_restarts = math.huge})
          if not ok then all_ready = false break end
        end
      end
      if all_ready and entry.objects and #entry.objects > 0 then
        self:emit(events.finished(task, "recovered", {message = "ready after the settle check",
                                                      spec_hash = self:spec_hash(task)}))
      else
        self:emit(events.progress(task, "still failing after the settle check", {phase = "settling", settling = false}))
      end
    end
  end
  sched.all(checks)
end

function Run:run_info(reason)
  local started, objects = {}, {}
  for _, id in ipairs(self.state.order) do
    local rec = self.state.tasks[id]
    if self.started_tasks[id] then
      started[#started + 1] = {id = id, state = rec.state, attempts = rec.attempts, objects = rec.objects}
      for _, o in ipairs(rec.objects) do objects[#objects + 1] = o end
    end
  end
  return {run_id = self.run_id, app = self.model.app, workflow = self.workflow.name, namespace = self.namespace,
          started = started, objects = objects, reason = reason, halted = self.halted,
          rollback_of = self.rollback_of and self.rollback_of.run}
end

-- The ids of the run's tasks: the workflow's, then the prune task when the run prunes.
function Run:plan_ids()
  local ids = {}
  for _, step in ipairs(self.workflow.steps) do
    for _, t in ipairs(step.tasks) do ids[#ids + 1] = t.id end
  end
  if self.prune then ids[#ids + 1] = self.prune_id end
  return ids
end

-- The shared watches the workflow's waits will need, started with the run: their lists and
-- watch connections are made while the first tasks are being prepared, not in the first
-- burst of applies, and the first waits find them synced.
local WATCHED = {
  services = {{"apps/v1", "Deployment"}, {"apps/v1", "ReplicaSet"}, {"v1", "Pod"}},
  jobs = {{"batch/v1", "Job"}, {"v1", "Pod"}},
}

function Run:start_watches()
  if self.dry_run or not self.client then return end
  local started = {}
  for _, step in ipairs(self.workflow.steps) do
    for _, t in ipairs(step.tasks) do
      for _, gk in ipairs(WATCHED[t.of or t.kind] or {}) do
        local key = gk[1] .. "/" .. gk[2]
        if not started[key] then
          started[key] = true
          self.client:informer(gk[1], gk[2], self.namespace):start()
        end
      end
    end
  end
end

-- The workflow's shape for run_started: every step with its tasks, so that a reader of the
-- journal knows where a task that never started belonged.
function Run:plan_steps()
  local steps = {}
  for i, step in ipairs(self.workflow.steps) do
    local ids = {}
    for j, t in ipairs(step.tasks) do ids[j] = t.id end
    steps[i] = {step = step.name, background = step.wait_for_finish == false or nil,
                halt_on_error = step.halt_on_error or nil, tasks = json.array(ids)}
  end
  if self.prune then steps[#steps + 1] = {step = self.prune_id, tasks = json.array {self.prune_id}} end
  return json.array(steps)
end

-- ---- the prune step ------------------------------------------------------------------------

-- The prune step's and its one task's name (deploy --prune, the template's prune: true); a
-- rollback's is history.PREFIX .. M.PRUNE (it prunes what the run it goes back to did not have).
M.PRUNE = "prune"

-- What a prune after workflow keeps: engine.prune_scope(model, workflow, {run_id=, namespace=})
-- -> objects (what the workflow produces), {keep = every object of the template}: the
-- arguments of applyset's set:stale(objects, workflow.name, opts), for the prune step and for
-- whoever shows what it would delete.
function M.prune_scope(model, workflow, opts)
  local manifests = require "moonship.model.manifests"
  return manifests.for_workflow(model, workflow, opts), {keep = manifests.all(model, opts)}
end

-- This run's prune scope: a rollback's is the record it re-applies (what that run had: its jobs'
-- Jobs included, so that their earlier Jobs stay), any other run's is its workflow's.
function Run:prune_scope()
  if not self.rollback_of then
    return M.prune_scope(self.model, self.workflow, {run_id = self.run_id, namespace = self.namespace})
  end
  local objects = {}
  for _, step in ipairs(self.workflow.steps) do
    for _, t in ipairs(step.tasks) do table.move(t.objects or {}, 1, #(t.objects or {}), #objects + 1, objects) end
  end
  return objects, {}
end

-- What the prune task does: finds the members of the app's ApplySet that this workflow applied
-- and that neither it nor another workflow of the template produces any more, and deletes them
-- (waiting until each is gone), one task_progress per object. Returns true, message or nil,
-- message. pending (a set) holds the deletions the server accepted that are not over yet.
function Run:prune_members(task, pending)
  local produced, stale_opts = self:prune_scope()
  local stale, err = self.applyset:stale(produced, self.workflow.name, stale_opts)
  if not stale then return nil, err end
  if #stale == 0 then return true, "nothing to prune" end
  local ok, perr = self.applyset:prune(stale, {
    dry_run = self.dry_run, timeout = self.timeout or M.DEFAULT_TASK_TIMEOUT,
    on_requested = function(obj) pending[obj] = true end,
    on_deleted = function(obj, message)
      pending[obj] = nil
      self:emit(events.progress(task, message, {phase = "deleted", objects = json.array {object_ref(obj)}}))
    end,
  })
  if not ok then return nil, perr end
  return true, fmt("%s %d object%s", self.dry_run and "would delete" or "deleted", #stale, #stale == 1 and "" or "s")
end

-- "; deletion requested, not over: deployment/web, service/web" for a prune cut short.
local function pending_note(pending)
  local names = {}
  for obj in pairs(pending) do names[#names + 1] = obj.kind:lower() .. "/" .. obj.metadata.name end
  if #names == 0 then return "" end
  table.sort(names)
  return "; deletion requested, not over: " .. table.concat(names, ", ")
end

-- The prune step, after the workflow's steps: it runs only when every task succeeded (or
-- recovered); otherwise its task is recorded skipped. A signal while it runs cancels it and
-- the run is interrupted.
function Run:prune_step()
  local id = self.prune_id
  local task = {id = id, step = id}
  local failed = self.state:count(self:plan_ids()).failed or 0
  if failed > 0 then
    self:emit(events.finished(task, "skipped", {attempt = 0, message = fmt(
      "not run: %d task%s failed (pruning follows only a workflow that succeeded)", failed, failed == 1 and "" or "s")}))
    return
  end
  local index = (self.step_offset or 0) + #self.workflow.steps + 1
  self:emit {event = "step_started", step = id, index = index, tasks = json.array {id}}
  self:emit {event = "task_started", task = id, step = id, attempt = 1}
  self.started_tasks[id] = true
  local pending = {}
  local ran, ok, message = pcall(self.prune_members, self, task, pending)
  local state
  if not ran then
    if is_cancel(ok) then
      self.interrupted = true
      state, message = "cancelled", "interrupted"
    else
      state, message = "failed", tostring(ok)
    end
  else
    state = ok and "succeeded" or "failed"
  end
  if state ~= "succeeded" then message = message .. pending_note(pending) end
  self:emit(events.finished(task, state, {attempt = 1, message = message}))
  self:emit {event = "step_finished", step = id, index = index, state = state}
end

function Run:steps()
  local background = {}
  for i, step in ipairs(self.workflow.steps) do
    if self.halted or self.interrupted then break end
    local st = self:start_step((self.step_offset or 0) + i, step)
    self.current_step = st
    if step.wait_for_finish == false then
      st.all_started:wait()
      background[#background + 1] = st
    else
      st.finished:wait()
    end
  end
  for _, st in ipairs(background) do st.finished:wait() end
end

-- Runs the workflow's steps between its workflow hooks: before_workflow, the steps, the settle
-- check, cleanup (after a halt or an interrupt), after_workflow. Returns the state, the exit
-- code and the number of failed tasks. Emits no run_started/run_finished: a rollback after a
-- halt runs this inside the halted run's.
function Run:execute()
  local ids = self:plan_ids()
  self:start_watches()
  local before_ok, before_err = self:workflow_hook("before_workflow", self:run_info())
  if not before_ok and not self.interrupted then
    self.halted = {task = "before_workflow", message = before_err}
  end
  local ran, rerr = true, nil
  if not self.interrupted and not self.halted then ran, rerr = pcall(self.steps, self) end
  if not ran then
    if is_cancel(rerr) then
      self.interrupted = true
    else
      self.halted = self.halted or {task = "engine", message = tostring(rerr)}
      self:emit {event = "log", message = "engine error: " .. tostring(rerr)}
    end
    self:cancel_all(self.interrupted and "interrupted" or "halt")
    self:wait_steps()
  end
  if not self.halted and not self.interrupted then
    local sok, serr = pcall(self.settle, self)
    if not sok then
      if is_cancel(serr) then self.interrupted = true else self:emit {event = "log", message = tostring(serr)} end
    end
  end
  -- A halted or interrupted run never prunes: finish_open_tasks records the prune task below.
  if self.prune and not self.halted and not self.interrupted then self:prune_step() end
  local reason = self.interrupted and "interrupted" or (self.halted and "halted") or nil
  if reason then
    self:finish_open_tasks(reason == "interrupted" and "cancelled" or "skipped", "not started: run " .. reason, ids)
    self:workflow_hook("cleanup", self:run_info(reason), reason)
  end
  if not self:urgent() then self:workflow_hook("after_workflow", self:run_info(reason)) end

  local failed = self.state:count(ids).failed or 0
  if self.interrupted then return "interrupted", EXIT.interrupted, failed end
  if self.halted then return "halted", EXIT.halted, failed end
  if failed > 0 then return "failed", EXIT.ignored_failures, failed end
  return "succeeded", EXIT.ok, failed
end

-- A rollback's steps (this run's workflow re-applies self.rollback_of, a record): announced by
-- rollback_started, then run as any workflow's. reason: "command" (`moonship rollback`) or
-- "on_error" (after the halt of the run that asked for it). Returns what execute returns.
-- Once its steps succeeded, its prune step deletes what the record does not have.
function Run:run_rollback(reason)
  local target = self.rollback_of
  self:emit {event = "rollback_started", to = target.run, revision = target.revision, target_workflow = target.workflow,
             template_hash = target.template_hash, reason = reason, steps = #self.workflow.steps + (self.prune and 1 or 0),
             tasks = json.array(self:plan_ids()), plan = self:plan_steps()}
  return self:execute()
end

-- Runs the workflow; returns the result {run_id=, state=, exit_code=, journal=, rollback=}.
function Run:run_workflow()
  local j = self.journal
  local ids = self:plan_ids()
  self:emit {event = "run_started", app = self.model.app, namespace = self.namespace, env = self.env,
             steps = #self.workflow.steps + (self.prune and 1 or 0), tasks = json.array(ids), plan = self:plan_steps(),
             dry_run = self.dry_run or nil, time_scale = j.time_scale,
             resume_of = self.previous_run, rollback_of = self.rollback_of and self.rollback_of.run}
  -- The first save (the run has started, every task pending) overlaps the first steps instead
  -- of delaying them: the local journal already holds it, and the last save waits for it, so
  -- the saves land in order.
  local first_save = self.client and not self.dry_run and sched.spawn(function() self:save() end)
  local state, code, failed
  if self.rollback_of then
    state, code, failed = self:run_rollback("command")
  else
    state, code, failed = self:execute()
  end
  local reason = (state == "interrupted" or state == "halted") and state or nil
  -- The run's record, before run_finished (which ends what the views show); a rollback that
  -- the on_error hook asked for comes after it, with its own record.
  self:record(state)
  local rollback
  if self.rollback_wanted and state == "halted" and not self:urgent() then
    -- whatever stops it (a signal while it reads the history), the run still ends here
    local ok, res = pcall(self.roll_back, self)
    if ok then
      rollback = res
    else
      rollback = is_cancel(res) and "interrupted" or "failed"
      self:emit {event = "log", message = "rollback: " .. (is_cancel(res) and "stopped by a signal" or tostring(res))}
    end
  end
  self:emit {event = "run_finished", state = state, exit_code = code, failed = failed,
             halted_by = self.halted and self.halted.task or nil, rollback = rollback}
  if first_save then pcall(first_save.join, first_save) end
  if self.client and not self.dry_run then
    -- After a signal the user is waiting: the snapshot gets a few seconds (the local journal
    -- already has every event), and a second signal skips it.
    if reason == "interrupted" then
      if not self:urgent() then pcall(sched.timeout, INTERRUPTED_SAVE, self.save, self) end
    else
      self:save()
    end
  end
  j:close()
  return {run_id = self.run_id, state = state, exit_code = code, journal = j, halted = self.halted,
          rollback = rollback}
end

-- ---- the run history and rollbacks ----------------------------------------------------------

-- Why this run cannot roll back when on_error asks for it, or nil when it can.
function Run:rollback_unavailable()
  if self.dry_run then return "a dry run does not roll back" end
  if self.rollback_of then return "this run is a rollback already" end
  if not (self.recording and self.client) then return "this run keeps no run history" end
end

-- The record of this run (moonship.run.history): each step and task as planned, with the
-- objects it sent in its last attempt. A task skipped by --resume gets the objects it would
-- have sent (the same spec: what the cluster holds from the run it resumed); a rollback's
-- tasks are recorded as the tasks of the run it went back to.
function Run:record_document(state)
  local manifests = require "moonship.model.manifests"
  local steps = {}
  for i, step in ipairs(self.workflow.steps) do
    local tasks = {}
    for k, t in ipairs(step.tasks) do
      local rec = self.state.tasks[t.id] or {}
      local objects = self.applied[t.id]
      local prev = self.previous[t.id]
      if not objects and rec.state == "skipped" and prev and manifests.APPLIED_KINDS[t.kind] then
        local ok, rendered = pcall(manifests.for_task, self.model, t, {run_id = self.previous_run,
          namespace = self.namespace, attempt = math.max(1, prev.attempts or 1)})
        objects = ok and rendered or nil
      end
      local r = t.recorded or t
      tasks[k] = {id = r.id, kind = r.kind, name = r.name, state = rec.state or "pending",
                  halt_on_error = t.halt_on_error or nil, timeout = t.timeout, spec_hash = rec.spec_hash,
                  objects = json.array(objects or {})}
    end
    local r = step.recorded
    steps[i] = {step = r and r.step or step.name, background = step.wait_for_finish == false or nil,
                halt_on_error = step.halt_on_error or nil, timeout = step.timeout, max_parallel = step.max_parallel,
                tasks = json.array(tasks)}
  end
  local j = self.journal
  return {
    version = history.VERSION, run = self.run_id, app = self.model.app, env = self.recording.env,
    namespace = self.namespace, workflow = self.workflow.name, state = state,
    template_hash = self:template_hash(), template = self.recording.template,
    started_at = j.started_at, finished_at = os.date("!%Y-%m-%dT%H:%M:%SZ"),
    rollback_of = self.rollback_of and self.rollback_of.run, steps = json.array(steps),
  }
end

-- Records the run in the history (not a dry run; only with opts.record): a failure to do so
-- is a log event, never a change of the run's outcome. After a signal it gets a few seconds,
-- and none after a second one.
function Run:record(state)
  if not self.recording or self.dry_run or not self.client then return end
  local function write()
    local summary, err = history.write(self.client, self:record_document(state), {keep = self.recording.keep})
    if not summary then
      self:emit {event = "log", message = "history: could not record the run: " .. tostring(err)}
    elseif err then
      self:emit {event = "log", message = "history: " .. err}
    end
  end
  local ok, err
  if state == "interrupted" then
    if self:urgent() then return end
    ok, err = pcall(sched.timeout, INTERRUPTED_SAVE, write)
  else
    ok, err = pcall(write)
  end
  if not ok then self:emit {event = "log", message = "history: could not record the run: " .. tostring(err)} end
end

-- The rollback the on_error hook asked for, after the halted run's cleanup: the last good run's
-- record (the newest successful one of another run) re-applied as steps after the halted
-- run's, in the same journal, then recorded. Returns its outcome: "succeeded", "failed",
-- "halted", "interrupted", or "unavailable" (no good run is recorded; a log event says why).
function Run:roll_back()
  local rec = self.recording
  local q = {namespace = self.namespace, app = self.model.app, env = rec.env}
  local record, why
  local summaries, err = history.list(self.client, q)
  if not summaries then
    why = "cannot read the run history: " .. tostring(err)
  else
    record, why = history.rollback_record(self.client, self.namespace, summaries, {exclude_run = self.run_id})
  end
  if not record then
    self:emit {event = "log", message = fmt("rollback: nothing to roll back to in namespace %s: %s", self.namespace, why)}
    return "unavailable"
  end
  local sub = M.new {
    model = self.model, workflow = history.rollback_workflow(record), client = self.client, hooks = self.hooks,
    journal = self.journal, namespace = self.namespace, env = self.env, concurrency = self.concurrency,
    timeout = self.timeout, settle = self.settle_seconds, dry_run = self.dry_run, logs = self.logs,
    record = rec, step_offset = #self.workflow.steps,
  }
  local state = sub:run_rollback("on_error")
  sub:record(state)
  return state
end

-- Calls a workflow-level hook (before_workflow, cleanup, after_workflow) in the run's own task.
-- Returns whether it succeeded; a failure is logged. A signal that arrives while it runs stops
-- it and marks the run interrupted; after a second signal (urgent) no hook runs at all.
function Run:workflow_hook(name, ...)
  if self:urgent() then
    self.interrupted = true
    return false, "skipped after a second signal"
  end
  local ok, hook_ok, err, raw = pcall(self.hooks.call, self.hooks, name, self.ctx, ...)
  if not ok then
    if not is_cancel(hook_ok) then error(hook_ok, 0) end
    self.interrupted = true
    self:emit {event = "log", hook = name, message = "stopped by a signal"}
    return false, "stopped by a signal"
  end
  if not hook_ok then self:emit {event = "log", hook = name, message = raw} end
  return hook_ok, err
end

-- A second SIGINT/SIGTERM: the user wants the stop to be quick.
function Run:urgent()
  local _, count = sched.interrupted()
  return (count or 0) >= 2
end

-- Records every task of ids not in a final state (a halted or interrupted run's tasks that never
-- started, or whose runner was stopped) with `state`, so that no task is left unrecorded.
function Run:finish_open_tasks(state, message, ids)
  for _, id in ipairs(ids) do
    local rec = self.state:task(id)
    if not events.FINAL[rec.state] then
      self:emit(events.finished({id = id, step = rec.step}, state, {message = message, attempt = rec.attempts}))
    end
  end
end

-- After cancel_all: waits until every step runner has recorded its cancelled tasks and
-- finished its step. A second signal meanwhile stops the runners themselves; the journal's
-- finish_open_tasks then records what is left.
function Run:wait_steps()
  for _, st in ipairs(self.step_states) do
    if not pcall(st.finished.wait, st.finished) then
      for _, other in ipairs(self.step_states) do other.runner:cancel("interrupted") end
      return
    end
  end
end

function Run:save()
  local ok, err = pcall(self.journal.save, self.journal, self.client)
  if not ok then
    self:emit {event = "log", message = "journal: could not save to the cluster: " .. tostring(err)}
  end
end

-- engine.new{...} -> a run, as engine.run takes it (a rollback after a halt makes a second one).
-- opts.workflow.rollback_of: the record the workflow re-applies (moonship.run.history);
-- opts.step_offset: the steps of the run before it in the same journal.
function M.new(opts)
  local hooks = opts.hooks or hooks_mod.load(nil)
  local previous = {}
  if opts.resume then
    for _, t in ipairs(opts.resume.tasks or {}) do previous[t.id] = t end
  end
  local expected = plan.durations_from(opts.resume or opts.history)
  local self = setmetatable({
    model = opts.model, workflow = opts.workflow, client = opts.client, hooks = hooks,
    journal = opts.journal, namespace = opts.namespace, env = opts.env,
    run_id = opts.journal.run_id, concurrency = opts.concurrency, timeout = opts.timeout,
    settle_seconds = opts.settle or M.DEFAULT_SETTLE, dry_run = opts.dry_run, logs = opts.logs or "all",
    previous = previous, previous_run = opts.resume and opts.resume.run,
    recording = opts.record, rollback_of = opts.workflow.rollback_of, step_offset = opts.step_offset,
    step_groups = {}, step_states = {}, ignored = {}, started_tasks = {}, expected = expected,
    applied = {},           -- task id -> the objects its last attempt sent, for the record
    state = events.state(), -- the run's state, from the events it emitted
    -- a rollback prunes what the run it goes back to did not have
    prune = opts.prune or opts.workflow.rollback_of ~= nil,
    prune_id = opts.workflow.rollback_of and history.PREFIX .. M.PRUNE or M.PRUNE,
  }, Run)
  -- The app's ApplySet in this environment: every object applied is labelled a member.
  if opts.client then
    self.applyset = opts.applyset or applyset.new(opts.client, {app = opts.model.app, environment = opts.env,
                                                                namespace = opts.namespace})
  end
  self.health = hooks:health()
  self.ctx = hooks_mod.context(self)
  return self
end

-- engine.run{model=, workflow=, client=, hooks=, journal=, namespace=, env=, concurrency=,
-- timeout=, settle=, dry_run=, resume=snapshot, history=snapshot (the last run, for start
-- order), logs="all"|"failed"|"none", record={keep=, env=, template=} (record the run in the
-- run history: moonship.run.history), prune= (a prune step after the workflow), applyset=
-- (default: applyset.new for the app, env and namespace)} -> result
function M.run(opts)
  return M.new(opts):run_workflow()
end

return M
