-- YAML for moonship: the C module (load, where, dump, dump_all, null) plus load_file.
--   yaml.load(text [, {filename=, max_nodes=, max_depth=}])
--     -> {doc, ...} | nil, "file:line:col: msg", "parse"
--     (a syntax error ends with a hint for the common causes: "...; a value with ': ' in it must
--     be quoted (command: \"echo a: b\")")
--   yaml.where(tbl [, key]) -> filename, line, col of a loaded key/index (or of tbl itself)
--   yaml.dump(value) / yaml.dump_all(docs) -> block-style YAML text
-- Explicit and empty nulls load as yaml.null (the same value as json.null), so sequences keep
-- their length and `key:` is told apart from a missing key. Mapping keys are always strings.
-- Sequences carry the array mark of moonship.json (empty mappings the object mark), so
-- json.encode(yaml.load(x)[1]) keeps [] and {} apart.
-- Scalars: YAML 1.2 core schema as kubectl reads it: null/~/empty, true/false (any case
-- style; yes/no/on/off stay strings), ints (decimal, 0x, 0o, and 0644 as octal 420), floats
-- (1.5, 1e3, .inf, .nan); quoted and block scalars are strings; !!str/!!int/!!float/!!bool/
-- !!null are honoured and checked. Aliases become separate copies; merge keys (<<: *a and
-- <<: [*a, *b]) follow YAML 1.1. Duplicate keys are errors naming both positions; a stream
-- expanding to more than max_nodes (default 1e6) nodes or nesting deeper than max_depth
-- (default 512) is refused. dump writes loaded mappings in their original key order, other
-- tables with sorted keys, and quotes strings that would read back as another type.
local core = require("moonship.core").yaml

local fs = require "moonship.fs"

local fmt = string.format

-- This module: the C module's functions, with load's syntax errors given a hint.
local M = setmetatable({}, {__index = core})

-- ---- hints for libyaml's syntax errors ---------------------------------------------------------

local function line_of(text, n)
  local i = 0
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do
    i = i + 1
    if i == n then return line end
  end
  return ""
end

-- The previous line that is not blank or a comment.
local function line_before(text, n)
  for i = n - 1, 1, -1 do
    local l = line_of(text, i)
    if l:match("%S") and not l:match("^%s*#") then return l, i end
  end
end

-- A plain value quoted, for a hint's example.
local function quoted(v) return '"' .. v:gsub('[\\"]', "\\%0") .. '"' end

-- One line saying what usually causes libyaml's problem at line:col, or nil. ctx_line/ctx_col:
-- where the construct it was reading started.
local function hint(text, line, col, problem, ctx_line, ctx_col)
  local here = line_of(text, line)
  if problem == "mapping values are not allowed in this context" then
    local key, value = here:match("^%s*%-?%s*([^:#]-):%s+(.*)$")
    if key and #here:match("^(.-:%s)") < col then
      return fmt("a value with ': ' in it must be quoted (%s: %s)", key, quoted(value))
    end
    local above, n = line_before(text, line)
    local k, v = (above or ""):match("^%s*%-?%s*([%w_%-%.]+):([^%s/][^#]-)%s*$")
    if k then return fmt("line %d has '%s:%s': a key needs a space after its ':' (%s: %s)", n, k, v, k, v) end
    return "this line is indented more than the keys beside it: the keys of one mapping line up"
  elseif problem == "could not find expected ':'" then
    local k, v = line_of(text, ctx_line or line):match("^%s*%-?%s*([%w_%-%.]+):([^%s/][^#]-)%s*$")
    if k then return fmt("line %d has '%s:%s': a key needs a space after its ':' (%s: %s)", ctx_line or line, k, v, k, v) end
    return fmt("line %d has no ': ' (a key needs one), or the line after it is indented too far",
      ctx_line or line)
  elseif problem == "did not find expected alphabetic or numeric character" and ctx_line then
    local alias = line_of(text, ctx_line):sub(ctx_col):match("^(%S+)")
    if alias and alias:match("^[*&]") then
      return fmt("'%s' reads as %s ('%s' starts one, and its name may have only letters, digits, '-' and '_'): "
        .. "quote the value if it is text (%s)", alias, alias:sub(1, 1) == "*" and "an alias" or "an anchor",
        alias:sub(1, 1), quoted(alias))
    end
  elseif problem == "found character that cannot start any token" then
    local c = here:sub(col, col)
    if c == "\t" then return "YAML indents with spaces: this line has a tab" end
    if c == "@" or c == "`" or c == "%" then
      local value = here:sub(col):gsub("%s+#.*$", ""):gsub("%s+$", "")
      return fmt("'%s' cannot start a plain value: quote it (%s)", c, quoted(value))
    end
  elseif problem == "found unexpected end of stream" and ctx_line then
    return fmt("the quote opened at %d:%d is never closed", ctx_line, ctx_col)
  elseif problem == "did not find expected key" and ctx_line then
    if here:match("^%s*%- ") or here:match("^%s*%-$") then
      return "a list item where a key was expected: indent the list under its key, and its items alike"
    end
    return fmt("this line is indented differently from the keys of the mapping at %d:%d", ctx_line, ctx_col)
  elseif problem == "did not find expected '-' indicator" and ctx_line then
    return fmt("the items of the list at %d:%d each start with '- ' at the same indentation; this line does not",
      ctx_line, ctx_col)
  elseif (problem == "did not find expected ',' or ']'" or problem == "did not find expected ',' or '}'") and ctx_line then
    return fmt("the %s opened at %d:%d is not closed: '%s' is missing, or a ',' between two of its values",
      problem:sub(-2, -2) == "]" and "list" or "mapping", ctx_line, ctx_col, problem:sub(-2, -2))
  elseif problem == "block sequence entries are not allowed in this context" then
    return "a list after a key goes on the lines below it, each '- ' indented (or on one line: [a, b])"
  elseif problem == "mapping keys must be scalars" and here:find("{{", 1, true) then
    local value = here:match(":%s+(.*)$") or here
    return fmt("'{{' starts a mapping in YAML: quote a template expression (%s)", quoted(value))
  end
end

-- yaml.load, with a hint after the message of a syntax error it has one for.
function M.load(text, opts)
  local docs, err, code = core.load(text, opts)
  if docs or type(err) ~= "string" or type(text) ~= "string" then return docs, err, code end
  local prefix, line, col, rest = err:match("^(.*):(%d+):(%d+): (.*)$")
  if not prefix then return docs, err, code end
  local problem, ctx_line, ctx_col = rest:match("^(.-) %(while .- started at (%d+):(%d+)%)$")
  problem = problem or rest
  local h = hint(text, tonumber(line), tonumber(col), problem, tonumber(ctx_line), tonumber(ctx_col))
  return nil, h and (err .. "; " .. h) or err, code
end

-- yaml.load_file(path [, opts]) -> {doc, ...} | nil, message, code ("io" or "parse")
function M.load_file(path, opts)
  local text, err, code = fs.read(path)
  if not text then return nil, err, code end
  local o = { filename = path }
  for k, v in pairs(opts or {}) do
    if k ~= "filename" or v ~= nil then
      o[k] = v
    end
  end
  return M.load(text, o)
end

return M
