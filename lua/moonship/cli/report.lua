-- moonship report RUN_JOURNAL.jsonl [-o FILE.html]: the HTML timeline report of a finished (or
-- cut short) run, from its journal. A directory stands for its newest journal.
local EXIT = require "moonship.exit"
local fs = require "moonship.fs"
local html = require "moonship.output.html"

-- The newest *.jsonl in dir (run ids sort by time).
local function newest_journal(dir)
  local newest
  for _, name in ipairs(fs.list(dir) or {}) do
    if name:match("%.jsonl$") then newest = name end -- fs.list sorts
  end
  return newest and fs.join(dir, newest)
end

return {
  usage = "report [RUN_JOURNAL.jsonl | DIR] [-o FILE.html]",
  summary = "Write the HTML timeline report of a run from its journal.",
  options = {
    {long = "output", short = "o", arg = "FILE.html", help = "where to write the page (default: the journal's path with .html; - for stdout)"},
  },
  run = function(opts, args, out)
    if #args > 1 then return nil, "one journal at a time" end
    local path = args[1] or ".moonship/runs"
    if fs.is_dir(path) then
      local found = newest_journal(path)
      if not found then
        out.error("no run journal (*.jsonl) in %s", path)
        return EXIT.bad_input
      end
      path = found
    end
    local events, err = html.read_journal(path)
    if not events then
      out.error("%s", tostring(err))
      return EXIT.bad_input
    end
    for _, b in ipairs(err) do out.warn("%s:%d: skipped: %s", path, b.line, b.message) end
    if #events == 0 then
      out.error("%s: no journal events in it", path)
      return EXIT.bad_input
    end
    local page = html.render(events)
    local target = opts.output or (path:gsub("%.jsonl$", "") .. ".html")
    if target == "-" then
      io.stdout:write(page)
      return EXIT.ok
    end
    local ok, werr = fs.write(target, page)
    if not ok then
      out.error("%s", werr)
      return EXIT.bad_input
    end
    io.stderr:write("moonship: report ", target, "\n")
    return EXIT.ok
  end,
}
