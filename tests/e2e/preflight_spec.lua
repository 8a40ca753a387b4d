-- The preflight of `moonship deploy`: a cluster that cannot be reached, or refuses the
-- credentials, or forbids the namespace, is one line on stderr within seconds and exit 2, before
-- the journal and the first step; an invalid namespace name is refused before any request. Each
-- case checks the exact line, the exit code and that the server holds nothing new.
local kubesim = require "support.kubesim"
local proc = require "support.proc"

local PLUGIN = proc.source_dir .. "/tests/fixtures/exec-credential-plugin"
local WRITES = {"create", "update", "patch", "apply", "delete", "deletecollection"}

local APP = [[
app: demo
services:
- {name: api, image: example/api:1}
workflows:
- name: up
  order_from: [services.api]
]]

local function writes(stats)
  local n = 0
  for _, verb in ipairs(WRITES) do n = n + (stats.requests_by_verb[verb] or 0) end
  return n
end

-- A kubeconfig with one context (default "sim") for server; user is a YAML flow mapping.
local function kubeconfig(dir, o)
  local cluster = {"server: " .. o.server}
  if o.ca_data then cluster[#cluster + 1] = "certificate-authority-data: " .. o.ca_data end
  if o.server_name then cluster[#cluster + 1] = "tls-server-name: " .. o.server_name end
  local ctx = {"cluster: c", "user: u"}
  if o.namespace then ctx[#ctx + 1] = "namespace: " .. o.namespace end
  return proc.write_file(dir .. "/kubeconfig", ([[
apiVersion: v1
kind: Config
current-context: %s
clusters:
- name: c
  cluster: {%s}
contexts:
- name: %s
  context: {%s}
users:
- name: u
  user: %s
]]):format(o.context or "sim", table.concat(cluster, ", "), o.context or "sim", table.concat(ctx, ", "),
    o.user or "{}"))
end

-- An exec user running the test plugin with these environment variables.
local function exec_user(env)
  local vars = {}
  for k, v in pairs(env) do vars[#vars + 1] = ("{name: %s, value: '%s'}"):format(k, v) end
  table.sort(vars)
  return ("{exec: {apiVersion: client.authentication.k8s.io/v1, command: '%s', interactiveMode: Never, env: [%s]}}")
    :format(PLUGIN, table.concat(vars, ", "))
end


describe("moonship deploy preflight", function()
  local dir
  before_each(function()
    dir = proc.tmpdir()
    proc.write_file(dir .. "/app.yaml", APP)
  end)
  after_each(function() os.execute("rm -rf " .. proc.quote(dir)) end)

  local function deploy(kc, ...)
    local argv = {proc.moonship, "deploy", dir .. "/app.yaml", "-w", "up", "--kubeconfig", kc}
    for _, a in ipairs {...} do argv[#argv + 1] = a end
    return proc.run(argv)
  end

  -- Exit 2, exactly one line on stderr, nothing on stdout, and no journal: the run never started.
  local function refused(r, line)
    assert.equal(2, r.code, r.stderr)
    assert.equal(line .. "\n", r.stderr)
    assert.equal("", r.stdout)
    assert.is_false(proc.exists(dir .. "/.moonship/runs"), "a journal directory was made")
  end

  -- The server holds nothing new: no write reached it, and namespace demo does not exist.
  local function nothing_applied(sim, before)
    local stats = sim:stats()
    assert.equal(0, writes(stats))
    assert.equal(before.objects, stats.objects)
    assert.equal(404, (sim:request("GET", "/api/v1/namespaces/demo")))
  end

  it("a refused connection: at once, naming the context and the server", function()
    -- a free port, reserved and closed again: nothing listens there
    local gone = kubesim.start {}
    local url = gone.url
    gone:stop()
    local r = deploy(kubeconfig(dir, {server = url, context = "staging"}), "-n", "demo")
    refused(r, ("moonship: cannot use context 'staging' (server %s): connection refused"):format(url))
    -- the same line with -o json: it is not an event of a run
    r = deploy(kubeconfig(dir, {server = url, context = "staging"}), "-n", "demo", "-o", "json")
    refused(r, ("moonship: cannot use context 'staging' (server %s): connection refused"):format(url))
  end)

  it("a host name that does not resolve", function()
    local r = deploy(kubeconfig(dir, {server = "https://no-such-host.invalid:6443"}), "-n", "demo")
    refused(r, "moonship: cannot use context 'sim' (server https://no-such-host.invalid:6443): "
      .. "could not resolve host 'no-such-host.invalid'")
  end)

  describe("against kubesim over TLS", function()
    local sim, before
    before_each(function()
      sim = kubesim.start {tls = true, token = "right-token",
                           scenario = "unbound_users: {alice: alice-token}\n"}
      before = sim:stats()
    end)
    after_each(function() sim:stop() end)

    local function line(cause)
      return ("moonship: cannot use context 'sim' (server %s): %s"):format(sim.url, cause)
    end

    it("a wrong token: 401", function()
      local kc = kubeconfig(dir, {server = sim.url, ca_data = sim.ca_data, user = "{token: wrong-token}"})
      refused(deploy(kc, "-n", "demo"), line("401 unauthorized (token rejected)"))
      nothing_applied(sim, before)
    end)

    it("a CA that did not sign the server's certificate", function()
      local key, crt = dir .. "/other-ca.key", dir .. "/other-ca.crt"
      assert.is_true(os.execute(("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
        .. "-keyout %s -out %s -days 1 -subj /CN=other-ca 2>/dev/null"):format(proc.quote(key), proc.quote(crt))))
      local p = assert(io.popen("base64 -w0 " .. proc.quote(crt)))
      local other = p:read("a")
      p:close()
      local kc = kubeconfig(dir, {server = sim.url, ca_data = other, user = "{token: right-token}"})
      refused(deploy(kc, "-n", "demo"), line("TLS: unknown certificate authority (self-signed or wrong CA)"))
      nothing_applied(sim, before)
    end)

    it("a certificate for another name (tls-server-name)", function()
      local kc = kubeconfig(dir, {server = sim.url, ca_data = sim.ca_data, server_name = "other.example",
                                  user = "{token: right-token}"})
      refused(deploy(kc, "-n", "demo"),
        line("TLS: certificate name mismatch (the server's certificate is not for other.example)"))
      nothing_applied(sim, before)
    end)

    it("an exec plugin that fails: its stderr", function()
      local kc = kubeconfig(dir, {server = sim.url, ca_data = sim.ca_data, user = exec_user {PLUGIN_MODE = "fail"}})
      refused(deploy(kc, "-n", "demo"), line("exec plugin exec-credential-plugin failed (exit code 1): "
        .. "plugin: you are not logged in; run plugin login"))
      nothing_applied(sim, before)
    end)

    it("an exec plugin that returns an expired credential", function()
      local count = dir .. "/count"
      local kc = kubeconfig(dir, {server = sim.url, ca_data = sim.ca_data,
                                  user = exec_user {PLUGIN_MODE = "expired", PLUGIN_COUNT_FILE = count}})
      refused(deploy(kc, "-n", "demo"),
        line("exec plugin exec-credential-plugin: credential expired at 2001-02-03T03:05:06Z"))
      -- the expired credential never reached the server
      assert.equal(0, sim:stats().requests_total)
      nothing_applied(sim, before)
    end)

    it("an exec plugin whose credentials are rejected: run once more after the 401, then refused", function()
      local count = dir .. "/count"
      local kc = kubeconfig(dir, {server = sim.url, ca_data = sim.ca_data,
                                  user = exec_user {PLUGIN_COUNT_FILE = count}})
      refused(deploy(kc, "-n", "demo"), line("401 unauthorized (the exec plugin's credential was rejected, "
        .. "also after running the plugin again)"))
      assert.equal(2, proc.count_lines(count))
      nothing_applied(sim, before)
    end)

    it("a token that is authenticated but may not get the namespace: 403 with the verb", function()
      local kc = kubeconfig(dir, {server = sim.url, ca_data = sim.ca_data, user = "{token: alice-token}"})
      refused(deploy(kc, "-n", "demo"), line("403 forbidden: cannot get namespace 'demo' (namespaces \"demo\" "
        .. "is forbidden: User \"alice\" cannot get resource \"namespaces\" in API group \"\" in the namespace \"demo\")"))
      nothing_applied(sim, before)
    end)

    it("kubesim's unbound user may read discovery and /version, and nothing else", function()
      local function as_alice(path)
        local code, body = sim:request("GET", path, {token = "alice-token"})
        return code, code ~= 200 and assert(kubesim.decode(body)).message or nil
      end
      assert.equal(200, (as_alice("/version")))
      assert.equal(200, (as_alice("/apis/apps/v1")))
      assert.same({403, 'deployments.apps is forbidden: User "alice" cannot list resource "deployments" in API '
        .. 'group "apps" in the namespace "x"'}, {as_alice("/apis/apps/v1/namespaces/x/deployments")})
      assert.same({403, 'nodes is forbidden: User "alice" cannot list resource "nodes" in API group "" at the '
        .. "cluster scope"}, {as_alice("/api/v1/nodes")})
      -- a token nobody has is still not authenticated
      assert.equal(401, (sim:request("GET", "/api/v1/nodes", {token = "nobody"})))
    end)
  end)

  it("an exec plugin whose first credential is rejected and second accepted: the run goes on", function()
    -- the plugin's n-th run gives plugin-token-n
    local sim = kubesim.start {tls = true, token = "plugin-token-2"}
    local count = dir .. "/count"
    local kc = kubeconfig(dir, {server = sim.url, ca_data = sim.ca_data, user = exec_user {PLUGIN_COUNT_FILE = count}})
    local r = deploy(kc, "-n", "demo", "--dry-run", "-o", "json")
    sim:stop()
    assert.equal(0, r.code, r.stderr)
    assert.matches('"event":"run_finished"', r.stdout)
    assert.equal(2, proc.count_lines(count))
  end)

  it("a server that does not answer: timed out after the preflight's few seconds", function()
    -- every GET waits 6 s in kubesim; the preflight gives up after 5
    local sim = kubesim.start {scenario = "faults: {latency: 6, verbs: [get]}\n"}
    local kc = kubeconfig(dir, {server = sim.url})
    local r = deploy(kc, "-n", "demo")
    local stats = sim:stats()
    sim:stop()
    refused(r, ("moonship: cannot use context 'sim' (server %s): timed out after 5 s waiting for the answer")
      :format(sim.url))
    assert.equal(0, writes(stats))
  end)

  describe("an invalid namespace name", function()
    local sim
    before_each(function() sim = kubesim.start {} end)
    after_each(function() sim:stop() end)

    local RULE = "a namespace name must be a lowercase RFC 1123 label: at most 63 characters, only a-z, "
      .. "0-9 and '-', starting and ending with a letter or digit"

    it("-n Bad_NS is bad input, refused before any request", function()
      local r = deploy(sim.kubeconfig, "-n", "Bad_NS")
      refused(r, "moonship: invalid namespace 'Bad_NS' (from -n): " .. RULE)
      r = deploy(sim.kubeconfig, "-n", ("x"):rep(64))
      refused(r, ("moonship: invalid namespace '%s' (from -n): %s"):format(("x"):rep(64), RULE))
      r = deploy(sim.kubeconfig, "-n", "-demo")
      refused(r, "moonship: invalid namespace '-demo' (from -n): " .. RULE)
      assert.equal(0, sim:stats().requests_total)
    end)

    it("so is the kubeconfig context's namespace", function()
      local kc = kubeconfig(dir, {server = sim.url, namespace = "Team.A"})
      refused(deploy(kc), "moonship: invalid namespace 'Team.A' (from the kubeconfig context's namespace): " .. RULE)
      assert.equal(0, sim:stats().requests_total)
    end)
  end)
end)
