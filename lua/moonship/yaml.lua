-- YAML for moonship: the C module (load, where, dump, dump_all, null) plus load_file.
--   yaml.load(text [, {filename=, max_nodes=, max_depth=}]) -> {doc, ...} | nil, "file:line:col: msg"
--   yaml.where(tbl [, key]) -> filename, line, col of a loaded key/index (or of tbl itself)
--   yaml.dump(value) / yaml.dump_all(docs) -> block-style YAML text
-- Explicit and empty nulls load as yaml.null (the same value as json.null), so sequences keep
-- their length and `key:` is told apart from a missing key. Mapping keys are always strings.
-- Sequences carry the array mark of moonship.json (empty mappings the object mark), so
-- json.encode(yaml.load(x)[1]) keeps [] and {} apart.
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
