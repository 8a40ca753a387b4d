-- Files and paths: the one place Lua code reads and writes whole files, asks what a path names
-- and takes paths apart (C core: src/lua/fs.c). Failures return nil, a message that names the
-- path ("app.yaml: No such file or directory") and the code "io"; nothing here raises for a
-- missing file.
--   fs.read(path) -> text | nil, message, "io"    fs.write(path, text) -> true | nil, message, "io"
--   fs.exists(path), fs.is_dir(path) -> boolean   (links followed)
--   fs.type(path) -> "file" | "directory" | "other" | nil, message, "io"
--   fs.dirname(path), fs.basename(path)           (as POSIX dirname(1)/basename(1))
--   fs.join(base, rel) -> base/rel; rel itself when it is absolute or base is "." or ""
--   fs.normalize(abs) -> abs without ".", ".." and doubled "/"   fs.absolute(path)
--   fs.cwd() -> the current directory as `pwd` prints it | nil, message
--   fs.list(dir) -> {name, ...} sorted | nil, message
--   fs.mkdir_p(path [, mode]) -> true | nil, message   fs.mkdtemp(prefix) -> path | nil, message
local core = require("moonship.core").fs

local open = io.open

local M = {
  type = core.type,
  cwd = core.cwd,
  list = core.list,
  mkdir_p = core.mkdir_p,
  mkdtemp = core.mkdtemp,
}

-- io.open's failures end with an errno number; ours end with the code, as the binding's do.
function M.read(path)
  local f, err = open(path, "rb")
  if not f then return nil, err, "io" end
  local text, rerr = f:read("a")
  f:close()
  if not text then return nil, path .. ": " .. tostring(rerr), "io" end
  return text
end

function M.write(path, text)
  local f, err = open(path, "wb")
  if not f then return nil, err, "io" end
  local ok, werr = f:write(text)
  local closed, cerr = f:close()
  if not ok or not closed then return nil, path .. ": " .. tostring(werr or cerr), "io" end
  return true
end

function M.exists(path)
  return core.type(path) ~= nil
end

function M.is_dir(path)
  return core.type(path) == "directory"
end

-- "a/b/c" -> "a/b", "c" -> ".", "/c" -> "/", "a/b/" -> "a".
function M.dirname(path)
  path = path:gsub("(.)/+$", "%1")
  local dir = path:match("^(.*[^/])/+[^/]*$")
  if dir then return dir end
  return path:sub(1, 1) == "/" and "/" or "."
end

-- "a/b/c" -> "c", "a/b/" -> "b", "/" -> "/".
function M.basename(path)
  path = path:gsub("(.)/+$", "%1")
  local name = path:match("[^/]+$")
  return name or path
end

function M.join(base, rel)
  if rel:sub(1, 1) == "/" or base == "." or base == "" then return rel end
  if base:sub(-1) == "/" then return base .. rel end
  return base .. "/" .. rel
end

function M.normalize(path)
  local parts = {}
  for part in path:gmatch("[^/]+") do
    if part == ".." and #parts > 0 and parts[#parts] ~= ".." then
      parts[#parts] = nil
    elseif part ~= "." then
      parts[#parts + 1] = part
    end
  end
  return "/" .. table.concat(parts, "/")
end

-- The absolute path of path, against the current directory (raises when there is none: a
-- directory removed under us).
function M.absolute(path)
  return M.normalize(M.join(assert(core.cwd()), path))
end

return M
