-- moonship run SCRIPT.lua [ARGS...]: a Lua script as the root task of the scheduler.
local EXIT = require("moonship.exit")

return {
  usage = "run SCRIPT.lua [ARGS...]",
  summary = "Run a Lua script as the root task of the scheduler (require \"moonship\" inside it).",
  options = {},
  stop_at_positional = true,
  run = function(_, args, out)
    local path = args[1]
    if not path then return nil, "missing SCRIPT.lua" end
    local chunk, err = loadfile(path)
    if not chunk then
      out.error("%s", err)
      return EXIT.bad_input
    end
    local script_arg = {[0] = path}
    for i = 2, #args do script_arg[i - 1] = args[i] end
    _G.arg = script_arg
    local ok, result = out.run(chunk, table.unpack(script_arg, 1, #args - 1))
    if not ok then return result end
    if math.type(result) == "integer" then return result end
    return EXIT.ok
  end,
}
