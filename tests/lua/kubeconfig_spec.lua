-- moonship.kube.kubeconfig: loading (the C resolver through its binding) and exec credential
-- plugins (tests/fixtures/exec-credential-plugin), run on the scheduler and cached.
local kubeconfig = require "moonship.kube.kubeconfig"
local sched = require "moonship.sched"
local json = require "moonship.json"
local proc = require "support.proc"

local SRC = os.getenv("MOONSHIP_SOURCE_DIR") or "."
local FIX = SRC .. "/tests/fixtures/kubeconfig"
local PLUGIN = SRC .. "/tests/fixtures/exec-credential-plugin"

local count_lines = proc.count_lines

-- The exec fixture's configuration, with the plugin's environment for this test. Under the
-- sanitizer build the plugin must not inherit the ASan preload, so it runs through env -u.
local function exec_cfg(context, vars)
  local cfg = assert(kubeconfig.load{kubeconfig = FIX .. "/exec.yaml", context = context,
    env = {}})
  local exec = cfg.auth.exec
  for k, v in pairs(vars or {}) do exec.env[#exec.env + 1] = {name = k, value = v} end
  if os.getenv("LD_PRELOAD") then
    table.insert(exec.args, 1, exec.command)
    table.insert(exec.args, 1, "LD_PRELOAD")
    table.insert(exec.args, 1, "-u")
    exec.command = "env"
  end
  return cfg
end

describe("kubeconfig.load", function()
  it("merges KUBECONFIG's files by kubectl's rules", function()
    local cfg = assert(kubeconfig.load{env = {KUBECONFIG = FIX .. "/first.yaml:" .. FIX
      .. "/second.yaml"}})
    assert.equal("dev", cfg.context)
    assert.equal("dev-cluster", cfg.cluster)
    assert.equal("https://dev.example.test:6443", cfg.server)
    assert.equal("dev-ns", cfg.namespace)
    assert.same({kind = "token", token = "dev-token-1234"}, cfg.auth)
    assert.matches("^%-%-%-%-%-BEGIN CERTIFICATE", cfg.ca)
    assert.same({FIX .. "/first.yaml", FIX .. "/second.yaml"}, cfg.source)
    assert.is_false(cfg.insecure)

    local other = assert(kubeconfig.load{env = {KUBECONFIG = FIX .. "/second.yaml:" .. FIX
      .. "/first.yaml"}})
    assert.equal("staging", other.context)
    assert.is_true(other.insecure)
    assert.equal("api.staging.test", other.server_name)
    assert.equal("http://proxy.example.test:3128", other.proxy)
    assert.same({kind = "basic", username = "admin", password = "s3cret-pass"}, other.auth)
  end)

  it("takes --context and --namespace", function()
    local cfg = assert(kubeconfig.load{context = "shared", namespace = "ops",
      env = {KUBECONFIG = FIX .. "/first.yaml:" .. FIX .. "/second.yaml"}})
    assert.equal("shared", cfg.context)
    assert.equal("ops", cfg.namespace)
    assert.equal("https://shared-from-first.example.test", cfg.server)
    assert.equal("basic", cfg.auth.kind)
    -- An explicit --kubeconfig is the only file read.
    local only, err = kubeconfig.load{kubeconfig = FIX .. "/first.yaml", context = "shared",
      env = {KUBECONFIG = FIX .. "/second.yaml"}}
    assert.is_nil(only)
    assert.equal(FIX .. "/first.yaml:27:13: contexts[1].context.user: user \"staging-user\" not "
      .. "found (users: dev-user)", err)
  end)

  it("returns nil and a message naming the file", function()
    local cfg, err, code = kubeconfig.load{kubeconfig = FIX .. "/first.yaml", context = "prod"}
    assert.is_nil(cfg)
    assert.equal(FIX .. "/first.yaml: context \"prod\" not found (contexts: dev, shared)", err)
    assert.equal("kubeconfig", code)
  end)

  it("exposes an exec user's plugin and the cluster info it may receive", function()
    local cfg = assert(kubeconfig.load{kubeconfig = FIX .. "/exec.yaml"})
    assert.equal("exec", cfg.auth.kind)
    assert.equal("apps", cfg.namespace)
    local exec = cfg.auth.exec
    assert.equal("client.authentication.k8s.io/v1", exec.api_version)
    assert.equal(FIX .. "/../exec-credential-plugin", exec.command)
    assert.same({"--cluster", "sim"}, exec.args)
    assert.same({{name = "PLUGIN_MODE", value = "token"}}, exec.env)
    assert.equal("Never", exec.interactive_mode)
    assert.is_true(exec.provide_cluster_info)
    assert.same({server = "https://127.0.0.1:6443", ["certificate-authority-data"] =
      "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1PT05TSElQCi0tLS0tRU5EIENFUlRJRklDQVRFLS0tLS0K"},
      exec.cluster)
  end)

  it("uses the service account in a pod", function()
    local cfg = assert(kubeconfig.load{env = {KUBERNETES_SERVICE_HOST = "10.96.0.1",
      KUBERNETES_SERVICE_PORT = "443"}, service_account_dir = FIX .. "/serviceaccount"})
    assert.is_true(cfg.in_cluster)
    assert.equal("https://10.96.0.1:443", cfg.server)
    assert.equal("team-a", cfg.namespace)
    assert.equal("token", cfg.auth.kind)
    assert.equal("sa-token-5678", cfg.auth.token)
    assert.matches("BEGIN CERTIFICATE", cfg.ca)
  end)

  it("reads a rotated token file again on invalidate", function()
    local dir = proc.tmpdir()
    os.execute("cp -r " .. proc.quote(FIX .. "/serviceaccount") .. " " .. proc.quote(dir .. "/sa"))
    local cfg = assert(kubeconfig.load{env = {KUBERNETES_SERVICE_HOST = "10.96.0.1",
      KUBERNETES_SERVICE_PORT = "443"}, service_account_dir = dir .. "/sa"})
    assert.equal(dir .. "/sa/token", cfg.auth.token_file)
    assert.equal("sa-token-5678", kubeconfig.token(cfg))
    proc.write_file(dir .. "/sa/token", "rotated-token\n")
    assert.equal("sa-token-5678", kubeconfig.token(cfg)) -- within a minute: the cached one
    kubeconfig.invalidate(cfg)
    assert.equal("rotated-token", kubeconfig.token(cfg))
    os.execute("rm -rf " .. proc.quote(dir))
  end)

  it("rejects unknown options", function()
    local ok, err = pcall(kubeconfig.load, {contxt = "x"})
    assert.is_false(ok)
    assert.matches("kubeconfig.load: unknown option 'contxt'", err)
  end)
end)

describe("kubeconfig.parse_rfc3339", function()
  it("reads UTC, offsets and fractions", function()
    assert.equal(0, kubeconfig.parse_rfc3339("1970-01-01T00:00:00Z"))
    assert.equal(1700000000, kubeconfig.parse_rfc3339("2023-11-14T22:13:20Z"))
    assert.equal(1700000000, kubeconfig.parse_rfc3339("2023-11-14T23:13:20.999+01:00"))
    assert.equal(951782400, kubeconfig.parse_rfc3339("2000-02-29T00:00:00Z"))
    assert.is_nil(kubeconfig.parse_rfc3339("yesterday"))
    assert.is_nil(kubeconfig.parse_rfc3339("2023-11-14T22:13:20"))
  end)
end)

describe("kubeconfig.credential", function()
  local dir
  before_each(function() dir = proc.tmpdir() end)
  after_each(function() os.execute("rm -rf " .. proc.quote(dir)) end)

  it("runs the plugin once and caches the token until it expires", function()
    local count, info = dir .. "/count", dir .. "/info"
    local cfg = exec_cfg("exec", {PLUGIN_COUNT_FILE = count, PLUGIN_INFO_FILE = info})
    local a, b, c = sched.run(function()
      local first = assert(kubeconfig.credential(cfg))
      local second = assert(kubeconfig.credential(cfg))
      kubeconfig.invalidate(cfg) -- as on a 401
      local third = assert(kubeconfig.credential(cfg))
      return first, second, third
    end)
    assert.equal("plugin-token-1", a.token)
    assert.equal(4102444799, a.expires) -- 2099-12-31T23:59:59Z
    assert.equal(a, b)
    assert.equal("plugin-token-2", c.token)
    assert.equal(2, count_lines(count))
    -- The plugin got its arguments and KUBERNETES_EXEC_INFO with the cluster.
    local f = assert(io.open(info))
    local args, exec_info = f:read("l"), f:read("a")
    f:close()
    assert.matches("%-%-cluster sim$", args)
    local decoded = assert(json.decode(exec_info))
    assert.equal("client.authentication.k8s.io/v1", decoded.apiVersion)
    assert.equal("ExecCredential", decoded.kind)
    assert.is_false(decoded.spec.interactive)
    assert.equal("https://127.0.0.1:6443", decoded.spec.cluster.server)
    assert.is_string(decoded.spec.cluster["certificate-authority-data"])
  end)

  it("refuses a credential the plugin returns already expired, naming when it expired", function()
    local count = dir .. "/count"
    local cfg = exec_cfg("exec", {PLUGIN_COUNT_FILE = count, PLUGIN_MODE = "expired"})
    local results = sched.run(function()
      local r = {}
      for i = 1, 2 do r[i] = table.pack(kubeconfig.credential(cfg)) end
      return r
    end)
    for _, r in ipairs(results) do
      assert.is_nil(r[1])
      -- 2001-02-03T04:05:06.5+01:00, in UTC
      assert.matches("^exec plugin %S+: credential expired at 2001%-02%-03T03:05:06Z$", r[2])
      assert.equal("credential_expired", r[3])
    end
    -- never cached: each call runs the plugin
    assert.equal(2, count_lines(count))
  end)

  it("does not use a cached credential that is about to expire: the plugin runs again", function()
    local count = dir .. "/count"
    local cfg = exec_cfg("exec", {PLUGIN_COUNT_FILE = count, PLUGIN_MODE = "soon"})
    local tokens = sched.run(function()
      local t = {}
      for i = 1, 2 do t[i] = assert(kubeconfig.credential(cfg)).token end
      return t
    end)
    assert.same({"plugin-token-1", "plugin-token-2"}, tokens)
    assert.equal(2, count_lines(count))
  end)

  it("shares one run between tasks asking at once", function()
    local count = dir .. "/count"
    local cfg = exec_cfg("exec", {PLUGIN_COUNT_FILE = count, PLUGIN_MODE = "forever"})
    local tokens = sched.run(function()
      local tasks, out = {}, {}
      for i = 1, 5 do
        tasks[i] = sched.spawn(function() return assert(kubeconfig.credential(cfg)).token end)
      end
      for i = 1, 5 do
        local ok, token = tasks[i]:join()
        assert(ok, token)
        out[i] = token
      end
      return out
    end)
    assert.same({"plugin-token-1", "plugin-token-1", "plugin-token-1", "plugin-token-1",
      "plugin-token-1"}, tokens)
    assert.equal(1, count_lines(count))
  end)

  it("speaks v1beta1 and returns client certificates", function()
    local cfg = exec_cfg("exec-beta", {PLUGIN_MODE = "cert", PLUGIN_COUNT_FILE = dir .. "/c"})
    local cred = sched.run(function() return assert(kubeconfig.credential(cfg)) end)
    assert.is_nil(cred.token)
    assert.matches("^%-%-%-%-%-BEGIN CERTIFICATE%-%-%-%-%-\nCERT1\n", cred.cert)
    assert.matches("BEGIN PRIVATE KEY", cred.key)
    assert.is_nil(cred.expires)
  end)

  local failures = {
    {"fail", "exec plugin %S+ failed %(exit code 1%): plugin: you "
      .. "are not logged in; run plugin login"},
    {"garbage", "exec plugin %S+: the output is not an "
      .. "ExecCredential %(not JSON%)"},
    {"wrong-version", "exec plugin %S+: configured for "
      .. "client.authentication.k8s.io/v1 but returned client.authentication.k8s.io/v1alpha1"},
    {"no-status", "exec plugin %S+: the ExecCredential has no status"},
    {"half-cert", "only one of clientCertificateData and clientKeyData"},
  }
  for _, case in ipairs(failures) do
    it("fails clearly when the plugin's mode is " .. case[1], function()
      local count = dir .. "/count"
      local cfg = exec_cfg("exec", {PLUGIN_MODE = case[1], PLUGIN_COUNT_FILE = count})
      local cred, err, code = sched.run(function() return kubeconfig.credential(cfg) end)
      assert.is_nil(cred)
      assert.matches(case[2], err)
      assert.equal("credential", code)
      assert.is_nil(err:find("secret", 1, true))
      assert.is_nil(err:find("plugin-token", 1, true))
      -- A failure is not cached.
      sched.run(function() return kubeconfig.credential(cfg) end)
      assert.equal(2, count_lines(count))
    end)
  end

  it("names a missing plugin with its install hint", function()
    local cfg = assert(kubeconfig.load{kubeconfig = FIX .. "/exec.yaml"})
    cfg.auth.exec.command = "moonship-no-such-plugin"
    local cred, err, code = sched.run(function() return kubeconfig.credential(cfg) end)
    assert.is_nil(cred)
    assert.equal("spawn moonship-no-such-plugin: ENOENT: no such file or directory; install the "
      .. "test plugin", err)
    assert.equal("credential", code)
  end)

  it("raises on a configuration without a plugin", function()
    local cfg = assert(kubeconfig.load{kubeconfig = FIX .. "/first.yaml"})
    local ok, err = pcall(kubeconfig.credential, cfg)
    assert.is_false(ok)
    assert.matches("has no exec credential plugin", err)
  end)
end)
