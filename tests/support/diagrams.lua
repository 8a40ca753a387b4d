-- Structural parsers for the plan's diagram formats, for the specs: they check what a renderer
-- must get right for Mermaid and Graphviz to accept the text, and return what they found.
local M = {}

local VALID_TAGS = {crit = true, done = true, active = true, milestone = true}

-- mermaid(text) -> {title=, date_format=, axis_format=, sections = {{name=, tasks = {{name=,
-- tags = {set}, id=, start=, duration=, seconds=}}}}, ids = {set}} or raises with the bad line.
function M.mermaid(text)
  local lines = {}
  for line in text:gmatch("[^\n]+") do lines[#lines + 1] = line end
  local out = {sections = {}, ids = {}, directives = {}}
  -- %%{init: ...}%% directives may come first
  while lines[1] and lines[1]:match("^%%%%{.*}%%%%$") do out.directives[#out.directives + 1] = table.remove(lines, 1) end
  assert(lines[1] == "gantt", "the diagram must start with 'gantt', got: " .. tostring(lines[1]))
  local section
  for i = 2, #lines do
    local line = lines[i]:match("^%s*(.-)%s*$")
    local key, rest = line:match("^(%a+)%s+(.*)$")
    if line == "" or line:match("^%%%%") then
      -- blank or comment
    elseif key == "title" then
      out.title = rest
    elseif key == "dateFormat" then
      out.date_format = rest
    elseif key == "axisFormat" then
      out.axis_format = rest
    elseif key == "todayMarker" then
      assert(rest == "off" or rest:match(":"), "bad todayMarker: " .. line)
    elseif key == "section" then
      section = {name = rest, tasks = {}}
      out.sections[#out.sections + 1] = section
    else
      assert(section, "a task before any section: " .. line)
      local name, data = line:match("^([^:]-)%s*:(.*)$")
      assert(name and name ~= "", "not a task line (name :data): " .. line)
      assert(not name:find("[;#]"), "task name with ; or #: " .. line)
      local fields = {}
      for f in data:gmatch("[^,]+") do fields[#fields + 1] = f:match("^%s*(.-)%s*$") end
      local tags = {}
      while fields[1] and VALID_TAGS[fields[1]] do
        tags[table.remove(fields, 1)] = true
      end
      assert(#fields == 3, "want id, start, duration after the tags: " .. line)
      local id, start, duration = fields[1], fields[2], fields[3]
      assert(id:match("^[%a_][%w_%-]*$"), "bad task id '" .. id .. "': " .. line)
      assert(not out.ids[id], "duplicate task id " .. id)
      out.ids[id] = true
      if out.date_format == "HH:mm:ss" then
        assert(start:match("^%d%d:%d%d:%d%d$"), "start is not HH:mm:ss: " .. line)
      elseif out.date_format == "HH:mm:ss.SSS" then
        assert(start:match("^%d%d:%d%d:%d%d%.%d%d%d$"), "start is not HH:mm:ss.SSS: " .. line)
      end
      local n, unit = duration:match("^(%d+%.?%d*)(%a+)$")
      assert(n and (unit == "s" or unit == "m" or unit == "h" or unit == "ms" or unit == "d"), "bad duration: " .. line)
      local seconds = tonumber(n) * ({ms = 0.001, s = 1, m = 60, h = 3600, d = 86400})[unit]
      if not tags.milestone then assert(seconds > 0, "a task of zero length: " .. line) end
      section.tasks[#section.tasks + 1] = {name = name, tags = tags, id = id, start = start, duration = duration,
                                           seconds = seconds}
    end
  end
  assert(out.date_format, "no dateFormat")
  return out
end

-- dot(text) -> {name=, nodes = {id -> attrs text}, edges = {{from=, to=, attrs=}}, clusters = {names}}
-- or raises: braces and quotes must balance, every edge end must be a declared node.
function M.dot(text)
  local depth, in_string, escaped = 0, false, false
  for c in text:gmatch(".") do
    if in_string then
      if escaped then escaped = false
      elseif c == "\\" then escaped = true
      elseif c == '"' then in_string = false end
    elseif c == '"' then in_string = true
    elseif c == "{" then depth = depth + 1
    elseif c == "}" then
      depth = depth - 1
      assert(depth >= 0, "a '}' closes nothing")
    end
  end
  assert(not in_string, "an unterminated string")
  assert(depth == 0, "unbalanced braces")
  local out = {nodes = {}, edges = {}, clusters = {}}
  local rest = text:match("^%s*digraph%s+(.*)$")
  assert(rest, "does not start with digraph")
  if rest:sub(1, 1) == '"' then
    local i = 2
    while i <= #rest and rest:sub(i, i) ~= '"' do i = i + (rest:sub(i, i) == "\\" and 2 or 1) end
    out.name = rest:sub(2, i - 1)
    rest = rest:sub(i + 1)
  else
    out.name, rest = rest:match("^([%w_]+)(.*)$")
  end
  assert(out.name and rest:match("^%s*{"), "does not start with digraph NAME {")
  for line in text:gmatch("[^\n]+") do
    local cluster = line:match("^%s*subgraph%s+(cluster_[%w_]+)%s*{")
    if cluster then out.clusters[#out.clusters + 1] = cluster end
    local from, to, attrs = line:match("^%s*([%w_]+)%s*%->%s*([%w_]+)%s*%[?(.-)%]?;%s*$")
    if from then
      out.edges[#out.edges + 1] = {from = from, to = to, attrs = attrs}
    else
      local id, nattrs = line:match("^%s*([%w_]+)%s*%[(.*)%];%s*$")
      if id and id ~= "graph" and id ~= "node" and id ~= "edge" then out.nodes[id] = nattrs end
    end
  end
  for _, e in ipairs(out.edges) do
    assert(out.nodes[e.from], "edge from an undeclared node " .. e.from)
    assert(out.nodes[e.to], "edge to an undeclared node " .. e.to)
  end
  return out
end

return M
