-- One set of options, documented the same everywhere: every command and option that `moonship
-- --help` and `moonship COMMAND --help` list, with its short form and its metavar, is in the
-- README's synopsis, in docs/moonship.1 (in its command's section), in completions/moonship.bash
-- and in completions/_moonship (with the values it takes), and none of them lists an option the
-- command does not take; the page renders without warnings; cmake --install puts the page and
-- the completions where man, bash and zsh look.
local SRC = os.getenv("MOONSHIP_SOURCE_DIR") or "."
local BIN = os.getenv("MOONSHIP_BIN") or (SRC .. "/build/moonship")

local proc = require "support.proc"
local q, read = proc.quote, proc.read_file

-- Runs a shell command without the sanitizer preload; returns its output (stdout+stderr
-- unless split) and whether it exited 0.
local function sh(cmd, split)
  local p = assert(io.popen("env -u LD_PRELOAD sh -c " .. q(cmd) .. (split and "" or " 2>&1")))
  local out = p:read("a")
  local ok = p:close()
  return out, ok == true
end

local function has(tool) return select(2, sh("command -v " .. tool)) end

-- An option line of --help, "  -w, --workflow WORKFLOW  text" or "      --dry-run  text", as
-- {long=, short=, arg=}; nil for other lines (a description's next line is indented further).
local function option_line(line)
  local short, long, rest = line:match("^  %-(%a), %-%-([%w-]+)(.*)$")
  if not long then long, rest = line:match("^      %-%-([%w-]+)(.*)$") end
  if not long then return nil end
  return {long = long, short = short, arg = rest:match("^ (%S+)") or ""}
end

-- The CLI's commands and, per command, its options {long=, short=, arg=} (help excluded).
local function cli()
  local help = sh(q(BIN) .. " --help")
  local commands = {}
  for line in help:match("commands:\n(.-)\n\n"):gmatch("[^\n]+") do
    commands[#commands + 1] = line:match("^  (%S+)")
  end
  local options = {}
  for _, name in ipairs(commands) do
    local text = sh(q(BIN) .. " " .. name .. " --help")
    local opts = {}
    for line in text:gmatch("[^\n]+") do
      local o = option_line(line)
      if o and o.long ~= "help" then opts[#opts + 1] = o end
    end
    options[name] = opts
  end
  return commands, options
end

-- "--long ARG" (or "-s, --long ARG"): how an option reads, for messages.
local function show(o)
  return (o.short and ("-" .. o.short .. ", ") or "") .. "--" .. o.long .. (o.arg ~= "" and (" " .. o.arg) or "")
end

-- Asserts that `got` (a list of {long=, short=, arg=} some document gives a command) is the
-- command's options: the same ones, each with the same short form and metavar.
local function assert_same_options(want, got, where)
  local by_long = {}
  for _, o in ipairs(got) do
    assert.is_nil(by_long[o.long], where .. ": --" .. o.long .. " twice")
    by_long[o.long] = o
  end
  for _, o in ipairs(want) do
    local g = by_long[o.long]
    assert(g, where .. ": " .. show(o) .. " is missing")
    assert.equal(show(o), show(g), where)
    by_long[o.long] = nil
  end
  local extra = next(by_long)
  assert.is_nil(extra, where .. ": --" .. tostring(extra) .. " is no option of the command")
end

local commands, options = cli()
local page = read(SRC .. "/docs/moonship.1")

-- The text a roff request line gives: .B/.I join their words, .BR/.BI/... their alternating
-- pieces; fonts dropped, \- as -.
local function roff_text(line)
  local macro, args = line:match("^%.(%u+)%s*(.*)$")
  local pieces = {}
  local i = 1
  while i <= #args do
    local c = args:sub(i, i)
    if c == " " then
      i = i + 1
    elseif c == '"' then
      local j = args:find('"', i + 1, true) or (#args + 1)
      pieces[#pieces + 1] = args:sub(i + 1, j - 1)
      i = j + 1
    else
      local j = args:find(" ", i, true) or (#args + 1)
      pieces[#pieces + 1] = args:sub(i, j - 1)
      i = j
    end
  end
  local text = table.concat(pieces, (macro == "B" or macro == "I") and " " or "")
  return (text:gsub("\\f[BIRP]", ""):gsub("\\%-", "-"))
end

local function roff(s) return (s:gsub("%-", "\\-")) end
local function plain_find(hay, needle) return hay:find(needle, 1, true) ~= nil end

-- The page's text under `.SH <title>` up to the next .SH.
local function section(title)
  local body = page:match("\n%.SH " .. title:gsub("%p", "%%%0") .. "\n(.-)\n%.SH ")
  return body
end

describe("docs/moonship.1", function()
  it("has the sections of a man page", function()
    assert.matches("^%.TH MOONSHIP 1 ", (page:gsub("^%.\\\"[^\n]*\n", ""):gsub("^%.\\\"[^\n]*\n", "")))
    for _, s in ipairs {"NAME", "SYNOPSIS", "DESCRIPTION", "COMMANDS", "EXIT STATUS", "ENVIRONMENT",
                        "FILES", "EXAMPLES", "SEE ALSO"} do
      assert.is_true(plain_find(page, "\n.SH " .. s .. "\n"), "no section " .. s)
    end
    assert.matches("\n%.SH NAME\nmoonship \\%- ", page)
    for _, code in ipairs {"0", "1", "2", "3", "130"} do
      assert.is_true(plain_find(section("EXIT STATUS"), ".TP\n.B " .. code .. "\n"), "exit code " .. code)
    end
    for _, var in ipairs {"KUBECONFIG", "NO_COLOR", "MOONSHIP_LUA_PATH", "MOONSHIP_KUBESIM"} do
      assert.is_true(plain_find(section("ENVIRONMENT"), var), var)
    end
    -- no raw hyphen-minus in option names: options are typed as \- so they can be copied
    assert.is_nil(page:match("\n%.B[IR]? %-%-"))
  end)

  it("renders without warnings", function()
    if has("groff") then
      local out, ok = sh("LC_ALL=C.UTF-8 groff -man -Tutf8 -ww -z " .. q(SRC .. "/docs/moonship.1"))
      assert.is_true(ok)
      assert.equal("", out)
    end
    if has("man") then
      local _, ok = sh("LC_ALL=C.UTF-8 MANWIDTH=80 man -l " .. q(SRC .. "/docs/moonship.1") .. " >/dev/null", true)
      assert.is_true(ok)
      local err = sh("LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l " .. q(SRC .. "/docs/moonship.1") .. " 2>&1 >/dev/null")
      assert.equal("", err)
    end
  end)

  it("describes every command, and exactly the options of each in its section, with their metavars", function()
    local described = section("COMMANDS")
    local SECTION = {validate = "VALIDATE AND RENDER OPTIONS", render = "VALIDATE AND RENDER OPTIONS"}
    for _, name in ipairs(commands) do
      assert.is_true(plain_find(described, ".TP\n.B " .. name .. "\n"), "command " .. name .. " is not in COMMANDS")
      assert.is_true(plain_find(section("SYNOPSIS"), ".B " .. name .. "\n"), "command " .. name .. " is not in SYNOPSIS")
      if #options[name] > 0 then
        local title = SECTION[name] or (name:upper() .. " OPTIONS")
        local body = section(title)
        assert(body, "no section " .. title .. " for " .. name .. "'s options")
        local items = {}
        for line in (body .. "\n"):gmatch("%.TP\n([^\n]*)\n") do
          local text = roff_text(line)
          local short, long, arg = text:match("^%-(%a), %-%-([%w-]+)%s*(.*)$")
          if not long then long, arg = text:match("^%-%-([%w-]+)%s*(.*)$") end
          assert(long, title .. ": an item that is no option: " .. line)
          -- render's --run-id is in the section validate shares: "(render)" says whose it is
          local mine = true
          for _, other in ipairs(options[name]) do mine = mine and other.long ~= long end
          if not (SECTION[name] and mine and long == "run-id" and name == "validate") then
            items[#items + 1] = {long = long, short = short, arg = arg}
          end
        end
        assert_same_options(options[name], items, "docs/moonship.1 " .. title .. " for " .. name)
      end
    end
  end)
end)

describe("README.md", function()
  -- Each command's lines of the synopsis under "## Commands", as {long=, short=, arg=}.
  local function synopsis()
    local readme = read(SRC .. "/README.md")
    local block = readme:match("\n## Commands\n\n```\n(.-)\n```")
    assert(block, "no synopsis under ## Commands")
    local text, current = {}, nil
    for line in block:gmatch("[^\n]+") do
      local name, rest = line:match("^moonship (%S+)(.*)$")
      if name then current = name; text[name] = rest
      else text[current] = text[current] .. " " .. line end
    end
    local out = {}
    for name, t in pairs(text) do
      local words = {}
      for w in t:gsub("[%[%]]", " "):gsub("%.%.%.", " "):gmatch("%S+") do words[#words + 1] = w end
      local opts, by_short = {}, {}
      for _, o in ipairs(options[name] or {}) do if o.short then by_short[o.short] = o.long end end
      for i, w in ipairs(words) do
        local short = w:match("^%-(%a)$")
        local long = w:match("^%-%-([%w-]+)$")
        if short or long then
          local arg = words[i + 1] and not words[i + 1]:match("^%-") and words[i + 1] or ""
          opts[#opts + 1] = {long = long or by_short[short] or ("-" .. short), short = short, written = w, arg = arg}
        end
      end
      out[name] = opts
    end
    return out
  end

  it("lists every command with exactly its options, in their short form where they have one", function()
    local readme = synopsis()
    for _, name in ipairs(commands) do
      local got = readme[name]
      assert(got, "README: no synopsis line for " .. name)
      for _, o in ipairs(got) do
        local want
        for _, w in ipairs(options[name]) do if w.long == o.long then want = w end end
        if want then
          assert.equal(want.short and ("-" .. want.short) or ("--" .. want.long), o.written,
            "README " .. name .. ": write " .. show(want) .. " in its short form")
          o.short = want.short
        end
      end
      assert_same_options(options[name], got, "README synopsis of " .. name)
    end
  end)
end)

describe("completions", function()
  local bash = SRC .. "/completions/moonship.bash"
  local zsh = SRC .. "/completions/_moonship"

  -- Runs the bash completion for the words (the last one being completed).
  local function complete(...)
    local words = {...}
    local script = table.concat({
      "shopt -s extglob; source " .. q(bash) .. ";",
      "COMP_WORDS=(" .. table.concat((function()
        local t = {}
        for i, w in ipairs(words) do t[i] = q(w) end
        return t
      end)(), " ") .. ");",
      "COMP_CWORD=" .. (#words - 1) .. ";",
      "_moonship; printf '%s\\n' \"${COMPREPLY[@]}\"",
    }, " ")
    local out, ok = sh("cd " .. q(SRC .. "/examples/shop") .. " && bash -c " .. q(script))
    assert(ok, out)
    local got = {}
    for l in out:gmatch("[^\n]+") do got[l] = true end
    return got
  end

  -- The values of an option whose metavar lists them (text|json), as a set; nil for others.
  local function values(o)
    if not o.arg:find("|", 1, true) then return nil end
    local set = {}
    for v in o.arg:gmatch("[^|]+") do set[v] = true end
    return set
  end

  it("bash completes every command, exactly the options of each, and the values they take", function()
    local _, ok = sh("bash -n " .. q(bash))
    assert.is_true(ok)
    local got = complete("moonship", "")
    for _, name in ipairs(commands) do assert.is_true(got[name], "bash: command " .. name) end
    for _, name in ipairs(commands) do
      got = complete("moonship", name, "-")
      local want = {["-h"] = true, ["--help"] = true}
      for _, o in ipairs(options[name]) do
        want["--" .. o.long] = true
        if o.short then want["-" .. o.short] = true end
        local set = values(o)
        if set then
          assert.same(set, complete("moonship", name, "--" .. o.long, ""), "bash: " .. name .. " " .. show(o))
          if o.short then assert.same(set, complete("moonship", name, "-" .. o.short, ""), "bash: " .. show(o)) end
        end
      end
      assert.same(want, got, "bash: the options of " .. name)
    end
  end)

  it("bash completes option values and the template's workflows", function()
    assert.same({auto = true, always = true, never = true}, complete("moonship", "deploy", "--color", ""))
    assert.same({all = true, failed = true, none = true}, complete("moonship", "deploy", "--logs", ""))
    assert.same({deploy = true}, complete("moonship", "deploy", "moonship.yaml", "-w", "d"))
    assert.same({deploy = true, teardown = true}, complete("moonship", "plan", "-w", ""))
  end)

  it("zsh completes every command and every long option of each", function()
    local text = read(zsh)
    assert.matches("^#compdef moonship\n", text)
    if has("zsh") then
      local out, ok = sh("zsh -n " .. q(zsh))
      assert.is_true(ok, out)
    end
    for _, name in ipairs(commands) do
      assert.is_true(plain_find(text, "'" .. name .. ":"), "zsh: command " .. name)
      local block = text:match("\n        " .. name:gsub("%p", "%%%0") .. "%)\n(.-);;")
        or text:match("\n        [%w |]*" .. name .. "[%w |]*%)(.-);;")
      assert(block, "zsh: no case for " .. name)
      -- every option spec of the block: '--long[...]:x:(values)' or '(-s --long)'{-s,--long}'[...]...'
      local listed = {}
      for line in block:gmatch("[^\n]+") do
        local short, long = line:match("{%-(%a),%-%-([%w-]+)}'%[")
        long = long or line:match("'%-%-([%w-]+)%[")
        if long then
          local set
          local list = line:match("%]:[^:]*:%(([^)$]*)%)")
          if list then
            set = {}
            for v in list:gmatch("%S+") do set[v] = true end
          end
          listed[#listed + 1] = {long = long, short = short, values = set}
        end
      end
      local got = {}
      for _, l in ipairs(listed) do
        local want
        for _, o in ipairs(options[name]) do if o.long == l.long then want = o end end
        assert(want, "zsh " .. name .. ": --" .. l.long .. " is no option of the command")
        assert.equal(want.short, l.short, "zsh " .. name .. ": the short form of --" .. l.long)
        assert.same(values(want), l.values, "zsh " .. name .. ": the values of --" .. l.long)
        got[#got + 1] = want
      end
      assert_same_options(options[name], got, "zsh completion of " .. name)
    end
  end)
end)

describe("cmake --install", function()
  it("installs the man page and both completions", function()
    local build = BIN:match("^(.*)/[^/]*$")
    if not build or not read(build .. "/CMakeCache.txt") then
      pending("no build tree beside " .. BIN)
      return
    end
    local dir = sh("mktemp -d /tmp/moonship-install-XXXXXX"):match("[^\n]+")
    local out, ok = sh("cmake --install " .. q(build) .. " --prefix " .. q(dir))
    assert(ok, out)
    local man = sh("find " .. q(dir) .. " -path '*/man1/moonship.1'")
    local files = {}
    for _, p in ipairs {"share/man/man1/moonship.1", "share/bash-completion/completions/moonship",
                        "share/zsh/vendor-completions/_moonship"} do
      files[p] = proc.exists(dir .. "/" .. p)
    end
    sh("rm -rf " .. q(dir))
    assert.same({["share/man/man1/moonship.1"] = true, ["share/bash-completion/completions/moonship"] = true,
                 ["share/zsh/vendor-completions/_moonship"] = true}, files, man)
  end)
end)
