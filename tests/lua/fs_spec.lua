-- moonship.core.fs: mkdir_p makes every missing parent, accepts what exists, names what fails.
local fs = require("moonship.core").fs

local function tmpdir()
  local p = os.tmpname()
  os.remove(p)
  return p
end

local function is_dir(path)
  local ok = os.rename(path, path)
  local f = io.open(path .. "/.")
  if f then f:close() end
  return ok and f ~= nil
end

describe("fs.mkdir_p", function()
  it("makes a path and its parents, and accepts one that exists", function()
    local root = tmpdir()
    assert.is_true(fs.mkdir_p(root .. "/a/b/c"))
    assert.is_true(is_dir(root .. "/a/b/c"))
    assert.is_true(fs.mkdir_p(root .. "/a/b/c"))
    assert.is_true(fs.mkdir_p(root .. "/a/b/c/"))
    os.execute("rm -rf '" .. root .. "'")
  end)

  it("says which part is in the way", function()
    local root = tmpdir()
    assert.is_true(fs.mkdir_p(root))
    local f = assert(io.open(root .. "/file", "w"))
    f:close()
    local ok, err = fs.mkdir_p(root .. "/file/sub")
    assert.is_nil(ok)
    assert.equal(root .. "/file: Not a directory", err)
    os.execute("rm -rf '" .. root .. "'")
  end)

  it("rejects an empty path", function()
    assert.has_error(function() fs.mkdir_p("") end)
  end)
end)

describe("fs.list", function()
  it("lists a directory's entries, sorted, without . and ..", function()
    local root = tmpdir()
    assert.is_true(fs.mkdir_p(root .. "/b_dir"))
    for _, name in ipairs {"c.txt", "a.txt", "_"} do
      local f = assert(io.open(root .. "/" .. name, "w"))
      f:close()
    end
    assert.same({"_", "a.txt", "b_dir", "c.txt"}, fs.list(root))
    assert.same({}, fs.list(root .. "/b_dir"))
  end)

  it("names the directory it cannot read", function()
    local ok, err = fs.list("/nonexistent/dir")
    assert.is_nil(ok)
    assert.equal("/nonexistent/dir: No such file or directory", err)
  end)
end)

describe("fs.mkdtemp", function()
  it("makes a new private folder in $TMPDIR, a new one each time", function()
    local a = assert(fs.mkdtemp("moonship-test-"))
    local b = assert(fs.mkdtemp("moonship-test-"))
    assert.not_equal(a, b)
    assert.matches("/moonship%-test%-......$", a)
    assert.is_true(is_dir(a))
    os.remove(a)
    os.remove(b)
  end)
end)
