-- Lua hooks: loading a hooks file, calling its functions safely (a hook that raises or runs past
-- its instruction budget fails its task with a traceback, never the tool), the ctx they get, and
-- health rules (hook functions and Argo CD health.lua scripts).
local json = require "moonship.json"
local sched = require "moonship.sched"
local diag = require "moonship.model.template.diag"
local fs = require "moonship.fs"

local fmt = string.format

local M = {}

-- The names a hooks file may define, in the order messages list them.
local KNOWN_ORDER = {"before_workflow", "after_workflow", "before_step", "after_step", "before_task", "after_task",
                     "retry", "on_error", "cleanup", "health", "tasks", "health_dir", "instruction_budget"}
local KNOWN = {}
for _, name in ipairs(KNOWN_ORDER) do KNOWN[name] = true end

-- Hooks-file fields that are settings, not functions.
local SETTINGS = {health = true, tasks = true, health_dir = true, instruction_budget = true}

-- What on_error may answer (nil too: the template's policy). README "Hooks".
M.ON_ERROR = {ignore = true, halt = true, retry = true, rollback = true}

-- Instructions a hook may run before it is stopped (a hooks file's instruction_budget sets its own).
M.INSTRUCTION_BUDGET = 200000000

local Hooks = {}
Hooks.__index = Hooks

-- The line where the hooks file defines field `name`: a function's own first line, else the
-- first line of the source that assigns it (comments aside); nil when neither tells.
local function field_line(source, display, name, value)
  if type(value) == "function" then
    local info = debug.getinfo(value, "S")
    if info.source == "@" .. display and info.linedefined > 0 then return info.linedefined end
  end
  if type(name) ~= "string" then return nil end
  local quoted = name:gsub("%p", "%%%0")
  local n = 0
  for line in (source .. "\n"):gmatch("([^\n]*)\n") do
    n = n + 1
    local code = line:gsub("%-%-.*$", "")
    if code:find("%f[%w_]" .. quoted .. "%s*=") or code:find("%[%s*[\"']" .. quoted .. "[\"']%s*%]%s*=") then
      return n
    end
  end
end

-- A Lua error message "display:12: text" as its line and text.
local function split_lua_error(display, message)
  message = tostring(message)
  local prefix = display .. ":"
  if message:sub(1, #prefix) == prefix then
    local line, text = message:sub(#prefix + 1):match("^(%d+): (.*)$")
    if line then return tonumber(line), text end
  end
  return nil, message
end

-- "file:line: error: message" (or "file: error: message" without a line), the shape of every
-- other input error.
local function problem_text(p)
  return p.line and fmt("%s:%d: error: %s", p.file, p.line, p.message) or fmt("%s: error: %s", p.file, p.message)
end

-- hooks.load(path [, display]) -> hooks, or nil, message, problems. A nil path gives the empty
-- set of hooks. Every problem of the file is reported, each at its line when the file tells:
-- problems = {{file = display, line = n | nil, severity = "error", message = text}}, and message
-- is their lines (problem_text) joined by newlines. display: the path as the user wrote it
-- (default path), which the messages and the hooks' tracebacks name.
function M.load(path, display)
  local self = setmetatable({path = path, def = {}, health_rules = {}, budget = M.INSTRUCTION_BUDGET}, Hooks)
  if not path then return self end
  display = display or path
  local problems = {}
  local function problem(line, f, ...)
    problems[#problems + 1] = {file = display, line = line, severity = "error", message = fmt(f, ...)}
  end
  local function failed()
    table.sort(problems, function(a, b) return (a.line or 0) < (b.line or 0) end)
    local lines = {}
    for i, p in ipairs(problems) do lines[i] = problem_text(p) end
    return nil, table.concat(lines, "\n"), problems
  end
  local source, rerr = fs.read(path)
  if not source then
    problem(nil, "cannot read the hooks file: %s", rerr)
    return failed()
  end
  local chunk, err = load(source, "@" .. display, "t")
  if not chunk then
    local line, text = split_lua_error(display, err)
    problem(line, "%s", text)
    return failed()
  end
  local ok, def = pcall(chunk)
  if not ok then
    local line, text = split_lua_error(display, def)
    problem(line, "%s", text)
    return failed()
  end
  if type(def) ~= "table" then
    problem(nil, "a hooks file must return a table (got %s)", type(def))
    return failed()
  end
  for k, v in pairs(def) do
    local line = field_line(source, display, k, v)
    if not KNOWN[k] then
      local hint = type(k) == "string" and diag.did_you_mean(k, KNOWN_ORDER) or ""
      problem(line, "unknown hook '%s'%s", tostring(k),
        hint ~= "" and hint or (" (known: " .. table.concat(KNOWN_ORDER, ", ") .. ")"))
    elseif not SETTINGS[k] and type(v) ~= "function" then
      problem(line, "hook '%s' must be a function (got %s)", k, type(v))
    elseif (k == "health" or k == "tasks") and type(v) ~= "table" then
      problem(line, "'%s' must be a table of functions (got %s)", k, type(v))
    elseif k == "health_dir" and type(v) ~= "string" then
      problem(line, "health_dir must be a directory's path (got %s)", type(v))
    elseif k == "instruction_budget" and (math.type(v) ~= "integer" or v < 1) then
      problem(line, "instruction_budget must be a positive integer")
    end
  end
  for _, section in ipairs {"health", "tasks"} do
    if type(def[section]) == "table" then
      for key, fn in pairs(def[section]) do
        if type(fn) ~= "function" then
          problem(field_line(source, display, key, fn), "%s['%s'] must be a function (got %s)", section, tostring(key),
            type(fn))
        end
      end
    end
  end
  if #problems > 0 then return failed() end
  self.def = def
  self.budget = def.instruction_budget or M.INSTRUCTION_BUDGET
  if def.health_dir then
    self.health_dir = fs.join(fs.dirname(path), def.health_dir)
  end
  for key, fn in pairs(def.health or {}) do
    self.health_rules[key] = M.wrap_health_hook(self, key, fn)
  end
  return self
end

-- The custom task kinds the hooks file defines, as a set.
function Hooks:custom_kinds()
  local kinds = {}
  for k in pairs(self.def.tasks or {}) do kinds[k] = true end
  return kinds
end

function Hooks:has(name) return self.def[name] ~= nil end

-- Runs fn(...) under an instruction budget: {true, results...} or {false, error}; a
-- cancellation is raised again, never returned. The scheduler's guard (sched.guard) stops it
-- once it has run `budget` instructions, or when a signal arrives or its task is cancelled (a
-- timeout, a halt), which it can hear while the hook computes because it lets the loop run
-- every few milliseconds; a pcall inside the hook cannot get past the stop.
local function budgeted(budget, fn, ...)
  local r = table.pack(sched.guard(budget, fn, ...))
  -- a cancellation passes through hooks untouched: the task it belongs to is being stopped
  if not r[1] and sched.is_cancelled(r[2]) then error(r[2], 0) end
  return r
end

-- The log functions of the contexts M.context made: ctx -> fn(hook, fmt, ...).
local loggers = setmetatable({}, {__mode = "k"})

-- The ctx a hook gets: the caller's, whose ctx.log marks its lines as this hook's (the log
-- event's `hook` field). What a hook stores in it goes to the caller's ctx, so the hooks of a
-- task share it as before.
local function hook_ctx(ctx, hook)
  local log = type(ctx) == "table" and loggers[ctx]
  if not log then return ctx end
  return setmetatable({log = function(...) log(hook, ...) end}, {__index = ctx, __newindex = ctx})
end

-- hooks:call(name, ctx, ...) -> true, results... or false, "hook <name>: <error with
-- traceback>", "<error with traceback>". A missing hook returns true and nothing.
function Hooks:call(name, ctx, ...)
  local fn = self.def[name]
  if not fn then return true end
  local r = budgeted(self.budget, fn, hook_ctx(ctx, name), ...)
  if not r[1] then
    return false, fmt("hook %s: %s", name, tostring(r[2])), tostring(r[2])
  end
  return true, table.unpack(r, 2, r.n)
end

-- A custom task: hooks.tasks[kind](ctx, name, spec) -> true | nil, message.
function Hooks:run_task(kind, ctx, name, spec)
  local fn = self.def.tasks and self.def.tasks[kind]
  if not fn then return nil, fmt("no task handler for kind '%s'", kind) end
  local r = budgeted(self.budget, fn, hook_ctx(ctx, "tasks." .. kind), name, spec)
  if not r[1] then
    return nil, fmt("task %s.%s: %s", kind, name, tostring(r[2]))
  end
  if r[2] == nil and r[3] ~= nil then return nil, tostring(r[3]) end
  if r[2] == false then return nil, tostring(r[3] or "task handler returned false") end
  return true, r[2]
end

-- ---- health rules --------------------------------------------------------------------------

local HOOK_STATES = {healthy = "ready", progressing = "progressing", degraded = "failed"}

-- A hooks-file health rule: fn(obj) -> "healthy" | "progressing" | "degraded", message.
function M.wrap_health_hook(hooks, key, fn)
  return function(obj)
    local r = budgeted(hooks.budget, fn, obj)
    if not r[1] then return "failed", fmt("health[%s]: %s", key, tostring(r[2])), {reason = "HealthHookError"} end
    local state = HOOK_STATES[r[2]]
    if not state then
      return "failed", fmt("health[%s] returned %s (want healthy, progressing or degraded)", key, tostring(r[2])),
        {reason = "HealthHookError"}
    end
    return state, r[3] or r[2], {reason = state == "failed" and "Degraded" or nil}
  end
end

-- Argo CD health.lua statuses, mapped as moonship documents it.
local ARGO_STATES = {
  Healthy = "ready", Suspended = "ready", Progressing = "progressing", Missing = "progressing",
  Unknown = "progressing", Degraded = "failed",
}

-- The object as Argo CD's scripts see it: an explicit null (json.null/yaml.null) is nil, as Go's
-- nil is in Argo CD (`if obj.status ~= nil` must not be true for `status: null`).
local function without_nulls(v)
  if v == json.null then return nil end
  if type(v) ~= "table" then return v end
  local out = {}
  for k, x in pairs(v) do out[k] = without_nulls(x) end
  return out
end

-- The environment a health.lua script sees: a restricted set of libraries, the Lua 5.1
-- spellings the scripts use, and the object (without its nulls) as the global `obj`.
local function argo_env(obj)
  obj = without_nulls(obj)
  local os_subset = {time = os.time, date = os.date, clock = os.clock}
  local table_51 = setmetatable({getn = function(t) return #t end}, {__index = table})
  return {
    obj = obj, pairs = pairs, ipairs = ipairs, next = next, type = type, tostring = tostring,
    tonumber = tonumber, string = string, table = table_51, math = math, os = os_subset,
    error = error, pcall = pcall, select = select, unpack = table.unpack,
    require = function(name)
      if name == "os" then return os_subset end
      if name == "string" then return string end
      if name == "table" then return table_51 end
      error("health.lua may not require '" .. tostring(name) .. "'")
    end,
  }
end

-- Compiles an Argo CD health.lua script into a readiness rule.
function M.argo_rule(source, chunkname, budget)
  local compiled, err = load(source, "@" .. chunkname, "t", {})
  if not compiled then return nil, err end
  return function(obj)
    local env = argo_env(obj)
    local fn = load(source, "@" .. chunkname, "t", env)
    local r = budgeted(budget or M.INSTRUCTION_BUDGET, fn)
    if not r[1] then return "failed", fmt("%s: %s", chunkname, tostring(r[2])), {reason = "HealthScriptError"} end
    local res = r[2]
    if res == nil then return "progressing", "health script returned nothing", {} end
    if type(res) ~= "table" then
      return "failed", fmt("%s returned a %s, not a table", chunkname, type(res)), {reason = "HealthScriptError"}
    end
    -- an unknown status counts as Unknown; a script that gives no message means ""
    local status = ARGO_STATES[res.status] and res.status or "Unknown"
    local state = ARGO_STATES[status]
    return state, res.message ~= nil and tostring(res.message) or "",
      {reason = state == "failed" and status or nil, health_status = status}
  end
end

-- A folder name of a health_dir as a Lua pattern: "_" is Argo CD's wildcard ("_" alone: any
-- group or kind; "_.crossplane.io": any group ending in .crossplane.io). nil for a plain name.
local function wildcard_pattern(name)
  if not name:find("_", 1, true) then return nil end
  return "^" .. name:gsub("[%^%$%(%)%%%.%[%]%*%+%-%?]", "%%%0"):gsub("_", ".*") .. "$"
end

-- The wildcard folders of dir, most specific first (the most literal characters): {name, pattern}.
local function wildcard_folders(dir)
  local out = {}
  for _, name in ipairs(fs.list(dir) or {}) do
    local pattern = wildcard_pattern(name)
    if pattern then out[#out + 1] = {name = name, pattern = pattern} end
  end
  table.sort(out, function(a, b)
    local la, lb = #a.name:gsub("_", ""), #b.name:gsub("_", "")
    if la ~= lb then return la > lb end
    return a.name < b.name
  end)
  return out
end

-- The health.lua paths that may hold the rule of group/kind, in the order Argo CD tries them:
-- the exact group and kind; the exact group's "_" kind; then each wildcard group folder that
-- matches, most specific first, with the exact kind, then its wildcard kinds. The core group
-- ("") has no folder of its own: its kinds sit at the top, beside the groups.
local function candidate_paths(dir, groups, group, kind)
  local paths = {}
  local gdir = group == "" and dir or (dir .. "/" .. group)
  paths[#paths + 1] = gdir .. "/" .. kind .. "/health.lua"
  if group ~= "" then
    for _, k in ipairs(wildcard_folders(gdir)) do
      if kind:match(k.pattern) then paths[#paths + 1] = gdir .. "/" .. k.name .. "/health.lua" end
    end
  end
  for _, g in ipairs(groups) do
    if group:match(g.pattern) then
      paths[#paths + 1] = dir .. "/" .. g.name .. "/" .. kind .. "/health.lua"
      for _, k in ipairs(wildcard_folders(dir .. "/" .. g.name)) do
        if kind:match(k.pattern) then paths[#paths + 1] = dir .. "/" .. g.name .. "/" .. k.name .. "/health.lua" end
      end
    end
  end
  return paths
end

-- The readiness rules from health.lua scripts under dir (Argo CD's resource_customizations
-- layout) for the kinds asked about, keyed "<group>/<Kind>" (the core group is ""). Looked up
-- lazily and cached, most specific script first.
function M.health_dir_rules(dir, budget)
  local cache, groups = {}, nil
  return setmetatable({}, {__index = function(_, key)
    if cache[key] ~= nil then return cache[key] or nil end
    local group, kind = key:match("^(.-)/([^/]+)$")
    groups = groups or wildcard_folders(dir)
    for _, path in ipairs(candidate_paths(dir, groups, group, kind)) do
      local source = fs.read(path)
      if source then
        local rule, err = M.argo_rule(source, path, budget)
        if not rule then -- a script that does not compile fails the wait on that kind, with its file:line
          rule = function() return "failed", err, {reason = "HealthScriptError", health_status = "Degraded"} end
        end
        cache[key] = rule
        return rule
      end
    end
    cache[key] = false
    return nil
  end})
end

-- The readiness rules of these hooks: hook functions win over health_dir scripts.
function Hooks:health()
  local dir_rules = self.health_dir and M.health_dir_rules(self.health_dir, self.budget)
  local rules = self.health_rules
  return setmetatable({}, {__index = function(_, key)
    return rules[key] or (dir_rules and dir_rules[key]) or nil
  end})
end

-- ---- ctx -----------------------------------------------------------------------------------

-- The ctx every hook gets: the client, logging into the run's events, sleeping, spawning,
-- running processes, and what the run is. M.context(run) is the workflow's and the steps';
-- M.context(run, {id=, step=}) a task's: ctx.task is its id, and ctx.log's lines carry it.
function M.context(run, task)
  local ctx = {
    kube = run.client, run_id = run.run_id, app = run.model.app, env = run.env,
    namespace = run.namespace, workflow = run.workflow and run.workflow.name,
    sleep = sched.sleep, spawn = sched.spawn, now = sched.now, task = task and task.id,
  }
  local function log(hook, message, ...)
    if select("#", ...) > 0 then message = fmt(message, ...) end
    run.journal:emit {event = "log", task = task and task.id, step = task and task.step, hook = hook,
                      message = tostring(message)}
  end
  loggers[ctx] = log
  function ctx.log(...) log(nil, ...) end
  function ctx.exec(argv, opts)
    local process = require "moonship.process"
    local spec = {argv = argv}
    for k, v in pairs(opts or {}) do spec[k] = v end
    return process.run(spec)
  end
  return ctx
end

return M
