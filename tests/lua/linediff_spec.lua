-- moonship.linediff: the shortest edit script (checked against the LCS on random inputs) and its
-- unified form, hunk by hunk as diff -u writes it.
local linediff = require "moonship.linediff"

local function L(s) return linediff.lines(s) end

-- Applies an edit script: the two sides it keeps and makes.
local function sides(ops)
  local a, b = {}, {}
  for _, op in ipairs(ops) do
    if op[1] ~= "+" then a[#a + 1] = op[2] end
    if op[1] ~= "-" then b[#b + 1] = op[2] end
  end
  return a, b
end

-- The length of the longest common subsequence, by dynamic programming.
local function lcs(a, b)
  local prev = {}
  for j = 0, #b do prev[j] = 0 end
  for i = 1, #a do
    local cur = {[0] = 0}
    for j = 1, #b do
      cur[j] = a[i] == b[j] and prev[j - 1] + 1 or math.max(prev[j], cur[j - 1])
    end
    prev = cur
  end
  return prev[#b]
end

describe("linediff.lines", function()
  it("splits on newlines; a final newline makes no empty line", function()
    assert.same({"a", "b"}, L("a\nb\n"))
    assert.same({"a", "b"}, L("a\nb"))
    assert.same({"a", "", "b"}, L("a\n\nb\n"))
    assert.same({}, L(""))
  end)
end)

describe("linediff.diff", function()
  it("finds a shortest edit script: its edits are n + m - 2 * LCS, and it rebuilds both sides", function()
    math.randomseed(42)
    for _ = 1, 300 do
      local a, b = {}, {}
      for i = 1, math.random(0, 25) do a[i] = string.char(96 + math.random(1, 4)) end
      for i = 1, math.random(0, 25) do b[i] = string.char(96 + math.random(1, 4)) end
      local ops = linediff.diff(a, b)
      local ra, rb = sides(ops)
      assert.same(a, ra)
      assert.same(b, rb)
      local edits = 0
      for _, op in ipairs(ops) do if op[1] ~= " " then edits = edits + 1 end end
      assert.equal(#a + #b - 2 * lcs(a, b), edits)
    end
  end)

  it("past max_edits gives the differing middle as removed then added: still both sides", function()
    local a, b = {"same", "1", "2", "3", "end"}, {"same", "x", "y", "end"}
    local ops = linediff.diff(a, b, {max_edits = 2})
    assert.same({{" ", "same"}, {"-", "1"}, {"-", "2"}, {"-", "3"}, {"+", "x"}, {"+", "y"}, {" ", "end"}}, ops)
  end)
end)

describe("linediff.unified", function()
  local CASES = {
    {name = "equal sides: no lines", a = "a\nb\n", b = "a\nb\n", want = ""},
    {name = "one line changed, 3 lines of context", a = "1\n2\n3\n4\n5\n6\n7\n8\n9\n", b = "1\n2\n3\n4\nV\n6\n7\n8\n9\n",
     want = "--- live\n+++ moonship\n@@ -2,7 +2,7 @@\n 2\n 3\n 4\n-5\n+V\n 6\n 7\n 8\n"},
    {name = "changes 6 equal lines apart share a hunk", a = "a\n1\n2\n3\n4\n5\n6\nb\n", b = "A\n1\n2\n3\n4\n5\n6\nB\n",
     want = "--- live\n+++ moonship\n@@ -1,8 +1,8 @@\n-a\n+A\n 1\n 2\n 3\n 4\n 5\n 6\n-b\n+B\n"},
    {name = "7 equal lines apart: two hunks", a = "a\n1\n2\n3\n4\n5\n6\n7\nb\n", b = "A\n1\n2\n3\n4\n5\n6\n7\nB\n",
     want = "--- live\n+++ moonship\n@@ -1,4 +1,4 @@\n-a\n+A\n 1\n 2\n 3\n@@ -6,4 +6,4 @@\n 5\n 6\n 7\n-b\n+B\n"},
    {name = "into an empty side: -0,0", a = "", b = "x\ny\n", want = "--- live\n+++ moonship\n@@ -0,0 +1,2 @@\n+x\n+y\n"},
    {name = "a one-line side has no count", a = "x\n", b = "y\n", want = "--- live\n+++ moonship\n@@ -1 +1 @@\n-x\n+y\n"},
    {name = "a line added at the end", a = "1\n2\n3\n4\n", b = "1\n2\n3\n4\n5\n",
     want = "--- live\n+++ moonship\n@@ -2,3 +2,4 @@\n 2\n 3\n 4\n+5\n"},
    {name = "lines removed after the first: numbered by the line before", a = "1\n2\n3\n", b = "1\n",
     want = "--- live\n+++ moonship\n@@ -1,3 +1 @@\n 1\n-2\n-3\n"},
  }
  for _, c in ipairs(CASES) do
    it(c.name, function()
      assert.equal(c.want, linediff.text(L(c.a), L(c.b), {from = "live", to = "moonship"}))
    end)
  end

  it("agrees with diff -u where the shortest script is unique", function()
    local a, b = os.tmpname(), os.tmpname()
    local fa, fb = assert(io.open(a, "w")), assert(io.open(b, "w"))
    local ta = "kind: Deployment\nspec:\n  replicas: 1\n  template:\n    spec:\n      containers:\n      - image: a:1\n"
      .. "        name: web\n        ports:\n        - containerPort: 80\n      dnsPolicy: ClusterFirst\n"
    local tb = "kind: Deployment\nspec:\n  replicas: 3\n  template:\n    spec:\n      containers:\n      - image: a:2\n"
      .. "        name: web\n      dnsPolicy: ClusterFirst\n"
    fa:write(ta); fb:write(tb); fa:close(); fb:close()
    local p = io.popen("env -u LD_PRELOAD diff -u " .. a .. " " .. b .. " | tail -n +3")
    local want = p:read("a")
    p:close()
    os.remove(a); os.remove(b)
    assert.equal(want, linediff.text(L(ta), L(tb)):gsub("^[^\n]*\n[^\n]*\n", ""))
  end)
end)
