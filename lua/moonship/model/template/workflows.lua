-- Workflows of a template: order_from / parallelize into steps of tasks, task references
-- checked against what the template defines, `services.all` / `jobs.all` expanded, and the
-- depends_on order check.
local diag = require "moonship.model.template.diag"
local fields = require "moonship.model.template.fields"

local fmt = string.format

local M = {}

-- Strict: a misspelt key here changes what a deployment does (`halt_on_eror: true` would deploy
-- with no halt protection), so an unknown key is an error, not a warning.
local WORKFLOW_SCHEMA = {known = fields.set {"name", "order_from", "parallelize"}, strict = true}
local STEP_SCHEMA = {known = fields.set {
  "step", "tasks", "wait_for_finish", "halt_on_error", "timeout", "max_parallel"}, strict = true}
local TASK_SCHEMA = {known = fields.set {"name", "halt_on_error", "timeout"}, strict = true}

local RELEASE_TASKS = fields.set {"remove_environment"}

-- A task entry: "services.web" or {name=, halt_on_error=, timeout=} (ext).
-- Returns {id=, kind=, name=, pos=, halt_on_error=(explicit or nil), timeout=} or nil.
local function read_entry(d, list, i)
  local entry = list[i]
  local ref = {}
  if type(entry) == "string" then
    ref.id, ref.pos = entry, diag.pos(list, i)
  elseif fields.is_map(entry) then
    fields.check_keys(d, entry, TASK_SCHEMA, " in a task entry")
    ref.id = fields.string(d, entry, "name")
    ref.pos = diag.pos(entry, "name")
    ref.halt_on_error = fields.boolean(d, entry, "halt_on_error")
    ref.timeout = fields.duration(d, entry, "timeout")
    if not ref.id then
      if not fields.present(entry, "name") then
        d:error(diag.pos(entry), "task entry has no 'name'")
      end
      return nil
    end
  else
    d:error(diag.pos(list, i), "a task must be a name like 'services.web' or a mapping {name, halt_on_error, timeout} (got %s)",
      fields.describe(entry))
    return nil
  end
  local kind, name = ref.id:match("^([%w_%-]+)%.(.+)$")
  if not kind then
    d:error(ref.pos, "invalid task '%s' (expected <kind>.<name>, like 'services.web')", ref.id)
    return nil
  end
  ref.kind, ref.name = kind, name
  return ref
end

-- Every task id the template makes possible, for suggestions.
local function known_ids(ctx)
  local ids = {}
  for _, s in ipairs(ctx.service_names) do ids[#ids + 1] = "services." .. s end
  for _, j in ipairs(ctx.job_names) do ids[#ids + 1] = "jobs." .. j end
  for _, m in ipairs(ctx.manifest_names) do ids[#ids + 1] = "manifests." .. m end
  for _, c in ipairs(ctx.cron_job_names or {}) do ids[#ids + 1] = "cron_jobs." .. c end
  for _, c in ipairs(ctx.chart_names or {}) do ids[#ids + 1] = "charts." .. c end
  ids[#ids + 1] = "release.remove_environment"
  return ids
end

-- Classifies a reference: "task" (keep), "all", "skip" (warned), or nil (an error was reported).
-- The units a `<kind>.<name>` task of a built-in kind refers to.
local UNIT_KINDS = {services = "services", jobs = "jobs", cron_jobs = "cron_jobs"}

local function classify(d, ctx, ref)
  local kind, name = ref.kind, ref.name
  if UNIT_KINDS[kind] then
    if name == "all" then return "all" end
    if ctx[kind][name] then return "task" end
    local skipped = ctx.skipped[ref.id]
    if skipped then
      d:warning(ref.pos, "task '%s' skipped: %s", ref.id, skipped)
      return "skip"
    end
  elseif kind == "manifests" then
    if ctx.manifests[name] then return "task" end
  elseif kind == "release" then
    if RELEASE_TASKS[name] then return "task" end
  elseif kind == "charts" and not ctx.custom_kinds.charts then
    -- Built in (helm), unless the hooks file installs charts its own way.
    if ctx.charts[name] then return "task" end
  else
    if ctx.custom_kinds[kind] then return "task" end
    local section = ctx.sections[kind]
    if section and section[name] then
      if ctx.has_hooks then
        d:warning(ref.pos, "task '%s' skipped: the hooks file defines no tasks.%s", ref.id, kind)
      else
        d:warning(ref.pos, "task '%s' skipped: no handler for %s tasks (define tasks.%s in a hooks file)",
          ref.id, kind, kind)
      end
      return "skip"
    end
    d:error(ref.pos, "no task handler for kind '%s' (define tasks.%s in the hooks file)", kind, kind)
    return nil
  end
  d:error(ref.pos, "unknown task '%s'%s", ref.id, diag.did_you_mean(ref.id, known_ids(ctx)))
  return nil
end

-- Why `<kind>.all` added no task: names of the kind that exist but are static sites, or
-- every one named elsewhere, or none at all.
local function all_matches_nothing(d, ctx, ref, wf_name, named)
  local what = ref.kind:gsub("_", " ")
  if ref.kind == "services" then
    local static = {}
    for _, n in ipairs(ctx.static_names or {}) do
      if not named.services[n] then static[#static + 1] = "'" .. n .. "'" end
    end
    if #static > 0 then
      local which = #static == 1 and ("service " .. static[1] .. " is a static site")
        or ("services " .. table.concat(static, ", ") .. " are static sites")
      d:warning(ref.pos, "'%s' matches nothing: %s (unsupported, skipped)%s", ref.id, which,
        #ctx.service_names > 0 and fmt("; every other service is named elsewhere in workflow '%s'", wf_name) or "")
      return
    end
  end
  local names = ref.kind == "services" and ctx.service_names or ref.kind == "jobs" and ctx.job_names
    or ctx.cron_job_names
  if #names == 0 then
    d:warning(ref.pos, "'%s' matches nothing: the template has no %s", ref.id, what)
  else
    d:warning(ref.pos, "'%s' matches nothing: every one of the %s is named elsewhere in workflow '%s'",
      ref.id, what, wf_name)
  end
end

-- Raw steps of a workflow: {name=, pos=, wait_for_finish=, halt_on_error=, timeout=,
-- max_parallel=, refs = {ref...}}.
local function read_steps(d, wf, wf_name)
  local has_order, has_par = fields.present(wf, "order_from"), fields.present(wf, "parallelize")
  if has_order and has_par then
    d:error(diag.pos(wf, "parallelize"),
      "workflow '%s' has both 'order_from' and 'parallelize' (use one)", wf_name)
    return nil
  elseif not has_order and not has_par then
    d:error(diag.pos(wf, "name"), "workflow '%s' has neither 'order_from' nor 'parallelize'", wf_name)
    return nil
  end
  local steps = {}
  if has_order then
    local list = fields.list(d, wf, "order_from")
    if not list then return nil end
    for i = 1, #list do
      local ref = read_entry(d, list, i)
      if ref then
        steps[#steps + 1] = {name = ref.id, pos = ref.pos, wait_for_finish = true,
          halt_on_error = false, refs = {ref}}
      end
    end
    return steps
  end
  local list = fields.list(d, wf, "parallelize")
  if not list then return nil end
  local seen = {}
  for i, st in ipairs(list) do
    if not fields.is_map(st) then
      d:error(diag.pos(list, i), "a step must be a mapping {step, tasks, ...} (got %s)",
        fields.describe(st))
    else
      fields.check_keys(d, st, STEP_SCHEMA, " in a step")
      local name = fields.string(d, st, "step", true)
      local pos = diag.pos(st, "step")
      if not name and not fields.present(st, "step") then
        d:error(diag.pos(st), "step %d of workflow '%s' has no name ('step')", i, wf_name)
      end
      if name and seen[name] then
        d:error(pos, "duplicate step '%s' in workflow '%s' (first at %s)", name, wf_name,
          diag.short_at(seen[name], pos))
        name = nil
      elseif name then
        seen[name] = pos
      end
      local step = {
        name = name, pos = pos,
        wait_for_finish = fields.boolean(d, st, "wait_for_finish"),
        halt_on_error = fields.boolean(d, st, "halt_on_error") or false,
        timeout = fields.duration(d, st, "timeout"),
        max_parallel = fields.integer(d, st, "max_parallel", 1),
        refs = {},
      }
      if step.wait_for_finish == nil then step.wait_for_finish = true end
      local tasks = fields.list(d, st, "tasks")
      if tasks then
        if #tasks == 0 then
          d:error(diag.pos(st, "tasks"), "step '%s' has no tasks", name or "?")
        end
        for t = 1, #tasks do step.refs[#step.refs + 1] = read_entry(d, tasks, t) end
      elseif not fields.present(st, "tasks") then
        d:error(pos, "step '%s' has no 'tasks'", name or "?")
      end
      if name then steps[#steps + 1] = step end
    end
  end
  return steps
end

local function make_task(ref, kind, name, step, ctx)
  local halt = ref.halt_on_error
  if halt == nil then
    local job = kind == "jobs" and ctx.jobs[name]
    halt = (job and job.halt_on_error) or step.halt_on_error
  end
  local section = ctx.sections[kind]
  return {
    id = kind .. "." .. name, kind = kind, name = name, halt_on_error = halt,
    timeout = ref.timeout, pos = ref.pos, spec = section and section[name] or nil,
  }
end

-- A service deployed in a later step than a service that depends on it crash-loops until then.
local function check_depends_on(d, ctx, wf)
  local step_of = {}
  for i, step in ipairs(wf.steps) do
    for _, task in ipairs(step.tasks) do
      if task.kind == "services" and not step_of[task.name] then step_of[task.name] = i end
    end
  end
  for i, step in ipairs(wf.steps) do
    for _, task in ipairs(step.tasks) do
      local service = task.kind == "services" and ctx.services[task.name]
      for _, dep in ipairs(service and service.depends_on or {}) do
        local j = step_of[dep]
        if j and j > i then
          d:warning(task.pos,
            "%s depends on '%s', which deploys in a later step of workflow '%s' ('%s'): it may crash-loop until step %d",
            task.id, dep, wf.name, wf.steps[j].name, j)
        end
      end
    end
  end
end

-- Builds the workflows. ctx = {services = {name->service}, jobs = {name->job}, cron_jobs =,
-- manifests = {name->manifest}, charts = {name->chart}, service_names, static_names, job_names,
-- cron_job_names, manifest_names, chart_names (file order), skipped = {task id -> reason},
-- custom_kinds = {kind->true}, sections = {kind -> {name->spec}}, has_hooks = bool}.
function M.build(d, list, ctx)
  local workflows, by_name = {}, {}
  local seen = {}
  for i, wf in ipairs(list) do
    if not fields.is_map(wf) then
      d:error(diag.pos(list, i), "a workflow must be a mapping {name, order_from | parallelize} (got %s)",
        fields.describe(wf))
      goto continue
    end
    fields.check_keys(d, wf, WORKFLOW_SCHEMA, " in a workflow")
    local name = fields.string(d, wf, "name", true)
    local pos = diag.pos(wf, "name")
    if not name then
      if not fields.present(wf, "name") then d:error(diag.pos(wf), "workflow %d has no 'name'", i) end
      goto continue
    end
    if seen[name] then
      d:error(pos, "duplicate workflow '%s' (first at %s)", name, diag.short_at(seen[name], pos))
      goto continue
    end
    seen[name] = pos
    local raw_steps = read_steps(d, wf, name)
    if not raw_steps then goto continue end

    -- References first, so `.all` knows every name used anywhere in the workflow.
    local first_ref, named = {}, {services = {}, jobs = {}, cron_jobs = {}}
    for _, step in ipairs(raw_steps) do
      for _, ref in ipairs(step.refs) do
        if first_ref[ref.id] then
          d:error(ref.pos, "task '%s' appears twice in workflow '%s' (first at %s)", ref.id, name,
            diag.short_at(first_ref[ref.id], ref.pos))
          ref.class = nil
        else
          first_ref[ref.id] = ref.pos
          ref.class = classify(d, ctx, ref)
          if named[ref.kind] and ref.name ~= "all" then named[ref.kind][ref.name] = true end
        end
      end
    end

    local workflow = {name = name, pos = pos, steps = {}}
    for _, raw in ipairs(raw_steps) do
      local step = {name = raw.name, pos = raw.pos, wait_for_finish = raw.wait_for_finish,
        halt_on_error = raw.halt_on_error, timeout = raw.timeout, max_parallel = raw.max_parallel,
        tasks = {}}
      for _, ref in ipairs(raw.refs) do
        if ref.class == "task" then
          step.tasks[#step.tasks + 1] = make_task(ref, ref.kind, ref.name, step, ctx)
        elseif ref.class == "all" then
          local names = ref.kind == "services" and ctx.service_names or ref.kind == "jobs" and ctx.job_names
            or ctx.cron_job_names
          local added = 0
          for _, n in ipairs(names) do
            if not named[ref.kind][n] then
              step.tasks[#step.tasks + 1] = make_task(ref, ref.kind, n, step, ctx)
              added = added + 1
            end
          end
          if added == 0 then all_matches_nothing(d, ctx, ref, name, named) end
        end
      end
      -- A step left empty by skipped or empty references has nothing to run.
      if #step.tasks > 0 or #raw.refs == 0 then workflow.steps[#workflow.steps + 1] = step end
    end
    check_depends_on(d, ctx, workflow)
    workflows[#workflows + 1] = workflow
    by_name[name] = workflow
    ::continue::
  end
  return workflows, by_name
end

-- workflow(model, name) -> workflow | nil, message (with a suggestion).
function M.find(model, name)
  local wf = model.workflow_by_name[name]
  if wf then return wf end
  local names = {}
  for _, w in ipairs(model.workflows) do names[#names + 1] = w.name end
  local hint = diag.did_you_mean(name, names)
  if hint == "" then
    hint = #names > 0 and fmt(" (workflows: %s)", table.concat(names, ", ")) or " (the template has no workflows)"
  end
  return nil, fmt("unknown workflow '%s'%s", name, hint)
end

return M
