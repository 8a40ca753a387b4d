-- moonship.fs and its C core (moonship.core.fs): whole files, what a path names, paths taken
-- apart, the current directory; mkdir_p makes every missing parent, accepts what exists, names
-- what fails.
local fs = require "moonship.fs"
local proc = require "support.proc"

local function tmpdir()
  local p = os.tmpname()
  os.remove(p)
  return p
end

-- What a child lua5.4 run after the shell command cmd writes: the results of fs.<call>, each
-- through tostring, joined by "|".
local function results_in(cmd, call)
  local script = ([[local r = table.pack(require("moonship.fs").%s)
    for i = 1, r.n do r[i] = tostring(r[i]) end io.write(table.concat(r, "|", 1, r.n))]]):format(call)
  local p = assert(io.popen(cmd .. " lua5.4 -e " .. proc.quote(script)))
  local out = p:read("a")
  p:close()
  return out
end

-- Whether path is a directory, asked of the shell rather than of the module under test.
local function is_dir(path)
  return os.execute("test -d " .. proc.quote(path)) == true
end

describe("fs.mkdir_p", function()
  it("makes a path and its parents, and accepts one that exists", function()
    local root = tmpdir()
    assert.is_true(fs.mkdir_p(root .. "/a/b/c"))
    assert.is_true(is_dir(root .. "/a/b/c"))
    assert.is_true(fs.mkdir_p(root .. "/a/b/c"))
    assert.is_true(fs.mkdir_p(root .. "/a/b/c/"))
    os.execute("rm -rf " .. proc.quote(root))
  end)

  it("says which part is in the way", function()
    local root = tmpdir()
    assert.is_true(fs.mkdir_p(root))
    local f = assert(io.open(root .. "/file", "w"))
    f:close()
    assert.same({nil, root .. "/file: Not a directory", "io"}, {fs.mkdir_p(root .. "/file/sub")})
    os.execute("rm -rf " .. proc.quote(root))
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
    assert.same({nil, "/nonexistent/dir: No such file or directory", "io"}, {fs.list("/nonexistent/dir")})
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

  it("names the folder it cannot make", function()
    assert.matches("^nil|/nonexistent/moonship%-test%-......: No such file or directory|io$",
      results_in("TMPDIR=/nonexistent", 'mkdtemp("moonship-test-")'))
  end)
end)

describe("fs.read and fs.write", function()
  local root
  before_each(function() root = assert(fs.mkdtemp("moonship-test-")) end)
  after_each(function() os.execute("rm -rf " .. proc.quote(root)) end)

  it("write a whole file and read it back, bytes as they are", function()
    local text = "line 1\r\n\0binary\255\n"
    assert.is_true(fs.write(root .. "/f", text))
    assert.equal(text, fs.read(root .. "/f"))
    assert.is_true(fs.write(root .. "/f", ""))
    assert.equal("", fs.read(root .. "/f"))
  end)

  it("name the path they cannot read or write", function()
    assert.same({nil, root .. "/none: No such file or directory", "io"}, {fs.read(root .. "/none")})
    assert.same({nil, root .. ": Is a directory", "io"}, {fs.read(root)})
    assert.same({nil, root .. "/no/f: No such file or directory", "io"}, {fs.write(root .. "/no/f", "x")})
  end)
end)

describe("fs.type, fs.exists and fs.is_dir", function()
  it("tell a file from a directory and from nothing, following links", function()
    local root = assert(fs.mkdtemp("moonship-test-"))
    assert.is_true(fs.write(root .. "/f", "x"))
    assert.is_true(os.execute(("ln -s f %s/link && ln -s . %s/dirlink"):format(proc.quote(root), proc.quote(root))))
    assert.equal("file", fs.type(root .. "/f"))
    assert.equal("file", fs.type(root .. "/link"))
    assert.equal("directory", fs.type(root .. "/dirlink"))
    assert.equal("other", fs.type("/dev/null"))
    assert.same({nil, root .. "/none: No such file or directory", "io"}, {fs.type(root .. "/none")})
    assert.is_true(fs.exists(root .. "/f"))
    assert.is_true(fs.exists(root))
    assert.is_false(fs.exists(root .. "/none"))
    assert.is_true(fs.is_dir(root))
    assert.is_true(fs.is_dir(root .. "/dirlink"))
    assert.is_false(fs.is_dir(root .. "/f"))
    assert.is_false(fs.is_dir(root .. "/none"))
    os.execute("rm -rf " .. proc.quote(root))
  end)
end)

describe("paths", function()
  it("dirname and basename as POSIX dirname(1) and basename(1)", function()
    local cases = {
      -- path,      dirname, basename
      {"a/b/c",     "a/b",   "c"},
      {"c",         ".",     "c"},
      {"/c",        "/",     "c"},
      {"a/b/",      "a",     "b"},
      {"a//b",      "a",     "b"},
      {"/a/b//",    "/a",    "b"},
      {"/",         "/",     "/"},
      {"//",        "/",     "/"},
      {".",         ".",     "."},
      {"../x.yaml", "..",    "x.yaml"},
    }
    for _, c in ipairs(cases) do
      assert.equal(c[2], fs.dirname(c[1]), "dirname " .. c[1])
      assert.equal(c[3], fs.basename(c[1]), "basename " .. c[1])
    end
  end)

  it("join keeps an absolute rel and drops a '.' base", function()
    assert.equal("a/b", fs.join("a", "b"))
    assert.equal("a/b", fs.join("a/", "b"))
    assert.equal("/b", fs.join("/", "b"))
    assert.equal("/b", fs.join("a", "/b"))
    assert.equal("b", fs.join(".", "b"))
    assert.equal("b", fs.join("", "b"))
  end)

  it("normalize folds '.', '..' and doubled slashes of an absolute path", function()
    assert.equal("/a/c", fs.normalize("/a/./b/../c"))
    assert.equal("/a/b", fs.normalize("//a//b/"))
    assert.equal("/", fs.normalize("/a/.."))
  end)

  it("absolute is the path against the current directory", function()
    local cwd = assert(fs.cwd())
    assert.equal(cwd .. "/x", fs.absolute("x"))
    assert.equal(fs.normalize(cwd .. "/../y"), fs.absolute("sub/../../y"))
    assert.equal("/etc/hosts", fs.absolute("/etc/./hosts"))
  end)
end)

describe("fs.cwd", function()
  -- The current directory as a child lua5.4 started in dir with PWD=pwd sees it.
  local function cwd_in(dir, pwd)
    local p = assert(io.popen(("cd %s && PWD=%s lua5.4 -e 'io.write(require(\"moonship.fs\").cwd())'")
      :format(proc.quote(dir), proc.quote(pwd))))
    local out = p:read("a")
    p:close()
    return out
  end

  it("is $PWD when it names the current directory (keeping a link), else the real path", function()
    local root = assert(fs.mkdtemp("moonship-test-"))
    assert.is_true(fs.mkdir_p(root .. "/real"))
    assert.is_true(os.execute(("ln -s real %s/link"):format(proc.quote(root))))
    local p = assert(io.popen("cd " .. proc.quote(root .. "/real") .. " && pwd -P"))
    local real = p:read("l")
    p:close()
    assert.equal(root .. "/link", cwd_in(root .. "/link", root .. "/link"))
    -- a stale $PWD (another directory), a relative one, or one with '.' or '..' in it, is not
    -- believed: getcwd's path is
    assert.equal(real, cwd_in(root .. "/link", root))
    assert.equal(real, cwd_in(root .. "/link", "link"))
    assert.equal(real, cwd_in(root .. "/link", root .. "/real/../link"))
    assert.equal(real, cwd_in(root .. "/link", root .. "/./link"))
    os.execute("rm -rf " .. proc.quote(root))
  end)

  it("fails with io in a directory that was removed", function()
    local root = assert(fs.mkdtemp("moonship-test-"))
    assert.equal("nil|getcwd: No such file or directory|io",
      results_in(("cd %s && rmdir %s &&"):format(proc.quote(root), proc.quote(root)), "cwd()"))
  end)
end)
