-- moonship version
local core = require "moonship.core"
local EXIT = require "moonship.exit"

return {
  usage = "version",
  summary = "Print moonship's version and the libraries it runs on.",
  options = {},
  run = function()
    io.stdout:write("moonship ", core.version, " (Lua 5.4; ", core.libraries(), ")\n")
    return EXIT.ok
  end,
}
