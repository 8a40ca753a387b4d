-- The man page and the shell completions cannot drift from the CLI: every command and option
-- that `moonship --help` and `moonship COMMAND --help` list is in docs/moonship.1 (in its
-- command's section), in completions/moonship.bash and in completions/_moonship; the page
-- renders without warnings; cmake --install puts all three where man, bash and zsh look.
local SRC = os.getenv("MOONSHIP_SOURCE_DIR") or "."
local BIN = os.getenv("MOONSHIP_BIN") or (SRC .. "/build/moonship")

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

-- Runs a shell command without the sanitizer preload; returns its output (stdout+stderr
-- unless split) and whether it exited 0.
local function sh(cmd, split)
  local p = assert(io.popen("env -u LD_PRELOAD sh -c " .. q(cmd) .. (split and "" or " 2>&1")))
  local out = p:read("a")
  local ok = p:close()
  return out, ok == true
end

local function read(path)
  local f = assert(io.open(path))
  local s = f:read("a")
  f:close()
  return s
end

local function has(tool) return select(2, sh("command -v " .. tool)) end

-- The CLI's commands and, per command, its options {long=, short=}.
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
      local short, long = line:match("^  %-(%a), %-%-([%w-]+)")
      long = long or line:match("^      %-%-([%w-]+)")
      if long then opts[#opts + 1] = {long = long, short = short} end
    end
    assert(#opts > 0, name .. " --help lists no options")
    options[name] = opts
  end
  return commands, options
end

local commands, options = cli()
local page = read(SRC .. "/docs/moonship.1")

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

  it("describes every command and every option in its command's section", function()
    local described = section("COMMANDS")
    for _, name in ipairs(commands) do
      assert.is_true(plain_find(described, ".TP\n.B " .. name .. "\n"), "command " .. name .. " is not in COMMANDS")
      assert.is_true(plain_find(section("SYNOPSIS"), ".B " .. name .. "\n"), "command " .. name .. " is not in SYNOPSIS")
      for _, o in ipairs(options[name]) do
        if o.long ~= "help" then
          local title = ({validate = "VALIDATE AND RENDER OPTIONS", render = "VALIDATE AND RENDER OPTIONS"})[name]
            or (name:upper() .. " OPTIONS")
          local body = section(title)
          assert(body, "no section " .. title .. " for " .. name .. "'s options")
          assert.is_true(plain_find(body, roff("--" .. o.long)), name .. " --" .. o.long .. " is not in " .. title)
          if o.short then
            assert.is_true(plain_find(body, roff("-" .. o.short)), name .. " -" .. o.short .. " is not in " .. title)
          end
        end
      end
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

  it("bash completes every command and every option of each", function()
    local _, ok = sh("bash -n " .. q(bash))
    assert.is_true(ok)
    local got = complete("moonship", "")
    for _, name in ipairs(commands) do assert.is_true(got[name], "bash: command " .. name) end
    for _, name in ipairs(commands) do
      got = complete("moonship", name, "-")
      for _, o in ipairs(options[name]) do
        assert.is_true(got["--" .. o.long], "bash: " .. name .. " --" .. o.long)
        if o.short then assert.is_true(got["-" .. o.short], "bash: " .. name .. " -" .. o.short) end
      end
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
      for _, o in ipairs(options[name]) do
        if o.long ~= "help" then
          local listed = plain_find(block, "'--" .. o.long .. "[")
            or plain_find(block, "{-" .. tostring(o.short) .. ",--" .. o.long .. "}'[")
          assert.is_true(listed, "zsh: " .. name .. " --" .. o.long)
        end
      end
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
      local f = io.open(dir .. "/" .. p)
      files[p] = f ~= nil
      if f then f:close() end
    end
    sh("rm -rf " .. q(dir))
    assert.same({["share/man/man1/moonship.1"] = true, ["share/bash-completion/completions/moonship"] = true,
                 ["share/zsh/vendor-completions/_moonship"] = true}, files, man)
  end)
end)
