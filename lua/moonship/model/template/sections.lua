-- The template's smaller top-level sections, each a list of named entries: shared_volumes
-- (PersistentVolumeClaims), service_accounts (ServiceAccounts with a cloud role) and charts
-- (Helm charts the built-in `charts` task kind installs).
local fs = require "moonship.fs"
local diag = require "moonship.model.template.diag"
local fields = require "moonship.model.template.fields"
local units = require "moonship.model.template.units"

local M = {}

local VOLUME_SCHEMA = {known = fields.set {"name", "size", "type", "storage_class"}}
local ACCOUNT_SCHEMA = {known = fields.set {"name", "cloud_role"}}
local CHART_SCHEMA = {known = fields.set {"name", "directory", "values"},
  unsupported = fields.set {"repo", "version", "namespace", "repo_url", "add"}}

-- cloud_role by its shape -> the annotation EKS or GKE reads to give the pods that identity.
M.ROLE_ANNOTATIONS = {
  aws = "eks.amazonaws.com/role-arn",
  gcp = "iam.gke.io/gcp-service-account",
}

-- "aws" for an IAM role ARN, "gcp" for a Google service account email, else nil.
function M.cloud_of(role)
  if role:match("^arn:aws[%w%-]*:iam::%d+:role/[%w+=,.@_/%-]+$") then return "aws" end
  if role:match("^[a-z][a-z0-9%-]*@[a-z][a-z0-9%-]*%.iam%.gserviceaccount%.com$") then return "gcp" end
  return nil
end

-- A named entry's name, checked as a Kubernetes name; nil after reporting a problem.
local function entry_name(d, entry, what)
  local name = fields.string(d, entry, "name", true)
  if not name then
    if not fields.present(entry, "name") then d:error(diag.pos(entry), "%s has no 'name'", what) end
    return nil
  end
  return name, units.k8s_name(d, name, diag.pos(entry, "name"), what, 63)
end

-- shared_volumes: [{name, size, type: persistent, storage_class (ext)}] -> {name, k8s_name,
-- size, storage_class, pos}.
function M.read_volume(d, entry)
  fields.check_keys(d, entry, VOLUME_SCHEMA, " in a shared volume")
  local name, k8s = entry_name(d, entry, "shared volume")
  if not name then return nil end
  local vtype = fields.string(d, entry, "type") or "persistent"
  if vtype ~= "persistent" then
    d:warning(diag.pos(entry, "type"), "shared volume '%s': type '%s' is unsupported (persistent), ignored", name, vtype)
    return nil
  end
  local size = fields.string(d, entry, "size", true)
  if not size then
    if not fields.present(entry, "size") then d:error(diag.pos(entry, "name"), "shared volume '%s' needs 'size'", name) end
    return nil
  end
  if not units.quantity_value(size) then
    d:error(diag.pos(entry, "size"), "shared volume '%s': size '%s' is not a Kubernetes quantity (like 1Gi, 500Mi)", name, size)
    return nil
  end
  return {name = name, k8s_name = k8s, size = size, storage_class = fields.string(d, entry, "storage_class"),
    pos = diag.pos(entry, "name")}
end

-- service_accounts: [{name, cloud_role}] -> {name, k8s_name, cloud_role, annotation, pos}.
function M.read_account(d, entry)
  fields.check_keys(d, entry, ACCOUNT_SCHEMA, " in a service account")
  local name, k8s = entry_name(d, entry, "service account")
  if not name then return nil end
  local account = {name = name, k8s_name = k8s, pos = diag.pos(entry, "name")}
  local role = fields.string(d, entry, "cloud_role")
  if role then
    local cloud = M.cloud_of(role)
    if not cloud then
      d:error(diag.pos(entry, "cloud_role"), "service account '%s': cloud_role '%s' is neither an AWS IAM role ARN (arn:aws:iam::<account>:role/<name>) nor a Google service account (<name>@<project>.iam.gserviceaccount.com)",
        name, role)
      return nil
    end
    account.cloud_role, account.annotation = role, M.ROLE_ANNOTATIONS[cloud]
  end
  return account
end

-- charts: [{name, directory, values}] -> {name, release, directory (absolute), values
-- (absolute), pos, missing = message | nil}. Directories are relative to the repository
-- (ctx.repo_dir, shown in messages as ctx.repo_display); values to the chart's directory.
function M.read_chart(d, entry, ctx)
  fields.check_keys(d, entry, CHART_SCHEMA, " in a chart")
  local name, k8s = entry_name(d, entry, "chart")
  if not name then return nil end
  local dir = fields.string(d, entry, "directory")
  if not dir then
    if not fields.present(entry, "directory") then d:error(diag.pos(entry, "name"), "chart '%s' has no 'directory'", name) end
    return nil
  end
  local chart = {name = name, release = k8s, pos = diag.pos(entry, "name"),
    directory = fs.normalize(fs.join(ctx.repo_dir, dir))}
  local shown = fs.join(ctx.repo_display, dir)
  local values = fields.string(d, entry, "values")
  if values then chart.values = fs.normalize(fs.join(chart.directory, values)) end
  -- A template names the directories of its repository: where they are not there (a template
  -- checked on its own), validate says so and a deploy that needs the chart stops.
  if not fs.exists(chart.directory .. "/Chart.yaml") then
    chart.missing = string.format("chart '%s': no Chart.yaml in %s", name, shown)
  elseif chart.values and not fs.exists(chart.values) then
    chart.missing = string.format("chart '%s': values file %s not found", name, fs.join(shown, values))
  end
  return chart
end

return M
