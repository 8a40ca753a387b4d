-- The objects moonship applies for an app and environment, as an ApplySet (KEP-3659, what
-- `kubectl apply --prune --applyset` uses): every member carries the label
-- applyset.kubernetes.io/part-of=<id>, and a parent Secret in the namespace,
-- moonship-applyset-<app>[-<env>], carries applyset.kubernetes.io/id=<id>, the tooling
-- (moonship/<version>) and the group-kinds (and other namespaces) its members may be in, so
-- that any tool can list the set. Each member also names the workflow that applied it last
-- (moonship.dev/workflow): pruning after a workflow considers only what that workflow applied.
--
--   local set = applyset.new(client, {app=, environment=, namespace=})   -- no request
--   set:check()                                 -> true | nil, err   (another tool's parent?)
--   set:label(obj, workflow)                    -> obj, labelled as a member
--   set:record(objects)                         -> true | nil, err   (before applying them)
--   set:forget()                                   (the parent may be gone: read it again)
--   set:stale(objects, workflow, {keep=})       -> {live object...} | nil, err   (read only)
--   set:prune(stale, {on_deleted=, timeout=, dry_run=}) -> true | nil, err
local core = require "moonship.core"
local codec = core.codec
local sched = require "moonship.sched"
local sha256 = require "moonship.sha256"

local fmt, concat, sort = string.format, table.concat, table.sort

local M = {}

-- Label and annotation keys of the ApplySet specification (KEP-3659).
M.PART_OF = "applyset.kubernetes.io/part-of"
M.ID = "applyset.kubernetes.io/id"
M.TOOLING = "applyset.kubernetes.io/tooling"
M.GROUP_KINDS = "applyset.kubernetes.io/contains-group-kinds"
M.NAMESPACES = "applyset.kubernetes.io/additional-namespaces"
-- moonship's own: the workflow that applied a member last, and a Job's job (manifests.lua).
M.WORKFLOW = "moonship.dev/workflow"
M.JOB_LABEL = "moonship.dev/job"

M.TOOL = "moonship"
-- The parent is written with a field manager of its own, as kubectl writes its parents with
-- "kubectl-applyset": the members' manager ("moonship") never owns the parent's fields.
M.FIELD_MANAGER = "moonship-applyset"
M.PARENT_PREFIX = "moonship-applyset-"
local CONFLICT_RETRIES = 5
local DEFAULT_TIMEOUT = 600

local Set = {}
Set.__index = Set
M.Set = Set

-- "Kind.group", or "Kind" for the core group: the spelling of contains-group-kinds.
local function group_of(api_version)
  return api_version:match("^(.*)/") or ""
end

local function group_kind(obj)
  local group = group_of(obj.apiVersion)
  return group == "" and obj.kind or (obj.kind .. "." .. group)
end
M.group_kind = group_kind

local function split_group_kind(gk)
  local kind, group = gk:match("^([^.]+)%.(.+)$")
  if kind then return group, kind end
  return "", gk
end

-- A DNS-1123 piece of a name from any text (an app name may hold '_' and capitals, an
-- environment anything): lowercase, other characters '-', no '-' at the ends.
local function dns_piece(text)
  return (tostring(text):lower():gsub("[^a-z0-9%-]", "-"):gsub("^%-+", ""):gsub("%-+$", ""))
end

-- The parent's name: moonship-applyset-<app>[-<env>], made a valid object name; when making it
-- valid changed the text, a hash of the original keeps two such names apart.
function M.parent_name(app, environment)
  local raw = environment and (app .. "-" .. environment) or app
  local piece = dns_piece(raw)
  if piece ~= raw or #piece > 200 then
    piece = piece:sub(1, 200):gsub("%-+$", "") .. "-" .. sha256.hex(raw):sub(1, 8)
  end
  return M.PARENT_PREFIX .. piece
end

-- The KEP's id of a parent: "applyset-" .. base64url(sha256(name.namespace.kind.group)) .. "-v1",
-- unpadded (Go's base64.RawURLEncoding).
function M.id(name, namespace, kind, group)
  local b64 = codec.base64_encode(sha256.digest(concat({name, namespace, kind, group}, ".")))
  return "applyset-" .. b64:gsub("%+", "-"):gsub("/", "_"):gsub("=+$", "") .. "-v1"
end

-- applyset.new(client, {app=, environment=, namespace=}) -> set. Makes no request.
function M.new(client, opts)
  assert(type(opts) == "table" and type(opts.app) == "string" and type(opts.namespace) == "string",
    "applyset.new: opts needs app and namespace")
  local name = M.parent_name(opts.app, opts.environment)
  local self = setmetatable({
    client = client, app = opts.app, environment = opts.environment, namespace = opts.namespace,
    parent = {apiVersion = "v1", kind = "Secret", name = name, namespace = opts.namespace},
    lock = sched.semaphore(1),
    recorded = nil,   -- {kinds = {gk = true}, namespaces = {ns = true}}: what the live parent covers
  }, Set)
  self.id = M.id(name, opts.namespace, "Secret", "")
  self.tooling = M.TOOL .. "/" .. core.version
  return self
end

-- set:label(obj, workflow) -> obj, with the part-of label and the workflow annotation.
function Set:label(obj, workflow)
  local md = obj.metadata
  md.labels = type(md.labels) == "table" and md.labels or {}
  md.labels[M.PART_OF] = self.id
  if workflow then
    md.annotations = type(md.annotations) == "table" and md.annotations or {}
    md.annotations[M.WORKFLOW] = workflow
  end
  return obj
end

local function describe_parent(self)
  return fmt("applyset parent secret/%s in namespace %s", self.parent.name, self.namespace)
end

local function split_list(text)
  local out = {}
  for item in tostring(text or ""):gmatch("[^,]+") do out[item] = true end
  return out
end

local function sorted_keys(set)
  local out = {}
  for k in pairs(set) do out[#out + 1] = k end
  sort(out)
  return out
end

-- The live parent, checked as the KEP asks (tooling refuses another tool's set): the parent,
-- or false when there is none, or nil, message.
function Set:fetch_parent()
  local p = self.parent
  local live, err, code = self.client:get(p.apiVersion, p.kind, p.name, p.namespace)
  if not live then
    if code == "not_found" then return false end
    return nil, fmt("%s: %s", describe_parent(self), err)
  end
  local md = live.metadata or {}
  local ann, labels = md.annotations or {}, md.labels or {}
  local tooling = ann[M.TOOLING]
  if not tooling then
    return nil, fmt("%s exists without the annotation %s: not an ApplySet moonship made, left alone",
      describe_parent(self), M.TOOLING)
  end
  local tool = tooling:match("^(.*)/[^/]*$") or tooling
  if tool ~= M.TOOL then
    return nil, fmt("%s is managed by the tooling %q, not %s: left alone", describe_parent(self), tool, M.TOOL)
  end
  if labels[M.ID] ~= self.id then
    return nil, fmt("%s has the label %s=%s, want %s", describe_parent(self), M.ID, tostring(labels[M.ID]), self.id)
  end
  return live
end

-- What the live parent covers: {kinds = {gk = true}, namespaces = {ns = true}} (the parent's
-- own namespace included).
local function covered(self, live)
  local ann = live and live.metadata.annotations or {}
  local namespaces = split_list(ann[M.NAMESPACES])
  namespaces[self.namespace] = true
  return {kinds = split_list(ann[M.GROUP_KINDS]), namespaces = namespaces}
end

-- set:check() -> true | nil, err: whether this set may be used: its parent is missing or
-- moonship's (a run asks before its first step, so that another tool's parent stops it before
-- anything is applied). One request.
function Set:check()
  local live, err = self:fetch_parent()
  if live == nil then return nil, err end
  -- what the parent covers already: a run that applies nothing new writes it no more
  if live then self.recorded = covered(self, live) end
  return true
end

-- The group-kinds and namespaces of objects (a cluster-scoped object has no namespace).
local function needs(objects)
  local kinds, namespaces = {}, {}
  for _, obj in ipairs(objects) do
    kinds[group_kind(obj)] = true
    local ns = obj.metadata.namespace
    if ns and ns ~= "" then namespaces[ns] = true end
  end
  return kinds, namespaces
end

local function covers(have, kinds, namespaces)
  if not have then return false end
  for k in pairs(kinds) do if not have.kinds[k] then return false end end
  for ns in pairs(namespaces) do if not have.namespaces[ns] then return false end end
  return true
end

-- The parent as it is applied: the id label, the app's labels, the tooling and what it covers.
function Set:parent_object(cover, resource_version)
  local others = {}
  for ns in pairs(cover.namespaces) do if ns ~= self.namespace then others[ns] = true end end
  return {
    apiVersion = "v1", kind = "Secret", type = "Opaque",
    metadata = {
      name = self.parent.name, namespace = self.namespace, resourceVersion = resource_version,
      labels = {[M.ID] = self.id, ["app.kubernetes.io/part-of"] = self.app,
                ["app.kubernetes.io/managed-by"] = M.TOOL},
      annotations = {[M.TOOLING] = self.tooling, [M.GROUP_KINDS] = concat(sorted_keys(cover.kinds), ","),
                     [M.NAMESPACES] = concat(sorted_keys(others), ",")},
    },
  }
end

-- set:record(objects) -> true | nil, err. Before objects are applied: the parent is created or
-- updated so that its group-kinds and namespaces are a superset of what it covered and of
-- theirs, as the KEP asks of a tool before it applies members (a run cut short then leaves no
-- member the set cannot find). Never narrows it: another workflow's members stay covered.
-- Makes no request when the parent this set last wrote already covers them; callers at the
-- same time wait for one another, and another process's write in between is a conflict on
-- the resourceVersion, read again.
function Set:record(objects)
  local kinds, namespaces = needs(objects)
  if covers(self.recorded, kinds, namespaces) then return true end
  return self.lock:with(function()
    if covers(self.recorded, kinds, namespaces) then return true end
    local last_err
    for _ = 1, CONFLICT_RETRIES do
      local live, err = self:fetch_parent()
      if live == nil then return nil, err end
      local cover = covered(self, live or nil)
      for k in pairs(kinds) do cover.kinds[k] = true end
      for ns in pairs(namespaces) do cover.namespaces[ns] = true end
      local obj = self:parent_object(cover, live and live.metadata.resourceVersion or nil)
      local got, aerr, code = self.client:apply(obj, {field_manager = M.FIELD_MANAGER})
      if got then
        self.recorded = cover
        return true
      end
      if code ~= "conflict" then return nil, fmt("%s: %s", describe_parent(self), aerr) end
      last_err = aerr
    end
    return nil, fmt("%s: %s", describe_parent(self), last_err)
  end)
end

-- set:forget(): what the parent covers is read again at the next record (after something
-- deleted it: release.remove_environment deletes the app's Secrets, the parent with them).
function Set:forget()
  self.recorded = nil
end

-- The key an object is known by in a set: its group-kind, namespace and name; a Job of a job
-- (named per run) by its job instead, so that every run's Job of a job still produced is kept.
local function member_key(obj)
  local md = obj.metadata
  local ns = md.namespace or ""
  local job = obj.kind == "Job" and group_of(obj.apiVersion) == "batch" and md.labels and md.labels[M.JOB_LABEL]
  if job then return "job " .. ns .. "/" .. job end
  return group_kind(obj) .. " " .. ns .. "/" .. md.name
end
M.member_key = member_key

-- set:stale(objects, workflow, {keep=}) -> the live members that workflow applied last and
-- that objects (what this run's workflow produces) no longer has, nor keep (what other
-- workflows of the template still produce, when given); or nil, err. Read only; {} when there
-- is no parent. In the order of contains-group-kinds, then namespace and name.
function Set:stale(objects, workflow, opts)
  opts = opts or {}
  local live, err = self:fetch_parent()
  if live == nil then return nil, err end
  if not live then return {} end
  local produced = {}
  for _, list in ipairs {objects or {}, opts.keep or {}} do
    for _, obj in ipairs(list) do produced[member_key(obj)] = true end
  end
  local cover = covered(self, live)
  local out = {}
  for _, gk in ipairs(sorted_keys(cover.kinds)) do
    local group, kind = split_group_kind(gk)
    local api_version, namespaced, rcode = self.client:resolve_kind(group, kind)
    if not api_version then
      -- A kind the server no longer serves (its CRD is gone) has no objects left to prune.
      if rcode ~= "unknown_kind" then return nil, fmt("%s: %s", describe_parent(self), namespaced) end
    else
      local where = namespaced and sorted_keys(cover.namespaces) or {""}
      for _, ns in ipairs(where) do
        local list, lerr = self.client:list(api_version, kind, {namespace = ns, label_selector = M.PART_OF .. "=" .. self.id})
        if not list then return nil, fmt("listing the members of %s: %s", describe_parent(self), lerr) end
        sort(list.items, function(a, b) return a.metadata.name < b.metadata.name end)
        for _, item in ipairs(list.items) do
          local ann = item.metadata.annotations or {}
          if ann[M.WORKFLOW] == workflow and not produced[member_key(item)] then out[#out + 1] = item end
        end
      end
    end
  end
  return out
end

local function describe(obj) return obj.kind:lower() .. "/" .. obj.metadata.name end

-- set:prune(stale, {on_deleted = fn(obj, message), on_requested = fn(obj), timeout=, dry_run=})
-- -> true | nil, err. Deletes each object with propagationPolicy Foreground (and its uid as a
-- precondition, so an object of the same name made meanwhile stays), then waits until each is
-- gone (its dependents first: a Deployment's ReplicaSets and pods), calling on_deleted as each
-- goes; on_requested hears each deletion the server accepted. timeout: seconds for them all
-- (default 600). dry_run: the server's dry run of each deletion; nothing is deleted and
-- nothing waited for.
function Set:prune(stale, opts)
  opts = opts or {}
  local on_deleted = opts.on_deleted or function() end
  local client = self.client
  local deadline = sched.now() + (opts.timeout or DEFAULT_TIMEOUT)
  local waiting = {}
  for _, obj in ipairs(stale) do
    local md = obj.metadata
    local ok, err, code = client:delete(obj.apiVersion, obj.kind, md.name, md.namespace,
      {propagation = "Foreground", uid = md.uid, dry_run = opts.dry_run})
    if not ok and code == "conflict" then
      on_deleted(obj, fmt("%s was already gone (the name holds a newer object, left alone)", describe(obj)))
    elseif not ok then
      return nil, fmt("prune %s: %s", describe(obj), err)
    elseif code == "not_found" then
      on_deleted(obj, fmt("%s was already gone", describe(obj)))
    elseif opts.dry_run then
      on_deleted(obj, fmt("would delete %s (the server's dry run passed)", describe(obj)))
    else
      if opts.on_requested then opts.on_requested(obj) end
      waiting[#waiting + 1] = obj
    end
  end
  if #waiting == 0 then return true end
  local failure
  local waits = {}
  for i, obj in ipairs(waiting) do
    waits[i] = function()
      local ok, _, err = client:wait_deleted(obj, {timeout = math.max(0, deadline - sched.now())})
      if ok then
        on_deleted(obj, "deleted " .. describe(obj))
      else
        failure = failure or fmt("prune %s: %s", describe(obj), err)
      end
    end
  end
  sched.all(waits)
  if failure then return nil, failure end
  return true
end

return M
