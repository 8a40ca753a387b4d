-- moonship.cli in-process: parse_options (long, short, --name=value, repeated options, "--",
-- options after positionals), its messages (an unknown option with a suggestion, a missing or
-- unwanted value), main's exit codes and what it writes (stdout and stderr captured), and each
-- command's --help, which lists every option it takes (moonship.cli.options and its own).
local cli = require "moonship.cli"
local proc = require "support.proc"

local COMMANDS = {"deploy", "diff", "rollback", "history", "plan", "report", "validate", "render", "run", "version"}

-- A file of its own that only collects what is written to it.
local function sink()
  local parts = {}
  return {
    write = function(self, ...)
      for _, s in ipairs {...} do parts[#parts + 1] = tostring(s) end
      return self
    end,
    flush = function(self) return self end,
    text = function() return table.concat(parts) end,
  }
end

-- cli.main(argv) with io.stdout and io.stderr captured: exit code, stdout, stderr.
local function main(...)
  local out, err = sink(), sink()
  local stdout, stderr = io.stdout, io.stderr
  io.stdout, io.stderr = out, err
  local ok, code = pcall(cli.main, {...})
  io.stdout, io.stderr = stdout, stderr
  assert(ok, code)
  return code, out.text(), err.text()
end

local SPECS = {
  {long = "workflow", short = "w", arg = "WORKFLOW", help = "the workflow"},
  {long = "image", arg = "NAME=REF", many = true, help = "an image"},
  {long = "dry-run", help = "nothing"},
  {long = "namespace", short = "n", arg = "NS", help = "a namespace"},
}

describe("cli.parse_options", function()
  it("reads long and short options, --name=value, flags and positionals in any order", function()
    local opts, args = cli.parse_options(SPECS, {"app.yaml", "-w", "setup", "--namespace=team-a", "--dry-run", "extra"})
    assert.same({workflow = "setup", namespace = "team-a", ["dry-run"] = true}, opts)
    assert.same({"app.yaml", "extra"}, args)
    opts = cli.parse_options(SPECS, {"--workflow", "a", "-n", "b", "--workflow=c"})
    assert.same({workflow = "c", namespace = "b"}, opts) -- the last one given wins
    opts = cli.parse_options(SPECS, {"--namespace=", "--workflow=x=y"})
    assert.same({namespace = "", workflow = "x=y"}, opts) -- only the first '=' splits
  end)

  it("collects a repeated option's values in the order given", function()
    local opts = cli.parse_options(SPECS, {"--image", "web=r/web:1", "--image=job=r/job:2", "--image", "web=r/web:3"})
    assert.same({"web=r/web:1", "job=r/job:2", "web=r/web:3"}, opts.image)
  end)

  it("takes what follows -- (and a lone -) as positionals", function()
    local opts, args = cli.parse_options(SPECS, {"-w", "x", "--", "--dry-run", "-n"})
    assert.same({workflow = "x"}, opts)
    assert.same({"--dry-run", "-n"}, args)
    opts, args = cli.parse_options(SPECS, {"-", "--dry-run"})
    assert.same({["dry-run"] = true}, opts)
    assert.same({"-"}, args)
  end)

  it("stops at the first positional when the command says so (moonship run's script arguments)", function()
    local opts, args = cli.parse_options(SPECS, {"--dry-run", "script.lua", "-w", "x", "--bogus"}, true)
    assert.same({["dry-run"] = true}, opts)
    assert.same({"script.lua", "-w", "x", "--bogus"}, args)
  end)

  it("names the option that is wrong, and what is wrong with it", function()
    for _, case in ipairs {
      {{"--workflo", "x"}, "unknown option '--workflo' (did you mean '--workflow'?)"},
      {{"--bogus"}, "unknown option '--bogus'"},
      {{"-x"}, "unknown option '-x'"},
      {{"app.yaml", "-w"}, "option '-w' needs a value (WORKFLOW)"},
      {{"--namespace"}, "option '--namespace' needs a value (NS)"},
      {{"--dry-run=yes"}, "option '--dry-run' takes no value"},
    } do
      local opts, err = cli.parse_options(SPECS, case[1])
      assert.is_nil(opts)
      assert.equal(case[2], err)
    end
  end)
end)

describe("cli.main", function()
  it("lists the commands, exit 0 when asked and 2 when no command is given", function()
    local code, out, err = main("--help")
    assert.equal(0, code)
    assert.equal("", err)
    assert.matches("^usage: moonship COMMAND %[OPTIONS%] %[ARGS%]\n", out)
    for _, name in ipairs(COMMANDS) do
      assert.matches("\n  " .. name .. " +" .. require("moonship.cli." .. name).summary:gsub("%p", "%%%0"), out)
    end
    local code2, out2 = main()
    assert.equal(2, code2)
    assert.equal(out, out2)
  end)

  it("refuses an unknown command with a suggestion, exit 2", function()
    local code, out, err = main("deplyo")
    assert.equal(2, code)
    assert.equal("", out)
    assert.equal("moonship: unknown command 'deplyo' (did you mean 'deploy'?)\n"
      .. "Run 'moonship --help' for the commands.\n", err)
  end)

  it("gives usage errors as one line naming the command and the option, and where help is; exit 2", function()
    for _, case in ipairs {
      {{"deploy", "app.yaml", "--wrokflow", "x"}, "unknown option '--wrokflow' (did you mean '--workflow'?)"},
      {{"deploy", "app.yaml", "-w"}, "option '-w' needs a value (WORKFLOW)"},
      {{"deploy", "app.yaml"}, "missing -w WORKFLOW"},
      {{"deploy", "a.yaml", "b.yaml", "-w", "x"}, "more than one template given: a.yaml b.yaml"},
      {{"deploy", "-w", "x", "--dry-run=no"}, "option '--dry-run' takes no value"},
      {{"plan", "-w", "x", "--format", "svg"}, "--format must be text, mermaid, dot or json"},
      {{"history", "-o", "yaml"}, "--output must be text or json"},
      {{"report", "a.jsonl", "b.jsonl"}, "one journal at a time"},
      {{"run"}, "missing SCRIPT.lua"},
      {{"version", "--short"}, "unknown option '--short'"},
    } do
      local name = case[1][1]
      local code, out, err = main(table.unpack(case[1]))
      assert.equal(2, code, table.concat(case[1], " "))
      assert.equal("", out)
      assert.equal(("moonship %s: %s\nRun 'moonship %s --help' for its options.\n"):format(name, case[2], name), err)
    end
  end)

  it("runs a script with the arguments after it, options included, and exits with its code", function()
    local dir = proc.tmpdir()
    local script = proc.write_file(dir .. "/s.lua", [[
local a, b = ...
io.stdout:write(arg[0], " ", a, " ", b, " ", #arg, "\n")
return 7
]])
    local code, out, err = main("run", script, "--dry-run", "-w")
    assert.equal(7, code, err)
    assert.equal(script .. " --dry-run -w 2\n", out)
    os.remove(script)
    os.remove(dir)
  end)
end)

describe("moonship COMMAND --help", function()
  for _, name in ipairs(COMMANDS) do
    it(name .. " shows its usage and every option it takes, in 80 columns", function()
      local code, out, err = main(name, "--help")
      assert.equal(0, code)
      assert.equal("", err)
      local cmd = require("moonship.cli." .. name)
      local usage, summary = out:match("^usage: moonship ([^\n]+)\n\n(.-)\n\n")
      assert.equal(cmd.usage, usage)
      assert.equal(cmd.summary, (summary:gsub("\n", " ")))
      assert.is_true(#cmd.options >= 1) -- --help at least
      for _, spec in ipairs(cmd.options) do
        local flag = (spec.short and ("-" .. spec.short .. ", ") or "    ") .. "--" .. spec.long
          .. (spec.arg and (" " .. spec.arg) or "")
        local at = out:find("\n  " .. flag:gsub("%p", "%%%0") .. "[ \n]")
        assert.is_number(at, flag)
        -- its description follows, on its line or the next
        local first = out:sub(at + 3 + #flag):match("^ *\n? *(%S+)")
        assert.equal(spec.help:match("^%S+"), first, flag)
      end
      for line in out:gmatch("[^\n]+") do
        assert.is_true(#line <= 80, "wider than 80 columns: " .. line)
      end
    end)
  end

  it("is the same with -h, whatever else is given, but for an unknown option", function()
    local _, long = main("deploy", "--help")
    local code, short = main("deploy", "app.yaml", "-w", "x", "-h")
    assert.equal(0, code)
    assert.equal(long, short)
    assert.equal(2, (main("deploy", "app.yaml", "-h", "--bogus"))) -- parsed before help is looked at
  end)
end)
