-- The longest Lua functions in the given files, longest first: "lines  file:first-last  name".
-- A function runs from its `function` keyword to its matching `end`; strings and comments are
-- skipped, so a keyword inside them does not count. Run by scripts/function-lengths.
local fs = require "moonship.fs"

local most, files = 10, {}
local i = 1
while arg[i] do
  if arg[i] == "-n" then most, i = assert(tonumber(arg[i + 1]), "-n takes a number"), i + 2
  else files[#files + 1], i = arg[i], i + 1 end
end

-- Calls emit(word, line, pos) for each identifier or keyword of src, outside strings and comments.
local function words(src, emit)
  local pos, line, len = 1, 1, #src
  local function skip_to(stop)
    local _, e = src:find(stop, pos, true)
    e = e or len
    local _, nl = src:sub(pos, e):gsub("\n", "")
    line, pos = line + nl, e + 1
  end
  while pos <= len do
    local c = src:sub(pos, pos)
    local long = src:match("^%[(=*)%[", pos)
    if c == "\n" then line, pos = line + 1, pos + 1
    elseif src:match("^%-%-", pos) then
      pos = pos + 2
      local lc = src:match("^%[(=*)%[", pos)
      if lc then skip_to("]" .. lc .. "]") else skip_to("\n"); line = line - 1; pos = pos - 1 end
    elseif long then pos = pos + #long + 2; skip_to("]" .. long .. "]")
    elseif c == '"' or c == "'" then
      pos = pos + 1
      while pos <= len do
        local d = src:sub(pos, pos)
        if d == "\\" then
          if src:sub(pos + 1, pos + 1) == "\n" then line = line + 1 end
          pos = pos + 2
        elseif d == c then pos = pos + 1; break
        else pos = pos + 1 end
      end
    elseif c:match("[%a_]") then
      local w = src:match("^[%w_]+", pos)
      emit(w, line, pos)
      pos = pos + #w
    else pos = pos + 1 end
  end
end

-- The name a function is given: `function a.b:c(`, `local function f(`, or `x = function(`.
local function name_at(src, pos)
  local name = src:match("^function%s+([%w_.:]+)%s*%(", pos)
  if name then return name end
  local before = src:sub(math.max(1, pos - 80), pos - 1):match("([^\n]*)$")
  return before:match("([%w_.%[%]\"']+)%s*=%s*$") or before:match("([%w_]+)%s*%($") or "(anonymous)"
end

local found = {}
for _, path in ipairs(files) do
  local src = assert(fs.read(path))
  local stack = {} -- the open blocks: {kind=, line=, name=}
  words(src, function(w, line, pos)
    if w == "function" then
      stack[#stack + 1] = {kind = w, line = line, name = name_at(src, pos)}
    elseif w == "do" or w == "if" or w == "repeat" then
      stack[#stack + 1] = {kind = w} -- `for`/`while` open their block with `do`
    elseif w == "end" or w == "until" then
      local top = table.remove(stack)
      if top and top.kind == "function" then
        found[#found + 1] = {n = line - top.line + 1, where = path .. ":" .. top.line .. "-" .. line,
          name = top.name}
      end
    end
  end)
  assert(#stack == 0, path .. ": unbalanced blocks")
end

table.sort(found, function(a, b) return a.n > b.n or a.n == b.n and a.where < b.where end)
for k = 1, math.min(most, #found) do
  print(string.format("%5d  %-45s %s", found[k].n, found[k].where, found[k].name))
end
