-- The Kubernetes client: kubeconfig, REST paths by discovery, server-side apply, get/list/
-- delete, watches that re-list and resume, logs, retries with back-off, a client-side rate limit,
-- and readiness waits served by shared watches (moonship.kube.informer).
local http = require "moonship.http"
local json = require "moonship.json"
local sched = require "moonship.sched"
local kubeconfig = require "moonship.kube.kubeconfig"
local codec = require("moonship.core").codec
local watch_core = require("moonship.core").watch

local fmt, concat = string.format, table.concat
local now, sleep = sched.now, sched.sleep

local M = {}

local Client = {}
Client.__index = Client
M.Client = Client

-- REST mapping of the built-in kinds, so that the common case costs no discovery request.
-- Anything else (CRDs included) is found by discovery and cached per client.
local BUILTIN = {
  ["v1/Pod"] = {"pods", true}, ["v1/Service"] = {"services", true},
  ["v1/ConfigMap"] = {"configmaps", true}, ["v1/Secret"] = {"secrets", true},
  ["v1/ServiceAccount"] = {"serviceaccounts", true}, ["v1/Event"] = {"events", true},
  ["v1/PersistentVolumeClaim"] = {"persistentvolumeclaims", true},
  ["v1/Endpoints"] = {"endpoints", true}, ["v1/Namespace"] = {"namespaces", false},
  ["v1/Node"] = {"nodes", false}, ["v1/PersistentVolume"] = {"persistentvolumes", false},
  ["apps/v1/Deployment"] = {"deployments", true}, ["apps/v1/ReplicaSet"] = {"replicasets", true},
  ["apps/v1/StatefulSet"] = {"statefulsets", true}, ["apps/v1/DaemonSet"] = {"daemonsets", true},
  ["batch/v1/Job"] = {"jobs", true}, ["batch/v1/CronJob"] = {"cronjobs", true},
  ["networking.k8s.io/v1/Ingress"] = {"ingresses", true},
  ["networking.k8s.io/v1/NetworkPolicy"] = {"networkpolicies", true},
  ["policy/v1/PodDisruptionBudget"] = {"poddisruptionbudgets", true},
  ["autoscaling/v2/HorizontalPodAutoscaler"] = {"horizontalpodautoscalers", true},
  ["rbac.authorization.k8s.io/v1/Role"] = {"roles", true},
  ["rbac.authorization.k8s.io/v1/RoleBinding"] = {"rolebindings", true},
}

-- Stable error tokens by HTTP status.
local STATUS_CODES = {
  [400] = "bad_request", [401] = "unauthorized", [403] = "forbidden", [404] = "not_found",
  [405] = "method_not_allowed", [409] = "conflict", [410] = "expired", [415] = "unsupported_media_type",
  [422] = "invalid", [429] = "too_many_requests",
}

local RETRYABLE_TRANSPORT = {connect = true, closed = true, timeout = true, resolve = true, http = true}

local DEFAULTS = {
  qps = 100, burst = 200,         -- client-side rate limit
  timeout = 30,                   -- seconds per request (watches and logs streams excepted)
  retries = 8,                    -- attempts after the first, for 429/5xx/connection errors
  backoff = 0.2, backoff_max = 10,
  field_manager = "moonship",
}

local CONNECT_OPTIONS = {
  kubeconfig = true, context = true, namespace = true, qps = true, burst = true, timeout = true,
  retries = true, backoff = true, backoff_max = true, field_manager = true, user_agent = true,
  config = true,
}

local function percent_encode(s)
  return (tostring(s):gsub("[^%w%-%._~]", function(c) return fmt("%%%02X", c:byte()) end))
end
M.percent_encode = percent_encode

local function query_string(q)
  if not q then return "" end
  local keys = {}
  for k, v in pairs(q) do if v ~= nil and v ~= false then keys[#keys + 1] = k end end
  if #keys == 0 then return "" end
  table.sort(keys)
  local parts = {}
  for i, k in ipairs(keys) do parts[i] = k .. "=" .. percent_encode(q[k]) end
  return "?" .. concat(parts, "&")
end

-- kube.connect{kubeconfig=, context=, namespace=, qps=, burst=, timeout=, retries=} -> client
-- or nil, message. Never waits: credentials (exec plugins) are fetched on the first request.
function M.connect(opts)
  opts = opts or {}
  for k in pairs(opts) do
    if not CONNECT_OPTIONS[k] then error(fmt("kube.connect: unknown option '%s'", tostring(k)), 2) end
  end
  local cfg, err = opts.config, nil
  if not cfg then
    cfg, err = kubeconfig.load {kubeconfig = opts.kubeconfig, context = opts.context, namespace = opts.namespace}
    if not cfg then return nil, err end
  end
  local self = setmetatable({
    cfg = cfg,
    server = (cfg.server:gsub("/+$", "")),
    namespace = cfg.namespace or "default",
    mappings = {},          -- "apiVersion/Kind" -> {plural, namespaced}
    preferred = {},         -- API group -> its preferred "group/version"
    informers = {},         -- shared watches, by "namespace/apiVersion/Kind"
    health = {},            -- extra readiness rules, "<group>/<Kind>" -> fn(obj)
    counters = {requests = 0, retries = 0},
  }, Client)
  for k, v in pairs(DEFAULTS) do self[k] = opts[k] or v end
  self.user_agent = opts.user_agent or "moonship"
  self.tokens, self.refilled = self.burst, now()
  return self
end

-- Waits for a token of the rate limiter (QPS with a burst); qps 0 turns it off (for an API
-- server whose own flow control, API Priority and Fairness, is to push back instead).
function Client:throttle()
  if self.qps <= 0 then return end
  local t = now()
  self.tokens = math.min(self.burst, self.tokens + (t - self.refilled) * self.qps)
  self.refilled = t
  if self.tokens >= 1 then
    self.tokens = self.tokens - 1
    return
  end
  local wait = (1 - self.tokens) / self.qps
  self.tokens = self.tokens - 1
  sleep(wait)
end

-- The request's TLS options and auth header, from the kubeconfig and the credential plugin;
-- or nil, message, code when the plugin fails.
function Client:auth(headers)
  local cfg = self.cfg
  local tls = {ca = cfg.ca, insecure = cfg.insecure or nil, server_name = cfg.server_name}
  local auth = cfg.auth or {kind = "none"}
  if auth.kind == "token" then
    headers["Authorization"] = "Bearer " .. auth.token
  elseif auth.kind == "basic" then
    headers["Authorization"] = "Basic " .. codec.base64_encode(auth.username .. ":" .. (auth.password or ""))
  elseif auth.kind == "cert" then
    tls.cert, tls.key = auth.cert, auth.key
  elseif auth.kind == "exec" then
    local cred, err, code = kubeconfig.credential(cfg)
    if not cred then return nil, err, code end
    if cred.token then headers["Authorization"] = "Bearer " .. cred.token end
    if cred.cert then tls.cert, tls.key = cred.cert, cred.key end
  end
  return tls
end

local function retry_after(resp)
  local v = resp and resp.headers and tonumber(resp.headers["retry-after"])
  return v and math.max(0, v) or nil
end

-- kube-apiserver answers a server-side apply whose body does not fit the schema (a field of
-- the wrong type) with 500 and no reason, "failed to create typed patch object (...)"
-- (kubernetes/kubernetes#139253), where a create or update gets 400: the same answer every
-- time, so it is not retried like a server error.
local function schema_500(resp)
  local body = resp.body
  return resp.status == 500 and type(body) == "table" and body.kind == "Status"
    and (body.reason == nil or body.reason == "") and type(body.message) == "string"
    and body.message:find("failed to create typed patch object", 1, true) == 1
end

local function status_error(method, path, resp)
  local body = resp.body
  local status = type(body) == "table" and body.kind == "Status" and body or nil
  local code = STATUS_CODES[resp.status] or (resp.status >= 500 and "server_error" or "http_" .. resp.status)
  if resp.status == 409 and status and status.reason == "AlreadyExists" then code = "already_exists" end
  local reason = status and status.reason or ("HTTP " .. resp.status)
  local message = status and status.message or (type(body) == "string" and body:sub(1, 200)) or ""
  return fmt("%s %s: %s (%d): %s", method, path, reason, resp.status, message), code, status
end

-- client:request(method, path, body, opts) -> response {status=, headers=, body=} (body decoded
-- when JSON) or nil, message, code, status_object. Retries 429/5xx and connection errors with
-- exponential back-off, jitter and Retry-After; re-runs an exec plugin once on 401.
-- opts: query=, content_type=, timeout=, on_data= (streams; no retry once data arrived),
-- retry=false, accept=, drop= (paths of the JSON body not to decode: json.decode's drop).
function Client:request(method, path, body, opts)
  opts = opts or {}
  local url = self.server .. path .. query_string(opts.query)
  local payload = body
  if type(body) == "table" then payload = json.encode(body) end
  -- the binding's messages start with the method and the whole URL: the path is enough
  local url_prefix = (method or "GET") .. " " .. url .. ": "
  local attempt, reauthed, streamed = 0, false, false
  while true do
    attempt = attempt + 1
    self:throttle()
    local headers = {
      ["Accept"] = opts.accept or "application/json",
      ["User-Agent"] = self.user_agent,
    }
    if payload then headers["Content-Type"] = opts.content_type or "application/json" end
    local tls, aerr = self:auth(headers)
    if not tls then return nil, fmt("%s %s: credentials: %s", method, path, aerr), "unauthorized" end
    local on_data = opts.on_data and function(chunk)
      streamed = true
      return opts.on_data(chunk)
    end
    self.counters.requests = self.counters.requests + 1
    local resp, err, code = http.request {
      method = method, url = url, headers = headers, body = payload, tls = tls,
      proxy = self.cfg.proxy, timeout = opts.timeout == nil and self.timeout or opts.timeout or nil,
      on_data = on_data,
    }
    local wait, reauth
    if resp then
      local ctype = resp.headers and resp.headers["content-type"] or ""
      if not on_data and ctype:find("json", 1, true) and resp.body and #resp.body > 0 then
        local decoded = json.decode(resp.body, opts.drop and {drop = opts.drop})
        if decoded ~= nil then resp.body = decoded end
      end
      if resp.status < 400 then return resp end
      if resp.status == 401 and not reauthed and (self.cfg.auth or {}).kind == "exec" then
        -- as client-go: the plugin's credential may have been revoked early; run it once more
        -- (not a retry of a failure that may pass: retry = false does not stop it)
        reauthed, reauth = true, true
        kubeconfig.invalidate(self.cfg)
        wait = 0
      elseif resp.status == 429 or (resp.status >= 500 and not schema_500(resp)) then
        wait = retry_after(resp)
          or math.min(self.backoff_max, self.backoff * 2 ^ (attempt - 1)) * (0.5 + math.random())
      end
      if not wait or (opts.retry == false and not reauth) or streamed or attempt > self.retries then
        return nil, status_error(method, path, resp)
      end
    else
      if err:sub(1, #url_prefix) == url_prefix then err = err:sub(#url_prefix + 1) end
      if not RETRYABLE_TRANSPORT[code] or opts.retry == false or streamed or attempt > self.retries then
        return nil, fmt("%s %s: %s", method, path, err), code
      end
      wait = math.min(self.backoff_max, self.backoff * 2 ^ (attempt - 1)) * (0.5 + math.random())
    end
    self.counters.retries = self.counters.retries + 1
    if wait > 0 then sleep(wait) end
  end
end

-- ---- preflight: can this client use its cluster at all? ----------------------------------

-- A deploy asks this before its first step, and must hear in seconds: each request may take
-- 5 s, and is tried again only where another try can help: a dropped connection, 429, 5xx (at
-- most 4 times, after 0.25, 0.5, 1 and 2 s). A refused connection, a DNS or TLS failure, a
-- timeout or a rejected credential will be the same a second later.
local PREFLIGHT_TIMEOUT, PREFLIGHT_RETRIES, PREFLIGHT_PAUSE = 5, 4, 0.25
local TRANSIENT = {closed = true, server_error = true, too_many_requests = true}

-- What a 401 means, by the kind of credentials the kubeconfig gives.
local REJECTED = {
  token = "token rejected",
  exec = "the exec plugin's credential was rejected, also after running the plugin again",
  cert = "client certificate rejected",
  basic = "username or password rejected",
  none = "the server wants credentials, and the kubeconfig gives none",
}

local function preflight_get(self, path)
  local attempt = 0
  while true do
    attempt = attempt + 1
    local resp, err, code, status = self:request("GET", path, nil, {retry = false, timeout = PREFLIGHT_TIMEOUT})
    if resp or not TRANSIENT[code] or attempt > PREFLIGHT_RETRIES then return resp, err, code, status end
    sleep(PREFLIGHT_PAUSE * 2 ^ (attempt - 1))
  end
end

-- The cause of a failed GET path, in words, without the request that the caller names itself.
local function cause(self, path, err, code, status)
  local prefix = "GET " .. path .. ": "
  if err:sub(1, #prefix) == prefix then err = err:sub(#prefix + 1) end
  if code == "unauthorized" then
    return fmt("401 unauthorized (%s)", REJECTED[(self.cfg.auth or {}).kind or "none"] or "credentials rejected")
  end
  if status and status.message and status.code then
    return fmt("%d %s: %s", status.code, status.reason or "error", status.message)
  end
  return err
end

-- client:check() -> true | nil, cause, code
-- Fetches the credentials (an exec plugin runs now, and its failure or an expired credential is
-- the cause) and reads the server's /version with them: the server is reachable, its TLS
-- certificate checks out, it takes the credentials and it is a Kubernetes API server.
function Client:check()
  local tls, aerr, acode = self:auth({})
  if not tls then return nil, aerr, acode or "credential" end
  local resp, err, code, status = preflight_get(self, "/version")
  if resp then
    if type(resp.body) ~= "table" or not resp.body.gitVersion then
      return nil, "GET /version answered no Kubernetes version: not a Kubernetes API server?", "not_kubernetes"
    end
    return true
  end
  if code == "not_found" then
    return nil, "GET /version: 404 not found: not a Kubernetes API server?", "not_kubernetes"
  end
  return nil, cause(self, "/version", err, code, status), code
end

-- client:check_namespace(name) -> "exists" | "missing" | nil, cause, code
-- Only a 200 means it exists and a 404 that it does not; a 403 names the verb refused.
function Client:check_namespace(name)
  local path = "/api/v1/namespaces/" .. percent_encode(name)
  local resp, err, code, status = preflight_get(self, path)
  if resp then
    local md = type(resp.body) == "table" and resp.body.metadata or {}
    if md.deletionTimestamp then
      return nil, fmt("namespace '%s' is being deleted: nothing new can be created in it until it is gone",
        name), "terminating"
    end
    return "exists"
  end
  if code == "not_found" then return "missing" end
  if code == "forbidden" then
    return nil, fmt("403 forbidden: cannot get namespace '%s'%s", name,
      status and status.message and (" (" .. status.message .. ")") or ""), code
  end
  return nil, cause(self, path, err, code, status), code
end

-- What the client talks to, for messages: "context 'staging' (server https://...)".
function Client:describe()
  local cfg = self.cfg
  local who = cfg.context and fmt("context '%s'", cfg.context)
    or (cfg.in_cluster and "the in-cluster service account") or "the kubeconfig"
  return fmt("%s (server %s)", who, self.server)
end

-- The REST mapping of apiVersion/kind: plural, namespaced. Built-ins are known; other kinds are
-- found in the group-version's resource list (one request per group-version, cached).
function Client:mapping(api_version, kind)
  local key = api_version .. "/" .. kind
  local m = self.mappings[key] or BUILTIN[key]
  if m then return m end
  local path = api_version:find("/", 1, true) and ("/apis/" .. api_version) or ("/api/" .. api_version)
  local resp, err, code = self:request("GET", path)
  if not resp then
    if code == "not_found" then return nil, fmt("unknown apiVersion %s (for kind %s)", api_version, kind), "unknown_kind" end
    return nil, err, code
  end
  for _, r in ipairs(resp.body.resources or {}) do
    if not r.name:find("/", 1, true) then
      self.mappings[api_version .. "/" .. r.kind] = {r.name, r.namespaced}
    end
  end
  m = self.mappings[key]
  if not m then return nil, fmt("the server has no kind %s in %s", kind, api_version), "unknown_kind" end
  return m
end

-- The apiVersion of a group-kind (an ApplySet records kinds without versions): the core group's
-- is v1, a built-in kind's the one moonship knows, any other the group's preferred version by
-- discovery (one request per group, cached). Returns api_version, namespaced or nil, message,
-- code ("unknown_kind" when the server serves no such group or kind).
function Client:resolve_kind(group, kind)
  local api_version
  if group == "" then
    api_version = "v1"
  else
    for key in pairs(BUILTIN) do
      local gv, k = key:match("^(.*)/([^/]+)$")
      if k == kind and gv:match("^(.*)/") == group then api_version = gv break end
    end
  end
  if not api_version then
    api_version = self.preferred[group]
    if not api_version then
      local resp, err, code = self:request("GET", "/apis/" .. group)
      if not resp then
        if code == "not_found" then return nil, fmt("the server has no API group %s (for kind %s)", group, kind), "unknown_kind" end
        return nil, err, code
      end
      api_version = type(resp.body) == "table" and resp.body.preferredVersion and resp.body.preferredVersion.groupVersion
      if not api_version then return nil, fmt("GET /apis/%s: no preferred version", group), "unknown_kind" end
      self.preferred[group] = api_version
    end
  end
  local m, err, code = self:mapping(api_version, kind)
  if not m then return nil, err, code end
  return api_version, m[2]
end

-- The path of a collection (name nil) or of one object.
function Client:path(api_version, kind, name, namespace)
  local m, err, code = self:mapping(api_version, kind)
  if not m then return nil, err, code end
  local base = api_version:find("/", 1, true) and ("/apis/" .. api_version) or ("/api/" .. api_version)
  local parts = {base}
  if m[2] then
    namespace = namespace or self.namespace
    if namespace ~= "" then parts[#parts + 1] = "/namespaces/" .. percent_encode(namespace) end
  end
  parts[#parts + 1] = "/" .. m[1]
  if name then parts[#parts + 1] = "/" .. percent_encode(name) end
  return concat(parts)
end

-- Drop paths given within an object, as paths of the document that holds it ("items.*" for a
-- list, "object" for a watch event); nil for none.
function M.drop_under(prefix, paths)
  if not paths or #paths == 0 then return nil end
  local out = {}
  for i, p in ipairs(paths) do out[i] = prefix .. "." .. p end
  return out
end

local function describe(obj)
  return fmt("%s/%s", tostring(obj.kind):lower(), tostring(obj.metadata and obj.metadata.name))
end
M.describe = describe

-- client:apply(obj, {field_manager=, force=, dry_run=, drop=}) -> live object, created (boolean)
-- or nil, message, code. Server-side apply: idempotent, so retrying it is always safe. drop:
-- paths of the live object not to decode (json.decode's drop).
function Client:apply(obj, opts)
  opts = opts or {}
  assert(type(obj) == "table" and obj.apiVersion and obj.kind and obj.metadata and obj.metadata.name,
    "kube apply: the object needs apiVersion, kind and metadata.name")
  local path, err, code = self:path(obj.apiVersion, obj.kind, obj.metadata.name, obj.metadata.namespace)
  if not path then return nil, fmt("apply %s: %s", describe(obj), err), code end
  local resp, rerr, rcode, status = self:request("PATCH", path, obj, {
    content_type = "application/apply-patch+yaml",
    query = {fieldManager = opts.field_manager or self.field_manager,
             force = opts.force ~= false and "true" or nil,
             dryRun = opts.dry_run and "All" or nil},
    drop = opts.drop,
  })
  if not resp then return nil, fmt("apply %s: %s", describe(obj), rerr), rcode, status end
  return resp.body, resp.status == 201
end

-- client:get(api_version, kind, name, namespace) -> object or nil, message, code
function Client:get(api_version, kind, name, namespace)
  local path, err, code = self:path(api_version, kind, name, namespace)
  if not path then return nil, err, code end
  local resp, rerr, rcode = self:request("GET", path)
  if not resp then return nil, rerr, rcode end
  return resp.body
end

-- client:list(api_version, kind, {namespace=, label_selector=, field_selector=,
-- resource_version=, limit=, drop=}) -> {items=, metadata=} (every page) or nil, message, code
-- drop: paths within an item left out of it ({"metadata.managedFields"}).
function Client:list(api_version, kind, opts)
  opts = opts or {}
  local path, err, code = self:path(api_version, kind, nil, opts.namespace)
  if not path then return nil, err, code end
  local items, continue, meta = {}, nil, nil
  local drop = M.drop_under("items.*", opts.drop)
  repeat
    local resp, rerr, rcode = self:request("GET", path, nil, {query = {
      labelSelector = opts.label_selector, fieldSelector = opts.field_selector,
      resourceVersion = continue == nil and opts.resource_version or nil,
      limit = opts.limit or 500, continue = continue,
    }, drop = drop})
    if not resp then return nil, rerr, rcode end
    for _, item in ipairs(resp.body.items or {}) do
      -- List items omit apiVersion and kind; put them back so items read like objects.
      item.apiVersion, item.kind = item.apiVersion or api_version, item.kind or kind
      items[#items + 1] = item
    end
    meta = resp.body.metadata or {}
    continue = meta.continue ~= "" and meta.continue or nil
  until continue == nil
  return {items = items, metadata = meta}
end

-- client:delete(api_version, kind, name, namespace, {propagation=, uid=, dry_run=}) -> true,
-- status (or true, nil, "not_found" when it was already gone) or nil, message, code. uid: a
-- precondition (409 "conflict" when the name now holds another object); dry_run: the server's
-- dry run of the deletion, which deletes nothing. Every option goes in the DeleteOptions body:
-- kube-apiserver reads the query's options only when a DELETE has no body.
function Client:delete(api_version, kind, name, namespace, opts)
  opts = opts or {}
  local path, err, code = self:path(api_version, kind, name, namespace)
  if not path then return nil, err, code end
  local body = {kind = "DeleteOptions", apiVersion = "v1", propagationPolicy = opts.propagation or "Background",
                preconditions = opts.uid and {uid = opts.uid} or nil,
                dryRun = opts.dry_run and json.array {"All"} or nil}
  local resp, rerr, rcode = self:request("DELETE", path, body)
  if not resp then
    if rcode == "not_found" then return true, nil, "not_found" end
    return nil, fmt("delete %s/%s: %s", kind:lower(), name, rerr), rcode
  end
  return true, resp.body
end

-- client:watch(api_version, kind, {namespace=, label_selector=, field_selector=,
-- resource_version=, project=fn(obj) -> the object to keep, drop={paths within an object not
-- to decode}}) -> iterator over events
-- {type=, object=}, for use in a generic for (the
-- fourth value closes the stream when the loop ends). Without resource_version it lists first
-- and yields ADDED for each object. It resumes from the last resourceVersion after a dropped
-- connection or a server timeout, and after 410 Expired re-lists, yielding the differences
-- (ADDED/MODIFIED/DELETED) so that a consumer's view stays exact.
function Client:watch(api_version, kind, opts)
  opts = opts or {}
  local w = require("moonship.kube.watch").new(self, api_version, kind, opts)
  return w.next, w, nil, w
end

-- client:logs(pod, namespace, {container=, follow=, tail_lines=, previous=, on_line=})
-- -> text (without on_line) or true (lines went to on_line), or nil, message, code
function Client:logs(pod, namespace, opts)
  opts = opts or {}
  local path = fmt("/api/v1/namespaces/%s/pods/%s/log", percent_encode(namespace or self.namespace), percent_encode(pod))
  local query = {container = opts.container, follow = opts.follow and "true" or nil,
                 tailLines = opts.tail_lines, previous = opts.previous and "true" or nil}
  -- What kubectl sends: kube-apiserver answers "text/plain" alone with 406 Not Acceptable (the
  -- log is served as a stream of any type; only its errors are JSON).
  local accept = "application/json, */*"
  if not opts.on_line then
    local resp, err, code = self:request("GET", path, nil, {query = query, accept = accept})
    if not resp then return nil, err, code end
    return type(resp.body) == "string" and resp.body or json.encode(resp.body)
  end
  local partial = ""
  local resp, err, code = self:request("GET", path, nil, {
    query = query, accept = accept, timeout = opts.follow and false or nil,
    on_data = function(chunk)
      partial = partial .. chunk
      for line in partial:gmatch("([^\n]*)\n") do opts.on_line(line) end
      partial = partial:match("[^\n]*$")
    end,
  })
  if partial ~= "" then opts.on_line(partial) end
  if not resp then return nil, err, code end
  return true
end

-- The shared watch of (namespace, apiVersion, kind): one per client, created on first use. Its
-- cache holds what readiness needs, not whole objects (no managedFields, no pod templates, pods
-- and ReplicaSets projected: see kube/informer.lua); client:get reads an object whole.
function Client:informer(api_version, kind, namespace)
  namespace = namespace or self.namespace
  local key = namespace .. "/" .. api_version .. "/" .. kind
  local inf = self.informers[key]
  if not inf then
    inf = require("moonship.kube.informer").new(self, api_version, kind, namespace)
    self.informers[key] = inf
  end
  return inf
end

-- client:wait_deleted(obj, {timeout=}) -> true or nil, reason, message. See moonship.kube.wait.
function Client:wait_deleted(obj, opts)
  return require("moonship.kube.wait").wait_deleted(self, obj, opts or {})
end

-- client:wait_ready(obj, {timeout=, on_progress=fn(message, info), crashloop_restarts=,
-- logs_tail=}) -> "ready" or nil, reason, details. See moonship.kube.wait.
function Client:wait_ready(obj, opts)
  return require("moonship.kube.wait").wait_ready(self, obj, opts or {})
end

-- Stops every shared watch of this client.
function Client:close()
  for key, inf in pairs(self.informers) do
    inf:stop()
    self.informers[key] = nil
  end
end

M.watch_decoder = watch_core.decoder
M.query_string = query_string

return M
