-- Compares an object as a deploy would leave it (the server's answer to a dry-run apply) with the
-- live one, both as the server returns them, so fields the server defaults are on both sides
-- and cancel out. What the server owns or changes on every write is left out first, secret
-- values are masked, and the rest is compared as YAML with sorted keys, line by line.
--   compare.normalize(obj [, {job=true}]) -> copy without what the server owns
--   compare.mask(live, want [, {secret_env=}])     masks secret values in two normalized copies
--   compare.objects(live, want [, opts]) -> "unchanged" | "changed", {unified diff lines}
local linediff = require "moonship.linediff"
local manifests = require "moonship.model.manifests"
local yaml = require "moonship.yaml"
local json = require "moonship.json"

local M = {}

-- metadata the API server writes: identity, versions, times, the field managers' records.
M.SERVER_METADATA = {"managedFields", "resourceVersion", "uid", "generation", "creationTimestamp",
                     "deletionTimestamp", "deletionGracePeriodSeconds", "selfLink"}

-- Annotations that change on every run, whatever the template says: moonship.dev/run carries
-- the run id (every object a run applies has it).
M.RUN_ANNOTATIONS = {["moonship.dev/run"] = true}

-- What the API server derives from a Job's name and uid (its generated selector and the labels
-- of its pods) when the Job does not set spec.manualSelector.
M.JOB_GENERATED_LABELS = {"controller-uid", "batch.kubernetes.io/controller-uid", "job-name",
                          "batch.kubernetes.io/job-name"}

-- The annotation kubectl's client-side apply keeps: the whole object as JSON, values included.
M.LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"

M.MASK = "***"
M.MASK_BEFORE, M.MASK_AFTER = "*** (before)", "*** (after)"

-- A copy that keeps the JSON marks (so [] and {} stay apart) in fresh tables: yaml.dump writes
-- tables it did not load with their keys sorted.
local copy = manifests.deep_copy

local function drop_keys(map, keys)
  if type(map) ~= "table" then return end
  for _, k in ipairs(keys) do map[k] = nil end
end

local function drop_if_empty(parent, key)
  local t = parent and parent[key]
  if type(t) == "table" and next(t) == nil then parent[key] = nil end
end

-- obj without status and the server's metadata, and without the run's annotations. With
-- opts.job (a Job compared with an earlier run's Job): without its name and what the server
-- derives from the name and uid either.
function M.normalize(obj, opts)
  opts = opts or {}
  local o = copy(obj)
  o.status = nil
  local meta = o.metadata
  if type(meta) == "table" then
    drop_keys(meta, M.SERVER_METADATA)
    if type(meta.annotations) == "table" then
      for k in pairs(M.RUN_ANNOTATIONS) do meta.annotations[k] = nil end
      drop_if_empty(meta, "annotations")
    end
    if opts.job then meta.name = nil end
  end
  if opts.job and type(o.spec) == "table" and o.spec.manualSelector ~= true then
    local spec = o.spec
    local tmeta = type(spec.template) == "table" and spec.template.metadata
    if type(tmeta) == "table" then
      drop_keys(tmeta.labels, M.JOB_GENERATED_LABELS)
      drop_if_empty(tmeta, "labels")
    end
    local sel = spec.selector
    if type(sel) == "table" then
      drop_keys(sel.matchLabels, M.JOB_GENERATED_LABELS)
      drop_if_empty(sel, "matchLabels")
      drop_if_empty(spec, "selector")
    end
  end
  return o
end

-- The same value? (tables by content)
local function same(a, b)
  if type(a) ~= "table" or type(b) ~= "table" then return a == b end
  return json.encode(a, {sort_keys = true}) == json.encode(b, {sort_keys = true})
end

-- Masks the values of map keys in place, key by key: "***" where both sides have the same
-- value or only one side has the key, "*** (before)" and "*** (after)" where they differ.
-- Only the keys and whether their values changed can be read from the result.
local function mask_maps(a, b)
  a, b = type(a) == "table" and a or nil, type(b) == "table" and b or nil
  for k, v in pairs(a or {}) do
    local w = b and b[k]
    if w == nil then
      a[k] = M.MASK
    elseif same(v, w) then
      a[k], b[k] = M.MASK, M.MASK
    else
      a[k], b[k] = M.MASK_BEFORE, M.MASK_AFTER
    end
  end
  for k, w in pairs(b or {}) do
    if a == nil or a[k] == nil then b[k] = M.MASK end
  end
end

-- The pod specs of an object: a workload's template, a CronJob's job template, a Pod's own.
local function pod_specs(o)
  local spec = type(o) == "table" and o.spec
  if type(spec) ~= "table" then return {} end
  if o.kind == "Pod" then return {spec} end
  if type(spec.template) == "table" and type(spec.template.spec) == "table" then return {spec.template.spec} end
  local jt = spec.jobTemplate
  local js = type(jt) == "table" and type(jt.spec) == "table" and jt.spec.template
  if type(js) == "table" and type(js.spec) == "table" then return {js.spec} end
  return {}
end

-- name -> entry of a list of {name=...}
local function by_name(list)
  local out = {}
  for _, e in ipairs(type(list) == "table" and list or {}) do
    if type(e) == "table" and e.name ~= nil then out[e.name] = e end
  end
  return out
end

-- The values of the env variables named in secret (a set) in the containers of two pod specs,
-- masked as mask_maps does: containers are paired by name, variables by name.
local function mask_env(a, b, secret)
  for _, field in ipairs {"initContainers", "containers"} do
    local ca, cb = by_name(a and a[field]), by_name(b and b[field])
    local names = {}
    for n in pairs(ca) do names[n] = true end
    for n in pairs(cb) do names[n] = true end
    for n in pairs(names) do
      local ea, eb = by_name(ca[n] and ca[n].env), by_name(cb[n] and cb[n].env)
      local va, vb = {}, {}
      for name in pairs(secret) do
        if ea[name] then va[name] = ea[name].value end
        if eb[name] then vb[name] = eb[name].value end
      end
      mask_maps(va, vb)
      for name, v in pairs(va) do ea[name].value = v end
      for name, v in pairs(vb) do eb[name].value = v end
    end
  end
end

-- Masks, in two normalized copies of one object (either may be nil), what must never be shown:
-- a Secret's data and stringData values, the kubectl last-applied annotation (a copy of the
-- object, values included), and the values of the env variables named in opts.secret_env.
function M.mask(live, want, opts)
  opts = opts or {}
  local kind = (live or want).kind
  if kind == "Secret" then
    for _, field in ipairs {"data", "stringData"} do
      mask_maps(live and live[field], want and want[field])
    end
  end
  local la = live and type(live.metadata) == "table" and live.metadata.annotations
  local wa = want and type(want.metadata) == "table" and want.metadata.annotations
  local va = {[M.LAST_APPLIED] = type(la) == "table" and la[M.LAST_APPLIED] or nil}
  local vb = {[M.LAST_APPLIED] = type(wa) == "table" and wa[M.LAST_APPLIED] or nil}
  mask_maps(va, vb)
  if va[M.LAST_APPLIED] then la[M.LAST_APPLIED] = va[M.LAST_APPLIED] end
  if vb[M.LAST_APPLIED] then wa[M.LAST_APPLIED] = vb[M.LAST_APPLIED] end
  if opts.secret_env and next(opts.secret_env) then
    local pa, pb = pod_specs(live), pod_specs(want)
    for i = 1, math.max(#pa, #pb) do mask_env(pa[i], pb[i], opts.secret_env) end
  end
end

-- The YAML of a normalized object, as the lines a diff compares.
function M.lines(obj)
  return linediff.lines(yaml.dump(obj))
end

-- compare.objects(live, want, {job=, secret_env=, context=}) -> "unchanged" | "changed", diff
-- live: the object as it is; want: as the dry-run apply says it would be. diff: the unified
-- diff of their YAML (--- live, +++ moonship), masked; {} when unchanged.
function M.objects(live, want, opts)
  opts = opts or {}
  local a, b = M.normalize(live, opts), M.normalize(want, opts)
  M.mask(a, b, opts)
  local diff = linediff.unified(M.lines(a), M.lines(b), {from = "live", to = "moonship", context = opts.context})
  return #diff == 0 and "unchanged" or "changed", diff
end

return M
