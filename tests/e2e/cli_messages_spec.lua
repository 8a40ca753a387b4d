-- What every command says when it is used wrong, the same way everywhere: a usage error is one
-- line and where the help is; an unknown command or option gets a suggestion; an unknown
-- workflow is "file: error: ..."; a hooks file's problems are each at their line; a directory
-- stands for its template; the namespace follows one rule; --help is two aligned columns.
local kubesim = require "support.kubesim"
local proc = require "support.proc"

local SHOP = "examples/shop/moonship.yaml"
local NO_KUBECONFIG = {KUBECONFIG = "/nonexistent/kubeconfig"}

local function moonship(...)
  return proc.run {proc.moonship, env = NO_KUBECONFIG, ...}
end

local function hint(command)
  return "Run 'moonship " .. command .. " --help' for its options.\n"
end

describe("usage errors", function()
  it("suggest the command meant", function()
    local r = moonship("deplyo", "-w", "deploy")
    assert.equal(2, r.code)
    assert.equal("moonship: unknown command 'deplyo' (did you mean 'deploy'?)\n"
      .. "Run 'moonship --help' for the commands.\n", r.stderr)
    r = moonship("frobnicate")
    assert.equal("moonship: unknown command 'frobnicate'\nRun 'moonship --help' for the commands.\n", r.stderr)
  end)

  it("are one line and the --help hint, for every command", function()
    local cases = {
      {{"deploy", SHOP, "-w", "deploy", "--color", "sometimes"}, "deploy: --color must be auto, always or never"},
      {{"deploy", SHOP, "-w", "deploy", "--namspace", "x"}, "deploy: unknown option '--namspace' (did you mean '--namespace'?)"},
      {{"plan", SHOP, "-w", "deploy", "--format", "svg"}, "plan: --format must be text, mermaid, dot or json"},
      {{"plan", SHOP}, "plan: missing -w WORKFLOW"},
      {{"validate", SHOP, "--image", "api"}, "validate: --image must be NAME=REF, like backend=registry.example/backend:1.2 (got 'api')"},
      {{"render", SHOP, "--run-id"}, "render: option '--run-id' needs a value (ID)"},
      {{"report", "a.jsonl", "b.jsonl"}, "report: one journal at a time"},
      {{"run"}, "run: missing SCRIPT.lua"},
      {{"version", "--bogus"}, "version: unknown option '--bogus'"},
    }
    for _, case in ipairs(cases) do
      local r = moonship(table.unpack(case[1]))
      assert.equal(2, r.code, table.concat(case[1], " "))
      assert.equal("moonship " .. case[2] .. "\n" .. hint(case[1][1]), r.stderr)
      assert.equal("", r.stdout)
    end
  end)

  it("name an unknown workflow the same way in every command", function()
    for _, command in ipairs {"deploy", "plan", "validate", "render"} do
      local r = moonship(command, SHOP, "-w", "deplyo")
      assert.equal(2, r.code, command)
      assert.equal(SHOP .. ": error: unknown workflow 'deplyo' (did you mean 'deploy'?)\n", r.stderr, command)
    end
  end)
end)

describe("--help", function()
  it("aligns every command's options in two columns within 80", function()
    for _, command in ipairs {"deploy", "plan", "report", "validate", "render", "run", "version"} do
      local r = moonship(command, "--help")
      assert.equal(0, r.code)
      local col
      for line in r.stdout:match("\noptions:\n(.*)$"):gmatch("[^\n]+") do
        assert.is_true(#line <= 80, line)
        local at
        if line:match("^  %-") or line:match("^      %-%-") then
          local flags = line:match("^(  .-%S)  +%S")
          at = flags and line:find("%S", #flags + 1)  -- nil: a flag too wide, its description below
        else
          at = line:find("%S")                        -- a description's next line
        end
        if at then
          col = col or at
          assert.equal(col, at, command .. ": " .. line)
        end
      end
    end
    assert.truthy(moonship("deploy", "--help").stdout:find(
      "\n      --color auto|always|never  color the output (default auto: on a terminal,\n"
      .. "                                 unless NO_COLOR is set)\n", 1, true))
  end)
end)

describe("a hooks file with problems", function()
  local dir = proc.tmpdir()
  proc.write_file(dir .. "/moonship.yaml", proc.read_file(SHOP))
  local function each_command(check)
    for _, command in ipairs {"validate", "render", "plan", "deploy"} do
      local r = proc.run {"sh", "-c", "cd " .. proc.quote(dir) .. " && " .. proc.quote(proc.moonship .. "") .. " "
        .. command .. " . -w deploy", env = NO_KUBECONFIG}
      assert.equal(2, r.code, command .. ": " .. r.stderr)
      check(command, r.stderr)
    end
  end

  it("reports each misspelt hook at its line with a suggestion, under every command", function()
    proc.write_file(dir .. "/hooks.lua", [[
-- the shop's hooks
return {
  on_eror = function(ctx, task, err) return "halt" end,
  retyr = function(ctx, task, err, attempt) return 1 end,
  after_task = function() end,
}
]])
    each_command(function(command, stderr)
      local want = "hooks.lua:3: error: unknown hook 'on_eror' (did you mean 'on_error'?)\n"
        .. "hooks.lua:4: error: unknown hook 'retyr' (did you mean 'retry'?)\n"
      if command == "validate" then want = want .. "moonship.yaml: invalid: 2 errors, 0 warnings\n" end
      assert.equal(want, stderr, command)
    end)
  end)

  it("reports a syntax error at its real line, once, under every command", function()
    proc.write_file(dir .. "/hooks.lua", "-- the shop's hooks\nreturn {\n  retry = function() end\n"
      .. "  after_task = function() end,\n}\n")
    each_command(function(command, stderr)
      local want = "hooks.lua:4: error: '}' expected (to close '{' at line 2) near 'after_task'\n"
      if command == "validate" then want = want .. "moonship.yaml: invalid: 1 error, 0 warnings\n" end
      assert.equal(want, stderr, command)
    end)
  end)
end)

describe("a directory for the template", function()
  it("is read as validate and render read it, by deploy and plan too", function()
    local r = moonship("plan", "examples/shop", "-w", "deploy", "--width", "100")
    assert.equal(0, r.code, r.stderr)
    assert.matches("^shop · workflow deploy · 3 steps, 4 tasks", r.stdout)
    local dir = proc.tmpdir()
    proc.write_file(dir .. "/moonship.yaml",
      "app: tiny\njobs:\n- {name: hello, image: busybox, command: [echo, hi]}\nworkflows:\n"
      .. "- name: deploy\n  order_from: [jobs.hello]\n")
    local sim = kubesim.start {time_scale = 0.05}
    r = proc.run {proc.moonship, "deploy", dir, "-w", "deploy", "--kubeconfig", sim.kubeconfig, "-o", "json"}
    sim:stop()
    assert.equal(0, r.code, r.stderr)
    assert.matches('"event":"run_finished"', r.stdout)
    r = moonship("deploy", proc.tmpdir(), "-w", "deploy")
    assert.equal(2, r.code)
    assert.matches("^moonship: no template in /", r.stderr)
  end)
end)

describe("the namespace", function()
  local FIXTURES = proc.source_dir .. "/tests/fixtures/kubeconfig/"
  local KUBECONFIG = FIXTURES .. "first.yaml:" .. FIXTURES .. "second.yaml" -- the current context: dev

  it("is -n, else <app>-<env> with --env, else the kubeconfig context's, else default: in validate and render too", function()
    local function validate(...)
      local argv = {proc.moonship, "validate", SHOP, ...}
      argv.env = {KUBECONFIG = KUBECONFIG}
      local r = proc.run(argv)
      assert.equal(0, r.code, r.stderr)
      return r.stdout:match("in namespace (%S+);")
    end
    assert.equal("dev-ns", validate())                      -- the current context's
    assert.equal("default", validate("--context", "shared"))  -- a context without one
    assert.equal("staging", validate("-n", "staging", "--context", "shared"))
    assert.equal("shop-pr-7", validate("--env", "pr-7"))
    local r = proc.run {proc.moonship, "render", SHOP, "-w", "deploy", "--kubeconfig", FIXTURES .. "first.yaml"}
    assert.equal(0, r.code, r.stderr)
    assert.matches("\n  namespace: dev%-ns\n", r.stdout)
    assert.is_nil(r.stdout:find("namespace: default", 1, true))
    r = moonship("render", SHOP, "--kubeconfig", "/nonexistent/config")
    assert.equal(2, r.code)
    assert.matches("^moonship: ", r.stderr)
  end)
end)

describe("report on a journal with lines it cannot read", function()
  it("names each line, reads the rest, and says so when nothing was left", function()
    local dir = proc.tmpdir()
    local lines = {
      '{"event":"run_started","t":0,"run":"R1","workflow":"deploy","app":"a","namespace":"n","steps":1,"tasks":["jobs.a"]}',
      '{"event":"task_started","t":0,"run":"R1","workflow":"deploy","task":"jobs.a","step":"s","attempt":1}',
      '{"event":"task_finished","t":1,"run":"R1","workflow":"deploy","task":"jobs.a","step":"s","sta',
      '{"note":"not an event"}',
      '{"event":"run_finished","t":1,"run":"R1","workflow":"deploy","state":"succeeded","exit_code":0}',
    }
    local journal = proc.write_file(dir .. "/R1.jsonl", table.concat(lines, "\n") .. "\n")
    local r = moonship("report", journal, "-o", dir .. "/R1.html")
    assert.equal(0, r.code, r.stderr)
    assert.equal("moonship: warning: " .. journal .. ":3: skipped: column 94: unexpected end of input\n"
      .. "moonship: warning: " .. journal .. ":4: skipped: not a journal event\n"
      .. "moonship: report " .. dir .. "/R1.html\n", r.stderr)
    assert.truthy(proc.read_file(dir .. "/R1.html"):find('<body data-state="succeeded">', 1, true))
    journal = proc.write_file(dir .. "/R2.jsonl", "garbage\n")
    r = moonship("report", journal)
    assert.equal(2, r.code)
    assert.equal("moonship: warning: " .. journal .. ":1: skipped: column 1: unexpected character 'g'\n"
      .. "moonship: " .. journal .. ": no journal events in it\n", r.stderr)
  end)
end)

describe("a YAML syntax error", function()
  it("comes with a one-line hint at its position", function()
    local dir = proc.tmpdir()
    local path = proc.write_file(dir .. "/moonship.yaml", "app: shop\nservices:\n- name: web\n  image: nginx\n"
      .. "  envs:\n  - key: NOTE\n    value: *company-data-covered*\n")
    local r = moonship("validate", path)
    assert.equal(2, r.code)
    assert.equal(path .. ":7:33: error: did not find expected alphabetic or numeric character (while scanning an alias "
      .. "started at 7:12); '*company-data-covered*' reads as an alias ('*' starts one, and its name may have only "
      .. "letters, digits, '-' and '_'): quote the value if it is text (\"*company-data-covered*\")\n"
      .. path .. ": invalid: 1 error, 0 warnings\n", r.stderr)
  end)
end)
