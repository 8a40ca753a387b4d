-- moonship.run.deploy and the settings of moonship.cli.deploy, in-process: each bad option value
-- and its message, the namespace rule (the name's source in the message), prepare's result for
-- a bad template (exit 2, file:line:col), open's preflight against kubesim (a missing namespace
-- is created, but not in a dry run nor for keep_missing; a cluster that cannot be used is one
-- line) and open_journal's refusal of a journal that cannot be written.
local deploy = require "moonship.run.deploy"
local cli_deploy = require "moonship.cli.deploy"
local kube = require "moonship.kube"
local sched = require "moonship.sched"
local kubesim = require "support.kubesim"
local proc = require "support.proc"
local testserver = require "support.testserver"

local TEMPLATE = [[
app: shop
services:
- {name: web, image: example/web:1}
workflows:
- name: up
  order_from: [services.web]
]]

local RULE = "a namespace name must be a lowercase RFC 1123 label: at most 63 characters, "
  .. "only a-z, 0-9 and '-', starting and ending with a letter or digit"

local dir = proc.tmpdir()
local template = proc.write_file(dir .. "/app.yaml", TEMPLATE)
teardown(function() os.execute("rm -rf " .. proc.quote(dir)) end)

-- A kubeconfig of one context whose namespace is ns, for server.
local function kubeconfig(path, server, ns)
  return proc.write_file(path, ([[
apiVersion: v1
kind: Config
current-context: ctx
clusters: [{name: c, cluster: {server: %s}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: ctx, context: {cluster: c, user: u%s}}]
]]):format(server, ns and (", namespace: " .. ns) or ""))
end

-- Collects what a function of this module writes.
local function collector()
  local parts = {}
  return function(text) parts[#parts + 1] = text end, function() return table.concat(parts) end
end

-- prepare(s) in a task: model, workflow, hooks or nil, the bad-input result; and stderr's text.
local function prepare(s)
  local stderr, text = collector()
  local r = table.pack(sched.run(deploy.prepare, s, stderr))
  return r, text()
end

describe("deploy settings", function()
  local settings = cli_deploy.settings

  it("turns options into settings: defaults, numbers and durations", function()
    local s = assert(settings({workflow = "up", qps = "0.5", burst = "20", concurrency = "4", timeout = "1m30s",
                               settle = "45", history = "0", image = {"web=r/web:2"}, ["dry-run"] = true},
                              {"app.yaml"}, true))
    assert.same({"app.yaml", "up", 0.5, 20, 4, 90, 45, 0, true}, {s.template, s.workflow, s.qps, s.burst,
      s.concurrency, s.timeout, s.settle, s.history, s.dry_run})
    assert.same({web = "r/web:2"}, s.images)
    assert.same({"text", "all", "auto", false, false}, {s.output, s.logs, s.color, s.sim, s.resume})
    -- pruning: the command line's when it says, else the template's prune: key
    local model = {prune = true}
    assert.is_nil(s.prune)
    assert.is_true(deploy.prunes(s, model))
    assert.is_false(deploy.prunes(s, {}))
    assert.is_false(deploy.prunes(assert(settings({workflow = "up", ["no-prune"] = true}, {}, true)), model))
    assert.is_true(deploy.prunes(assert(settings({workflow = "up", prune = true}, {}, true)), {}))
    assert.same({nil, "--prune and --no-prune contradict each other"},
      {settings({workflow = "up", prune = true, ["no-prune"] = true}, {}, true)})
    s = assert(settings({sim = true, ["time-scale"] = "0.1", scenario = "s.yaml", qps = "0"}, {}, false))
    assert.same({0.1, "s.yaml", 0}, {s.time_scale, s.scenario, s.qps})
  end)

  it("refuses each bad value with its message", function()
    local cases = {
      {{}, "missing -w WORKFLOW"},
      {{workflow = "up", output = "yaml"}, "--output must be text or json"},
      {{workflow = "up", logs = "some"}, "--logs must be all, failed or none"},
      {{workflow = "up", color = "sometimes"}, "--color must be auto, always or never"},
      {{workflow = "up", concurrency = "0"}, "--concurrency must be a positive integer"},
      {{workflow = "up", concurrency = "1.5"}, "--concurrency must be a positive integer"},
      {{workflow = "up", concurrency = "many"}, "--concurrency must be a positive integer"},
      {{workflow = "up", qps = "-1"}, "--qps must be a number of requests per second (0: no limit)"},
      {{workflow = "up", qps = "fast"}, "--qps must be a number of requests per second (0: no limit)"},
      {{workflow = "up", qps = "1e999"}, "--qps must be a number of requests per second (0: no limit)"},
      {{workflow = "up", burst = "0"}, "--burst must be a positive integer"},
      {{workflow = "up", burst = "2.5"}, "--burst must be a positive integer"},
      {{workflow = "up", timeout = "soon"}, '--timeout: not a duration: "soon" (use e.g. 90s, 5m, 1h30m)'},
      {{workflow = "up", timeout = "-5s"}, '--timeout: not a duration: "-5s" (use e.g. 90s, 5m, 1h30m)'},
      {{workflow = "up", timeout = "0s"}, "--timeout must be more than 0s"},
      {{workflow = "up", settle = "5 min"}, '--settle: not a duration: "5 min" (use e.g. 90s, 5m, 1h30m)'},
      {{workflow = "up", ["time-scale"] = "0.1"}, "--scenario and --time-scale need --sim"},
      {{workflow = "up", scenario = "s.yaml"}, "--scenario and --time-scale need --sim"},
      {{workflow = "up", sim = true, ["time-scale"] = "0"}, "--time-scale must be a positive number"},
      {{workflow = "up", sim = true, ["time-scale"] = "fast"}, "--time-scale must be a positive number"},
      {{workflow = "up", history = "-1"}, "--history must be a number of runs (0: keep all)"},
      {{workflow = "up", history = "1.5"}, "--history must be a number of runs (0: keep all)"},
      {{workflow = "up", image = {"web"}},
       "--image must be NAME=REF, like backend=registry.example/backend:1.2 (got 'web')"},
      {{workflow = "up", image = {"web=a:1", "web=b:2"}}, "--image web given twice ('a:1' and 'b:2')"},
    }
    for _, case in ipairs(cases) do
      local s, err = settings(case[1], {"app.yaml"}, true)
      assert.is_nil(s)
      assert.equal(case[2], err)
    end
    assert.same({nil, "more than one template given: a.yaml b.yaml"}, {settings({workflow = "up"}, {"a.yaml", "b.yaml"}, true)})
    assert.is_table(settings({}, {}, false)) -- diff and rollback: -w is not required
  end)
end)

describe("deploy namespace", function()
  it("hints the kubeconfig context's namespace to the template, but -n's or <app>-<env>'s first", function()
    local kc = kubeconfig(dir .. "/kc-team", "http://127.0.0.1:1", "team")
    assert.equal("team", deploy.namespace_hint {kubeconfig = kc})
    assert.equal("mine", deploy.namespace_hint {kubeconfig = kc, namespace = "mine"})
    assert.is_nil(deploy.namespace_hint {kubeconfig = kc, env = "pr-1"}) -- the template makes it
    assert.is_nil(deploy.namespace_hint {kubeconfig = kc, sim = true}) -- kubesim's context names none
    assert.is_nil(deploy.namespace_hint {kubeconfig = dir .. "/missing"}) -- said when connecting
    local model = assert(prepare {template = template, workflow = "up", kubeconfig = kc}[1])
    assert.equal("team", model.namespace)
    model = assert(prepare {template = template, workflow = "up", kubeconfig = kc, env = "PR_7"}[1])
    assert.equal("shop-pr-7", model.namespace)
  end)

  it("refuses a name that is not an RFC 1123 label, naming where it came from, before connecting", function()
    local kc = kubeconfig(dir .. "/kc-bad", "http://127.0.0.1:1", "Team.A")
    for _, case in ipairs {
      {{namespace = "Bad_NS"}, "Bad_NS", "-n"},
      {{namespace = ("x"):rep(64)}, ("x"):rep(64), "-n"},
      {{namespace = "-demo"}, "-demo", "-n"},
      {{namespace = "demo-"}, "demo-", "-n"},
      {{namespace = ""}, "", "-n"},
      {{}, "Team.A", "the kubeconfig context's namespace"},
    } do
      local s = case[1]
      s.template, s.workflow, s.kubeconfig = template, "up", kc
      local model = assert(prepare(s)[1])
      local conn, err = sched.run(deploy.open, s, model)
      assert.is_nil(conn)
      assert.equal(("invalid namespace '%s' (from %s): %s"):format(case[2], case[3], RULE), err)
    end
    local model = assert(prepare {template = template, workflow = "up", namespace = ("x"):rep(63)}[1])
    assert.equal(("x"):rep(63), model.namespace) -- 63 is allowed: this one goes on to connect
  end)
end)

describe("deploy.prepare", function()
  it("gives a bad template's messages with file:line:col, on stderr and as the result: exit 2", function()
    local bad = proc.write_file(dir .. "/bad.yaml", (TEMPLATE:gsub("services%.web%]", "services.wbe]")))
    local r, stderr = prepare {template = bad, workflow = "up"}
    assert.is_nil(r[1])
    local msg = bad .. ":6:16: error: unknown task 'services.wbe' (did you mean 'services.web'?)"
    assert.same({exit_code = 2, errors = {msg}}, r[2])
    assert.equal(msg .. "\n", stderr)
    r, stderr = prepare {template = template, workflow = "upp"}
    local wmsg = template .. ": error: unknown workflow 'upp' (did you mean 'up'?)"
    assert.same({exit_code = 2, errors = {wmsg}}, r[2])
    assert.equal(wmsg .. "\n", stderr)
    local none = dir .. "/none.yaml"
    r = prepare {template = none, workflow = "up"}
    assert.same({exit_code = 2, errors = {none .. ":1:1: error: cannot read the template: " .. none
      .. ": No such file or directory"}}, r[2])
  end)

  it("loads the template and the workflow, writing its warnings", function()
    local warned = proc.write_file(dir .. "/warn.yaml", TEMPLATE .. "colour: blue\n")
    local r, stderr = prepare {template = warned, workflow = "up"}
    assert.equal("shop", r[1].app)
    assert.equal("up", r[2].name)
    assert.is_table(r[3]) -- the hooks (none given: the defaults)
    assert.matches("^" .. warned:gsub("%p", "%%%0") .. ":7:1: warning: .*colour", stderr)
    local model, none = table.unpack(sched.run(function()
      return table.pack(deploy.prepare({template = template}, error, true))
    end), 1, 2)
    assert.equal("shop", model.app)
    assert.is_nil(none) -- without_workflow
  end)
end)

describe("deploy.open against kubesim", function()
  local sim
  setup(function() sim = kubesim.start {} end)
  teardown(function() sim:stop() end)

  local function open(ns, flags, keep_missing)
    local s = {template = template, workflow = "up", kubeconfig = sim.kubeconfig, namespace = ns}
    for k, v in pairs(flags or {}) do s[k] = v end
    local model = assert(prepare(s)[1])
    return sched.run(function()
      local conn, err = deploy.open(s, model, keep_missing)
      if not conn then return nil, err end
      local c = conn.client
      local got, _, code = c:get("v1", "Namespace", ns)
      return conn.state, c.namespace, got and got.metadata.labels, code
    end)
  end

  it("uses a namespace that exists", function()
    local state, client_ns = open("default")
    assert.same({"exists", "default"}, {state, client_ns})
  end)

  it("creates a missing namespace, labelled as moonship's", function()
    local state, client_ns, labels = open("made")
    assert.same({"created", "made"}, {state, client_ns})
    assert.equal("moonship", labels["app.kubernetes.io/managed-by"])
    assert.equal("exists", (open("made")))
  end)

  it("creates nothing in a dry run, nor when told to keep a missing namespace missing", function()
    assert.same({"missing", "dry", nil, "not_found"}, {open("dry", {dry_run = true})})
    assert.same({"missing", "kept", nil, "not_found"}, {open("kept", {}, true)})
  end)

  it("refuses a namespace being deleted", function()
    sched.run(function()
      local c = assert(kube.connect {kubeconfig = sim.kubeconfig})
      assert(c:apply {apiVersion = "v1", kind = "Namespace", metadata = {name = "leaving"}})
      assert(c:delete("v1", "Namespace", "leaving"))
    end)
    local state, err = open("leaving")
    assert.is_nil(state)
    assert.equal("cannot use context 'kubesim' (server " .. sim.url .. "): namespace 'leaving' is being deleted: "
      .. "nothing new can be created in it until it is gone", err)
  end)

  it("refuses a server that cannot be reached, in one line", function()
    local url, stop = testserver.start()
    stop()
    local kc = kubeconfig(dir .. "/kc-gone", url, nil)
    local s = {template = template, workflow = "up", kubeconfig = kc}
    local model = assert(prepare(s)[1])
    local conn, err = sched.run(deploy.open, s, model)
    assert.is_nil(conn)
    assert.matches("^cannot use context 'ctx' %(server " .. url:gsub("%p", "%%%0") .. "%): .*[Cc]onnect", err)
    assert.not_matches("\n", err)
  end)
end)

describe("deploy.open_journal", function()
  local model = {app = "shop", namespace = "default", dir = dir, file = template}

  it("refuses a journal that cannot be written, naming the file and --journal-dir", function()
    local blocker = proc.write_file(dir .. "/not-a-directory", "")
    local journal, err = sched.run(deploy.open_journal, {journal_dir = blocker .. "/runs", output = "none"}, model, "up")
    assert.is_nil(journal)
    assert.matches("^cannot write the run journal: " .. blocker:gsub("%p", "%%%0")
      .. "/runs/[%w-]+%.jsonl: Not a directory %(set %-%-journal%-dir%)$", err)
  end)

  it("writes the events to its file and, with --output json, as JSON lines to stdout", function()
    local stdout, out = collector()
    local journal = sched.run(function()
      local j = assert(deploy.open_journal({journal_dir = dir .. "/runs", output = "json"}, model, "up", stdout, error))
      j:emit {event = "log", message = "hello"}
      j:close()
      return j
    end)
    assert.equal(dir .. "/runs/" .. journal.run_id .. ".jsonl", journal.path)
    assert.equal(proc.read_file(journal.path), out())
    assert.matches('"message":"hello"', out())
  end)
end)
