-- hostnames, rules and ingress: the public routes of services. Each service with a hostname
-- (or a rule) gets an Ingress; ${env_id}, ${domain} and the other template variables are
-- resolved in the hosts, and the ingress settings become the nginx ingress annotations
-- ReleaseHub's clusters read.
local diag = require "moonship.model.template.diag"
local fields = require "moonship.model.template.fields"
local envs = require "moonship.model.template.env"

local fmt = string.format

local M = {}

local RULE_SCHEMA = {known = fields.set {"service", "hostnames", "path"}}

-- ingress settings -> nginx.ingress.kubernetes.io/<annotation>
M.ANNOTATIONS = {
  proxy_body_size = "proxy-body-size", proxy_buffer_size = "proxy-buffer-size",
  proxy_buffering = "proxy-buffering", proxy_buffers_number = "proxy-buffers-number",
  proxy_max_temp_file_size = "proxy-max-temp-file-size", proxy_read_timeout = "proxy-read-timeout",
  proxy_send_timeout = "proxy-send-timeout", proxy_connect_timeout = "proxy-connect-timeout",
  backend_protocol = "backend-protocol", whitelist_source_range = "whitelist-source-range",
  affinity = "affinity", affinity_mode = "affinity-mode", session_cookie_name = "session-cookie-name",
  session_cookie_path = "session-cookie-path",
}
M.ANNOTATION_PREFIX = "nginx.ingress.kubernetes.io/"
local SETTINGS_SCHEMA = {known = {}}
for k in pairs(M.ANNOTATIONS) do SETTINGS_SCHEMA.known[k] = true end

-- A host name Kubernetes accepts in an Ingress rule: a lowercase DNS subdomain, or *.<one>.
local function valid_host(h)
  if #h > 253 then return false end
  local rest = h:match("^%*%.(.+)$") or h
  for label in (rest .. "."):gmatch("([^.]*)%.") do
    if #label == 0 or #label > 63 or not label:match("^[a-z0-9]$") and
        not label:match("^[a-z0-9][a-z0-9%-]*[a-z0-9]$") then
      return false
    end
  end
  return true
end

-- nginx ingress settings: {annotation -> text}.
local function read_settings(d, doc)
  local m = fields.map(d, doc, "ingress")
  if not m then return {} end
  fields.check_keys(d, m, SETTINGS_SCHEMA, " in ingress")
  local out = {}
  for k, annotation in pairs(M.ANNOTATIONS) do
    local v = m[k]
    if type(v) == "boolean" then
      out[M.ANNOTATION_PREFIX .. annotation] = v and "on" or "off"
    else
      local text = fields.string(d, m, k, true)
      if text then out[M.ANNOTATION_PREFIX .. annotation] = text end
    end
  end
  return out
end

-- Reads hostnames, rules and ingress into {settings = {annotation -> text},
-- by_service = {name -> {{host=, path=, pos=}...}}}. ctx = {vars=, services=, static=,
-- service_names=, domain_source=}.
function M.read(d, doc, ctx)
  local routes = {}
  local function add(service, host_text, path, pos)
    local host = envs.substitute(host_text, ctx.vars)
    if host:find("${domain}", 1, true) then
      d:error(pos, "hostname '%s' of service '%s' needs a domain: the template sets no 'domain' (pass --domain)",
        host_text, service)
      return
    end
    local unresolved = host:match("%${[^}]*}")
    if unresolved then
      d:error(pos, "hostname '%s' of service '%s': unknown placeholder '%s'%s", host_text, service,
        unresolved, diag.did_you_mean(unresolved, {"${env_id}", "${domain}", "${app}", "${namespace}"}))
      return
    end
    if not valid_host(host) then
      d:error(pos, "hostname '%s' of service '%s' is not a valid host name (lowercase letters, digits, '-' and '.')",
        host, service)
      return
    end
    if ctx.static[service] then
      d:warning(pos, "hostname '%s' of service '%s' skipped: service '%s' is a static site (unsupported)",
        host, service, service)
      return
    end
    if not ctx.services[service] then
      d:warning(pos, "hostname '%s' skipped: no service '%s'%s", host, service,
        diag.did_you_mean(service, ctx.service_names))
      return
    end
    local list = routes[service] or {}
    routes[service] = list
    list[#list + 1] = {host = host, path = path or "/", pos = pos}
  end

  -- hostnames: [{service: host}, ...] (ReleaseHub), or a mapping {service: host}.
  local h = doc.hostnames
  if fields.is_list(h) then
    for i, entry in ipairs(h) do
      if not fields.is_map(entry) then
        d:error(diag.pos(h, i), "a hostname must be a mapping {service: host} (got %s)", fields.describe(entry))
      else
        for _, service in ipairs(diag.keys_in_order(entry)) do
          local host = fields.string(d, entry, service)
          if host then add(service, host, nil, diag.pos(entry, service)) end
        end
      end
    end
  elseif fields.is_map(h) then
    for _, service in ipairs(diag.keys_in_order(h)) do
      local host = fields.string(d, h, service)
      if host then add(service, host, nil, diag.pos(h, service)) end
    end
  elseif fields.present(doc, "hostnames") then
    fields.type_error(d, doc, "hostnames", "a list of {service: host}")
  end

  -- rules: [{service, hostnames: [...], path}]: more paths and hosts for a service.
  local rules = fields.list(d, doc, "rules")
  for i, r in ipairs(rules or {}) do
    if not fields.is_map(r) then
      d:error(diag.pos(rules, i), "a rule must be a mapping {service, hostnames, path} (got %s)", fields.describe(r))
    else
      fields.check_keys(d, r, RULE_SCHEMA, " in a rule")
      local service = fields.string(d, r, "service")
      local path = fields.string(d, r, "path")
      if path and path:sub(1, 1) ~= "/" then
        d:error(diag.pos(r, "path"), "rule path '%s' must start with '/'", path)
        path = nil
      end
      local hosts = fields.string_list(d, r, "hostnames")
      if not service and not fields.present(r, "service") then d:error(diag.pos(r), "a rule needs 'service'") end
      if not hosts and not fields.present(r, "hostnames") then d:error(diag.pos(r), "a rule needs 'hostnames'") end
      if service and hosts then
        for j, host in ipairs(hosts) do add(service, host, path, diag.pos(r.hostnames, j)) end
      end
    end
  end

  -- An Ingress routes to a port of the service's Service: the first one listed.
  for service, list in pairs(routes) do
    local svc = ctx.services[service]
    if #svc.ports == 0 then
      d:error(list[1].pos, "service '%s' has a hostname but no ports: its Ingress needs a port to route to",
        service)
      routes[service] = nil
    end
  end
  return {settings = read_settings(d, doc), by_service = routes}
end

-- The Release variables a service's hostnames give: <SERVICE>_INGRESS_HOST and _URL.
function M.release_vars(model, out)
  for _, svc in ipairs(model.services) do
    local first = svc.hostnames and svc.hostnames[1]
    if first then
      local prefix = svc.name:upper():gsub("[^%w]", "_")
      out[prefix .. "_INGRESS_HOST"] = first.host
      out[prefix .. "_INGRESS_URL"] = fmt("https://%s", first.host)
    end
  end
  return out
end

return M
