-- Kubernetes client configuration: kubeconfig.load (C: kubectl's file merging, contexts and
-- in-cluster configuration) plus exec credential plugins (client.authentication.k8s.io/v1 and
-- v1beta1), run on the scheduler and cached until their expirationTimestamp.
--   kubeconfig.load{kubeconfig=, context=, namespace=} -> cfg | nil, message, "kubeconfig"
--   kubeconfig.default_namespace{namespace=, env=, kubeconfig=, context=} -> name | nil[, error]
--   kubeconfig.credential(cfg) -> {token=, cert=, key=, expires=} | nil, message, code
--     (in a task; runs the plugin of an exec user at most once at a time, then caches it until
--     EXPIRY_MARGIN before it expires; a plugin that returns an already expired credential is
--     an error naming the expiry, code "credential_expired")
--   kubeconfig.invalidate(cfg) -- forget the cached credential (the client calls it on a 401);
--     for a token read from a file (tokenFile, in-cluster), read the file again
--   kubeconfig.token(cfg) -> the bearer token of a token user, re-read from its file once a
--     minute like client-go (service-account tokens rotate)
-- Messages never contain tokens or keys: a plugin's stdout is never quoted.
local core = require("moonship.core").kubeconfig
local fs = require "moonship.fs"
local process = require "moonship.process"
local json = require "moonship.json"
local sched = require "moonship.sched"

local concat, insert = table.concat, table.insert
local fmt, type, pairs, ipairs, pcall, error = string.format, type, pairs, ipairs, pcall, error
local os_time, os_date = os.time, os.date

local M = {}

-- A credential is refreshed this many seconds before it expires.
local EXPIRY_MARGIN = 10
-- A token file is read again after this many seconds.
local TOKEN_FILE_TTL = 60
-- A plugin that has not answered after this long is killed.
local PLUGIN_TIMEOUT = 120

local V1 = "client.authentication.k8s.io/v1"
local V1BETA1 = "client.authentication.k8s.io/v1beta1"

-- Credentials by plugin identity (command, args, env, apiVersion, cluster), so clients with the
-- same user share them: {value=, pending=, waiters=}.
local cache = {}

function M.load(opts)
  return core.load(opts)
end

-- The namespace of a run or a render before the template is read (README "Commands", the one
-- rule): -n, else none with --env (the template makes it <app>-<env>), else the kubeconfig
-- context's, else none (the template's default, "default"). Reads the kubeconfig and makes no
-- request. opts = {namespace=, env=, kubeconfig=, context=}. A kubeconfig that cannot be read
-- gives nil and the error: the caller decides whether that matters.
function M.default_namespace(opts)
  if opts.namespace or opts.env then return opts.namespace end
  local ok, cfg, err = pcall(core.load, {kubeconfig = opts.kubeconfig, context = opts.context})
  if not ok then return nil, tostring(cfg) end
  if not cfg then return nil, err end
  return cfg.namespace
end

-- Days since 1970-01-01 of a civil date (proleptic Gregorian).
local function days_from_civil(y, m, d)
  if m <= 2 then y = y - 1 end
  local era = (y >= 0 and y or y - 399) // 400
  local yoe = y - era * 400
  local mp = (m + 9) % 12
  local doy = (153 * mp + 2) // 5 + d - 1
  local doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
  return era * 146097 + doe - 719468
end

-- RFC 3339 ("2024-01-02T03:04:05Z", "...05.123+01:00") -> Unix seconds, or nil.
local function parse_rfc3339(s)
  if type(s) ~= "string" then return nil end
  local y, mo, d, h, mi, sec, rest =
    s:match("^(%d%d%d%d)%-(%d%d)%-(%d%d)[Tt ](%d%d):(%d%d):(%d%d)(.*)$")
  if not y then return nil end
  rest = rest:gsub("^%.%d+", "")
  local offset
  if rest == "Z" or rest == "z" then
    offset = 0
  else
    local sign, oh, om = rest:match("^([+-])(%d%d):(%d%d)$")
    if not sign then return nil end
    offset = (tonumber(oh) * 3600 + tonumber(om) * 60) * (sign == "-" and -1 or 1)
  end
  y, mo, d = tonumber(y), tonumber(mo), tonumber(d)
  if mo < 1 or mo > 12 or d < 1 or d > 31 then return nil end
  return days_from_civil(y, mo, d) * 86400 + tonumber(h) * 3600 + tonumber(mi) * 60
    + tonumber(sec) - offset
end
M.parse_rfc3339 = parse_rfc3339

local function exec_of(cfg)
  local auth = type(cfg) == "table" and cfg.auth
  local exec = auth and auth.exec
  if type(exec) ~= "table" then
    error("kubeconfig: the configuration has no exec credential plugin", 3)
  end
  return exec
end

local function cache_key(exec)
  local parts = {exec.api_version or "", exec.command or ""}
  for _, a in ipairs(exec.args or {}) do parts[#parts + 1] = a end
  parts[#parts + 1] = "env"
  for _, e in ipairs(exec.env or {}) do parts[#parts + 1] = e.name .. "=" .. e.value end
  parts[#parts + 1] = exec.cluster and exec.cluster.server or ""
  return concat(parts, "\0")
end

local function plugin_name(exec)
  return (exec.command:match("[^/]+$") or exec.command)
end

-- The first line of a plugin's stderr, short: plugins print their own hints there.
local function stderr_hint(text)
  local line = text and text:match("^%s*([^\n]*)") or ""
  line = line:gsub("%s+$", "")
  if #line > 200 then line = line:sub(1, 200) .. "..." end
  return line
end

-- Runs the plugin and validates its ExecCredential, as client-go does.
local function run_plugin(exec)
  local name = plugin_name(exec)
  local what = "exec plugin " .. name
  if exec.interactive_mode == "Always" then
    return nil, what .. ": interactiveMode Always needs a terminal, and moonship runs plugins "
      .. "without one", "credential"
  end
  local info = {apiVersion = exec.api_version, kind = "ExecCredential",
    spec = {interactive = false, cluster = exec.provide_cluster_info and exec.cluster or nil}}
  local env = {KUBERNETES_EXEC_INFO = json.encode(info)}
  for _, e in ipairs(exec.env or {}) do env[e.name] = e.value end
  local argv = {exec.command}
  for _, a in ipairs(exec.args or {}) do argv[#argv + 1] = a end
  local r, err, code = process.run {argv = argv, env_extra = env, timeout = PLUGIN_TIMEOUT}
  if not r then
    if code == "spawn" then
      local msg = err
      if exec.install_hint then msg = msg .. "; " .. exec.install_hint:gsub("%s+$", "") end
      return nil, msg, "credential"
    end
    return nil, fmt("%s: %s", what, err), code == "timeout" and "timeout" or "credential"
  end
  if r.code ~= 0 then
    local how = r.code and ("exit code " .. r.code) or ("signal " .. tostring(r.signal))
    local hint = stderr_hint(r.stderr)
    return nil, fmt("%s failed (%s)%s", what, how, hint ~= "" and (": " .. hint) or ""),
      "credential"
  end
  local doc = json.decode(r.stdout)
  if type(doc) ~= "table" then
    return nil, what .. ": the output is not an ExecCredential (not JSON)", "credential"
  end
  if doc.kind ~= "ExecCredential" then
    return nil, fmt("%s: the output is not an ExecCredential (kind %s)", what,
      tostring(doc.kind)), "credential"
  end
  if doc.apiVersion ~= exec.api_version then
    return nil, fmt("%s: configured for %s but returned %s", what, exec.api_version,
      tostring(doc.apiVersion)), "credential"
  end
  local status = doc.status
  if type(status) ~= "table" then
    return nil, what .. ": the ExecCredential has no status", "credential"
  end
  local token = type(status.token) == "string" and status.token ~= "" and status.token or nil
  local cert = type(status.clientCertificateData) == "string" and status.clientCertificateData ~= ""
    and status.clientCertificateData or nil
  local key = type(status.clientKeyData) == "string" and status.clientKeyData ~= ""
    and status.clientKeyData or nil
  if (cert == nil) ~= (key == nil) then
    return nil, what .. ": the ExecCredential has only one of clientCertificateData and "
      .. "clientKeyData", "credential"
  end
  if not token and not cert then
    return nil, what .. ": the ExecCredential has neither a token nor a client certificate",
      "credential"
  end
  local expires
  if status.expirationTimestamp ~= nil then
    expires = parse_rfc3339(status.expirationTimestamp)
    if not expires then
      return nil, what .. ": invalid expirationTimestamp (not RFC 3339)", "credential"
    end
    -- an expired credential is never sent: the server would only answer 401
    if expires <= os_time() then
      return nil, fmt("%s: credential expired at %s", what, os_date("!%Y-%m-%dT%H:%M:%SZ", expires)),
        "credential_expired"
    end
  end
  return {token = token, cert = cert, key = key, expires = expires}
end

local function fresh(entry)
  local v = entry and entry.value
  return v and (v.expires == nil or os_time() + EXPIRY_MARGIN < v.expires)
end

-- kubeconfig.credential(cfg) -> {token=, cert=, key=, expires=} | nil, message, code.
-- Must be called in a task; concurrent callers share one run of the plugin and its outcome.
function M.credential(cfg)
  local exec = exec_of(cfg)
  local key = cache_key(exec)
  while true do
    local entry = cache[key]
    if fresh(entry) then return entry.value end
    if entry and entry.pending then
      -- Another task runs the plugin: wait for its outcome.
      local me = sched.current()
      if not me then error("kubeconfig.credential must be called inside a task", 2) end
      insert(entry.waiters, me)
      while entry.pending do sched.park() end
      if entry.value then return entry.value end
      if entry.err then return nil, entry.err, entry.code end
      -- The runner was cancelled: try again, maybe as the runner.
    else
      entry = {pending = true, waiters = {}}
      cache[key] = entry
      local ok, cred, err, code = pcall(run_plugin, exec)
      entry.pending = false
      if ok and cred then
        entry.value = cred
      else
        if ok then entry.err, entry.code = err, code end
        if cache[key] == entry then cache[key] = nil end
      end
      for _, waiter in ipairs(entry.waiters) do waiter:unpark() end
      if not ok then error(cred, 0) end
      if not cred then return nil, err, code end
      return cred
    end
  end
end

-- When each token file was last read, by cfg.auth table (weak).
local token_read = setmetatable({}, {__mode = "k"})

local function reread_token(auth)
  local text = fs.read(auth.token_file)
  if not text then return end -- keep the token we have; the server will say if it is stale
  text = text:gsub("^%s+", ""):gsub("%s+$", "")
  if text ~= "" then auth.token = text end
  token_read[auth] = os_time()
end

-- kubeconfig.token(cfg) -> the token of a token user (nil for other kinds).
function M.token(cfg)
  local auth = cfg.auth
  if not auth or auth.kind ~= "token" then return nil end
  if auth.token_file then
    local last = token_read[auth]
    if not last then
      token_read[auth] = os_time() -- just read by load
    elseif os_time() - last >= TOKEN_FILE_TTL then
      reread_token(auth)
    end
  end
  return auth.token
end

-- kubeconfig.invalidate(cfg): the next credential(cfg) runs the plugin again; a token from a
-- file is read again now.
function M.invalidate(cfg)
  local auth = type(cfg) == "table" and cfg.auth
  if auth and auth.kind == "token" and auth.token_file then
    reread_token(auth)
    return
  end
  local key = cache_key(exec_of(cfg))
  local entry = cache[key]
  if entry and not entry.pending then cache[key] = nil end
end

return M
