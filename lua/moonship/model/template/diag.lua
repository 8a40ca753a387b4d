-- Diagnostics for the template loader: positioned errors and warnings ("file:line:col: message")
-- and the did-you-mean suggestions that go with misspelt names.
local yaml = require "moonship.yaml"

local fmt, min, max, sort = string.format, math.min, math.max, table.sort
local where = yaml.where

local M = {}

local Message = {}
Message.__index = Message
Message.__tostring = function(m) return m.text end

-- Positions of values an environment template merged into the template (tbl -> key -> {file,
-- line, col}): the merged value is reported where the environment template wrote it.
local moved = setmetatable({}, {__mode = "k"})

-- Records that tbl[key] now holds the value written at from_tbl[from_key].
function M.move(tbl, key, from_tbl, from_key)
  local file, line, col = M.where(from_tbl, from_key)
  if not file then return end
  local keys = moved[tbl]
  if not keys then keys = {}; moved[tbl] = keys end
  keys[key] = {file, line, col}
end

-- yaml.where that knows merged values: file, line, col of tbl[key] (or of tbl).
function M.where(tbl, key)
  local keys = key ~= nil and moved[tbl]
  local p = keys and keys[key]
  if p then return p[1], p[2], p[3] end
  if key == nil then return where(tbl) end
  return where(tbl, key)
end

-- The keys of a mapping in the order written (by name where no position tells).
function M.keys_in_order(map)
  local keys = {}
  for k in pairs(map) do keys[#keys + 1] = k end
  sort(keys, function(a, b)
    local _, la, ca = M.where(map, a)
    local _, lb, cb = M.where(map, b)
    if la ~= lb then return (la or 0) < (lb or 0) end
    if ca ~= cb then return (ca or 0) < (cb or 0) end
    return a < b
  end)
  return keys
end

-- A position {file=, line=, col=} of tbl[key] (or of tbl when key is nil); fallback when the
-- table did not come from YAML (then the file's first line).
function M.pos(tbl, key, fallback_file)
  local file, line, col
  if type(tbl) == "table" then
    if key ~= nil then file, line, col = M.where(tbl, key) end
    if not file then file, line, col = where(tbl) end
  end
  if not file then return {file = fallback_file or "?", line = 1, col = 1} end
  return {file = file, line = line, col = col}
end

-- "file:line:col", or less where the position has less (a hooks file's problems have a line
-- and no column, some not even a line).
function M.at(pos)
  if not pos.line then return pos.file end
  if not pos.col then return fmt("%s:%d", pos.file, pos.line) end
  return fmt("%s:%d:%d", pos.file, pos.line, pos.col)
end

-- "line:col" when in the same file as `from`, else "file:line:col": for "(first at ...)".
function M.short_at(pos, from)
  if from and from.file == pos.file then return fmt("%d:%d", pos.line, pos.col) end
  return M.at(pos)
end

local Collector = {}
Collector.__index = Collector

-- A collector of messages: c:error(pos, fmt, ...), c:warning(pos, fmt, ...).
function M.collector()
  return setmetatable({errors = {}, warnings = {}, seq = 0}, Collector)
end

local function add(self, list, severity, pos, message)
  self.seq = self.seq + 1
  list[#list + 1] = setmetatable({
    file = pos.file, line = pos.line, col = pos.col, message = message, severity = severity,
    text = fmt("%s: %s", M.at(pos), message), seq = self.seq,
  }, Message)
end

function Collector:error(pos, f, ...) add(self, self.errors, "error", pos, fmt(f, ...)) end
function Collector:warning(pos, f, ...) add(self, self.warnings, "warning", pos, fmt(f, ...)) end

-- The YAML documents of text (from file), or nil when it does not load: the loader's error,
-- "file:line:col: msg", is then an error at that position (else at the start of file).
function Collector:load_yaml(text, file)
  local docs, err = yaml.load(text, {filename = file})
  if docs then return docs end
  local efile, line, col, msg = err:match("^(.-):(%d+):(%d+): (.*)$")
  if efile then
    self:error({file = efile, line = tonumber(line), col = tonumber(col)}, "%s", msg)
  else
    self:error({file = file, line = 1, col = 1}, "%s", err)
  end
  return nil
end

-- Messages sorted by file (in order of first appearance), line and column, then discovery.
local function sorted(list)
  local file_rank, n = {}, 0
  for _, m in ipairs(list) do
    if not file_rank[m.file] then n = n + 1; file_rank[m.file] = n end
  end
  local copy = table.move(list, 1, #list, 1, {})
  sort(copy, function(a, b)
    if a.file ~= b.file then return file_rank[a.file] < file_rank[b.file] end
    if a.line ~= b.line then return (a.line or 0) < (b.line or 0) end
    if a.col ~= b.col then return (a.col or 0) < (b.col or 0) end
    return a.seq < b.seq
  end)
  return copy
end

function Collector:sorted_errors() return sorted(self.errors) end
function Collector:sorted_warnings() return sorted(self.warnings) end

-- Edit distance (insertions, deletions, substitutions) between two strings.
function M.levenshtein(a, b)
  local la, lb = #a, #b
  if la == 0 then return lb end
  if lb == 0 then return la end
  local prev, cur = {}, {}
  for j = 0, lb do prev[j] = j end
  for i = 1, la do
    cur[0] = i
    local ca = a:byte(i)
    for j = 1, lb do
      local cost = (ca == b:byte(j)) and 0 or 1
      cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
    end
    prev, cur = cur, prev
  end
  return prev[lb]
end

-- The closest candidate to name, or nil when none is close enough to be a likely typo.
-- Candidates are tried in order, so ties go to the first; a candidate that the name
-- abbreviates (release.remove_env) counts when nothing is within the edit distance.
function M.suggest(name, candidates)
  local best, best_d, prefix
  local limit = max(2, #name // 4)
  local lname = name:lower()
  for _, c in ipairs(candidates) do
    if c ~= name then
      local lc = c:lower()
      local d = M.levenshtein(lname, lc)
      if d <= limit and (not best_d or d < best_d) then best, best_d = c, d end
      if not prefix and #lname >= 4 and lc:sub(1, #lname) == lname then prefix = c end
    end
  end
  return best or prefix
end

-- " (did you mean 'x'?)" or "".
function M.did_you_mean(name, candidates)
  local s = M.suggest(name, candidates)
  return s and fmt(" (did you mean '%s'?)", s) or ""
end

return M
