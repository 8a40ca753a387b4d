-- The moonship command line: parses the command and its options, runs it, returns the exit
-- code. Each command is a table {usage=, summary=, options=, run=function(opts, args)}.
local sched = require "moonship.sched"

local M = {}

local EXIT = {ok = 0, halted = 1, bad_input = 2, ignored_failures = 3, interrupted = 130}
M.EXIT = EXIT

local core = require "moonship.core"

local function eprintf(fmt, ...)
  io.stderr:write(string.format(fmt, ...))
end

-- Parses argv against a list of option specs {long=, short=, arg=<metavar or nil>, help=}.
-- Returns opts (long name -> value or true) and the positional arguments, or nil and a message.
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
      if not spec then return nil, string.format("unknown option '%s'", name) end
      if spec.arg then
        if value == nil then
          i = i + 1
          value = argv[i]
          if value == nil then
            return nil, string.format("option '%s' needs a value (%s)", name, spec.arg)
          end
        end
        opts[spec.long] = value
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

local function usage_text(name, cmd)
  local lines = {string.format("usage: moonship %s", cmd.usage), "", cmd.summary, ""}
  if #cmd.options > 0 then lines[#lines + 1] = "options:" end
  for _, spec in ipairs(cmd.options) do
    local flag = (spec.short and ("-" .. spec.short .. ", ") or "    ") .. "--" .. spec.long
    if spec.arg then flag = flag .. " " .. spec.arg end
    lines[#lines + 1] = string.format("  %-28s %s", flag, spec.help)
  end
  return table.concat(lines, "\n") .. "\n"
end

local HELP = {long = "help", short = "h", help = "show this help"}

local commands = {}
local order = {}

local function command(name, cmd)
  table.insert(cmd.options, HELP)
  commands[name] = cmd
  order[#order + 1] = name
end

command("run", {
  usage = "run SCRIPT.lua [ARGS...]",
  summary = "Run a Lua script as the root task of the scheduler (require \"moonship\" inside it).",
  options = {},
  stop_at_positional = true,
  run = function(_, args)
    local path = args[1]
    if not path then return nil, "run: missing SCRIPT.lua" end
    local chunk, err = loadfile(path)
    if not chunk then
      eprintf("moonship: %s\n", err)
      return EXIT.bad_input
    end
    local script_arg = {[0] = path}
    for i = 2, #args do script_arg[i - 1] = args[i] end
    _G.arg = script_arg
    local ok, result = pcall(sched.run, chunk, table.unpack(script_arg, 1, #args - 1))
    if not ok then
      if result == "interrupted" then
        eprintf("moonship: interrupted\n")
        return EXIT.interrupted
      end
      eprintf("moonship: %s\n", tostring(result))
      return 1
    end
    if math.type(result) == "integer" then return result end
    return EXIT.ok
  end,
})

command("version", {
  usage = "version",
  summary = "Print moonship's version.",
  options = {},
  run = function()
    io.stdout:write("moonship ", core.version, " (Lua 5.4; ", core.libraries, ")\n")
    return EXIT.ok
  end,
})

local function main_usage()
  local lines = {"usage: moonship COMMAND [OPTIONS] [ARGS]", "", "commands:"}
  for _, name in ipairs(order) do
    lines[#lines + 1] = string.format("  %-10s %s", name, commands[name].summary)
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
  local cmd = commands[name]
  if not cmd then
    eprintf("moonship: unknown command '%s'\n\n%s", name, main_usage())
    return EXIT.bad_input
  end
  local rest = table.move(argv, 2, #argv, 1, {})
  local opts, args = M.parse_options(cmd.options, rest, cmd.stop_at_positional)
  if not opts then
    eprintf("moonship %s: %s\n\n%s", name, args, usage_text(name, cmd))
    return EXIT.bad_input
  end
  if opts.help then
    io.stdout:write(usage_text(name, cmd))
    return EXIT.ok
  end
  local code, err = cmd.run(opts, args)
  if code == nil then
    eprintf("moonship %s: %s\n\n%s", name, err, usage_text(name, cmd))
    return EXIT.bad_input
  end
  return code
end

return M
