-- YAML for moonship: the C module (load, where, dump, dump_all, null) plus load_file.
--   yaml.load(text [, {filename=, max_nodes=, max_depth=}]) -> {doc, ...} | nil, "file:line:col: msg"
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
local M = require("moonship.core").yaml

local open = io.open

-- yaml.load_file(path [, opts]) -> {doc, ...} | nil, message
function M.load_file(path, opts)
  local f, err = open(path, "rb")
  if not f then
    return nil, err
  end
  local text, rerr = f:read("a")
  f:close()
  if not text then
    return nil, path .. ": " .. tostring(rerr)
  end
  local o = { filename = path }
  for k, v in pairs(opts or {}) do
    if k ~= "filename" or v ~= nil then
      o[k] = v
    end
  end
  return M.load(text, o)
end

return M
