-- The moonship command line: parses the command and its options, runs it, returns the exit
-- code. Each command is a module moonship.cli.<name> returning {usage=, summary=, options=,
-- stop_at_positional=, run=function(opts, args, out) -> exit code | nil, usage error}.
local EXIT = require "moonship.exit"

local M = {}

local function eprintf(fmt, ...)
  io.stderr:write(string.format(fmt, ...))
end

-- What commands use to talk to the user: error(fmt, ...) writes "moonship: ..." to stderr;
-- run(fn, ...) runs fn as the scheduler's root task: true and its results, or false and the
-- exit code after reporting the error (130 when Ctrl-C or SIGTERM ended it).
local out = {
  error = function(fmt, ...) eprintf("moonship: " .. fmt .. "\n", ...) end,
  warn = function(fmt, ...) eprintf("moonship: warning: " .. fmt .. "\n", ...) end,
}
-- Children that a cancelled process.run is still ending (SIGTERM, then SIGKILL after its
-- grace of 2 s) are waited for before the command returns, at most this long: none outlives us.
local CHILDREN_GRACE = 5

-- fn(...), then the wait for ending children, in the root task. (An error of fn goes up as
-- it is, with its own traceback: the command fails, and sched.run cancels what is left.)
local function and_reap(fn, ...)
  local sched, process = require "moonship.sched", require "moonship.process"
  local r = table.pack(fn(...))
  if process.detached() > 0 then pcall(sched.timeout, CHILDREN_GRACE, process.wait_detached) end
  return table.unpack(r, 1, r.n)
end

function out.run(fn, ...)
  local r = table.pack(pcall(require("moonship.sched").run, and_reap, fn, ...))
  if r[1] then return table.unpack(r, 1, r.n) end
  if r[2] == "interrupted" then
    out.error("interrupted")
    return false, EXIT.interrupted
  end
  out.error("%s", tostring(r[2]))
  return false, EXIT.failed
end
M.out = out

-- Parses argv against a list of option specs {long=, short=, arg=<metavar or nil>, help=,
-- many=true}. Returns opts (long name -> value or true; for a `many` option, the list of its
-- values in the order given) and the positional arguments, or nil and a message.
-- "--" ends the options; options after positionals are allowed unless stop_at_positional.
function M.parse_options(specs, argv, stop_at_positional)
  local by_name = {}
  for _, spec in ipairs(specs) do
    by_name["--" .. spec.long] = spec
    if spec.short then by_name["-" .. spec.short] = spec end
  end
  local opts, args, i = {}, {}, 1
  while i <= #argv do
    local a = argv[i]
    if a == "--" then
      table.move(argv, i + 1, #argv, #args + 1, args)
      break
    elseif a:sub(1, 1) == "-" and a ~= "-" and not (stop_at_positional and #args > 0) then
      local name, value = a:match("^(%-%-[^=]+)=(.*)$")
      name = name or a
      local spec = by_name[name]
      if not spec then
        local names = {}
        for known in pairs(by_name) do if known:sub(1, 2) == "--" then names[#names + 1] = known end end
        table.sort(names)
        return nil, string.format("unknown option '%s'%s", name, require("moonship.model.template.diag").did_you_mean(name, names))
      end
      if spec.arg then
        if value == nil then
          i = i + 1
          value = argv[i]
          if value == nil then
            return nil, string.format("option '%s' needs a value (%s)", name, spec.arg)
          end
        end
        if spec.many then
          local list = opts[spec.long] or {}
          list[#list + 1] = value
          opts[spec.long] = list
        else
          opts[spec.long] = value
        end
      elseif value ~= nil then
        return nil, string.format("option '%s' takes no value", name)
      else
        opts[spec.long] = true
      end
    else
      args[#args + 1] = a
    end
    i = i + 1
  end
  return opts, args
end

-- The width --help is written for, and the widest option column it gives.
local HELP_WIDTH, FLAG_MAX = 80, 30

-- Words of text in lines of at most `width` columns (a longer word gets a line of its own).
local function wrap(text, width)
  local lines, line = {}, ""
  for word in text:gmatch("%S+") do
    if line ~= "" and #line + 1 + #word > width then
      lines[#lines + 1] = line
      line = word
    else
      line = line == "" and word or (line .. " " .. word)
    end
  end
  lines[#lines + 1] = line
  return lines
end

-- A command's --help: usage, summary, and its options in two aligned columns, the summary and
-- the descriptions wrapped to 80 columns; an option too wide for the column has its
-- description below it.
local function usage_text(name, cmd)
  local lines = {string.format("usage: moonship %s", cmd.usage), ""}
  for _, line in ipairs(wrap(cmd.summary, HELP_WIDTH)) do lines[#lines + 1] = line end
  lines[#lines + 1] = ""
  if #cmd.options > 0 then lines[#lines + 1] = "options:" end
  local flags, col = {}, 0
  for i, spec in ipairs(cmd.options) do
    local flag = (spec.short and ("-" .. spec.short .. ", ") or "    ") .. "--" .. spec.long
    if spec.arg then flag = flag .. " " .. spec.arg end
    flags[i] = flag
    if #flag <= FLAG_MAX then col = math.max(col, #flag) end
  end
  local indent = string.rep(" ", 2 + col + 2)
  for i, spec in ipairs(cmd.options) do
    local text = wrap(spec.help, HELP_WIDTH - #indent)
    if #flags[i] > col then
      lines[#lines + 1] = "  " .. flags[i]
    else
      lines[#lines + 1] = "  " .. flags[i] .. string.rep(" ", col - #flags[i] + 2) .. table.remove(text, 1)
    end
    for _, more in ipairs(text) do lines[#lines + 1] = indent .. more end
  end
  return table.concat(lines, "\n") .. "\n"
end

-- A usage error: one line, and where the help is.
local function usage_error(name, message)
  eprintf("moonship %s: %s\nRun 'moonship %s --help' for its options.\n", name, message, name)
  return EXIT.bad_input
end

local HELP = {long = "help", short = "h", help = "show this help"}

-- The commands, in the order --help lists them; each is the module moonship.cli.<name>,
-- loaded when used (a command's dependencies cost nothing to the others).
local COMMANDS = {"deploy", "diff", "rollback", "history", "plan", "report", "validate", "render", "run",
                  "version"}
local loaded = {}

local function command(name)
  local cmd = loaded[name]
  if cmd == nil then
    for _, known in ipairs(COMMANDS) do
      if known == name then
        cmd = require("moonship.cli." .. name)
        cmd.options[#cmd.options + 1] = HELP
        loaded[name] = cmd
      end
    end
  end
  return cmd
end

local function main_usage()
  local lines = {"usage: moonship COMMAND [OPTIONS] [ARGS]", "", "commands:"}
  for _, name in ipairs(COMMANDS) do
    lines[#lines + 1] = string.format("  %-10s %s", name, command(name).summary)
  end
  lines[#lines + 1] = ""
  lines[#lines + 1] = "Run 'moonship COMMAND --help' for a command's options."
  return table.concat(lines, "\n") .. "\n"
end

-- Entry point of the binary: returns the process exit code.
function M.main(argv)
  local name = argv[1]
  if name == nil or name == "--help" or name == "-h" or name == "help" then
    io.stdout:write(main_usage())
    return name and EXIT.ok or EXIT.bad_input
  end
  if name == "--version" then name = "version" end
  local cmd = command(name)
  if not cmd then
    local hint = require("moonship.model.template.diag").did_you_mean(name, COMMANDS)
    eprintf("moonship: unknown command '%s'%s\nRun 'moonship --help' for the commands.\n", name, hint)
    return EXIT.bad_input
  end
  local rest = table.move(argv, 2, #argv, 1, {})
  local opts, args = M.parse_options(cmd.options, rest, cmd.stop_at_positional)
  if not opts then return usage_error(name, args) end
  if opts.help then
    io.stdout:write(usage_text(name, cmd))
    return EXIT.ok
  end
  local code, err = cmd.run(opts, args, out)
  if code == nil then return usage_error(name, err) end
  return code
end

return M
