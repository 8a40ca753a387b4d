-- Line diffs: the shortest edit script between two lists of lines (Myers' O(ND) algorithm, after
-- the common head and tail are set aside), and its unified form with @@ hunks as diff -u writes it.
--   linediff.diff(a, b [, {max_edits=}]) -> {{op, line}...}   op " " kept, "-" only in a, "+" only in b
--   linediff.unified(a, b [, {context=3, from="a", to="b", max_edits=}]) -> {line...} ({} when equal)
--   linediff.lines(text) -> {line...}   (a final newline ends the last line; it makes none)
local concat, fmt = table.concat, string.format

local M = {}

-- Past this many differing lines the search stops and the differing middle is given as all
-- removed, then all added: still a correct diff, only not the shortest (its cost grows with
-- the number of edits times the length).
M.MAX_EDITS = 4000

function M.lines(text)
  local out = {}
  for line in text:gmatch("([^\n]*)\n") do out[#out + 1] = line end
  local tail = text:match("([^\n]+)$")
  if tail then out[#out + 1] = tail end
  return out
end

-- Myers' greedy search over a[lo+1 .. lo+n] and b[lo+1 .. lo+m]; the edit script in order, or
-- nil past max_d edits. trace[d] is the furthest x per diagonal k = x - y when round d began.
local function myers(a, b, lo, n, m, max_d)
  local v, trace = {[1] = 0}, {}
  for d = 0, math.min(n + m, max_d) do
    local snapshot = {}
    for k = -d - 1, d + 1 do snapshot[k] = v[k] end
    trace[d] = snapshot
    for k = -d, d, 2 do
      local x
      if k == -d or (k ~= d and v[k - 1] < v[k + 1]) then x = v[k + 1] else x = v[k - 1] + 1 end
      local y = x - k
      while x < n and y < m and a[lo + x + 1] == b[lo + y + 1] do x, y = x + 1, y + 1 end
      v[k] = x
      if x >= n and y >= m then
        -- back from (n, m): each round's step, then the run of equal lines before it
        local rev = {}
        for dd = d, 0, -1 do
          local tv = trace[dd]
          local kk = x - y
          local pk
          if kk == -dd or (kk ~= dd and tv[kk - 1] < tv[kk + 1]) then pk = kk + 1 else pk = kk - 1 end
          local px = tv[pk]
          local py = px - pk
          while x > px and y > py do
            rev[#rev + 1] = {" ", a[lo + x]}
            x, y = x - 1, y - 1
          end
          if dd > 0 then
            if x == px then rev[#rev + 1] = {"+", b[lo + y]} else rev[#rev + 1] = {"-", a[lo + x]} end
          end
          x, y = px, py
        end
        local ops = {}
        for i = #rev, 1, -1 do ops[#ops + 1] = rev[i] end
        return ops
      end
    end
  end
  return nil
end

function M.diff(a, b, opts)
  local max_d = opts and opts.max_edits or M.MAX_EDITS
  local na, nb = #a, #b
  local head = 0
  while head < na and head < nb and a[head + 1] == b[head + 1] do head = head + 1 end
  local tail = 0
  while tail < na - head and tail < nb - head and a[na - tail] == b[nb - tail] do tail = tail + 1 end
  local ops = {}
  for i = 1, head do ops[i] = {" ", a[i]} end
  local n, m = na - head - tail, nb - head - tail
  local middle = myers(a, b, head, n, m, max_d)
  if not middle then
    middle = {}
    for i = 1, n do middle[#middle + 1] = {"-", a[head + i]} end
    for i = 1, m do middle[#middle + 1] = {"+", b[head + i]} end
  end
  for _, op in ipairs(middle) do ops[#ops + 1] = op end
  for i = na - tail + 1, na do ops[#ops + 1] = {" ", a[i]} end
  return ops
end

-- "start,count" of a hunk's side as diff -u writes it: ",1" left out, and an empty side
-- numbered by the line before it.
local function range(start, count)
  if count == 1 then return tostring(start) end
  if count == 0 then start = start - 1 end
  return fmt("%d,%d", start, count)
end

function M.unified(a, b, opts)
  opts = opts or {}
  local context = opts.context or 3
  local ops = M.diff(a, b, opts)
  -- each op's line number in a and in b (of the line it keeps, removes or adds, or the next)
  local ia, ib, changes = {}, {}, {}
  local la, lb = 1, 1
  for i, op in ipairs(ops) do
    ia[i], ib[i] = la, lb
    if op[1] ~= "+" then la = la + 1 end
    if op[1] ~= "-" then lb = lb + 1 end
    if op[1] ~= " " then changes[#changes + 1] = i end
  end
  if #changes == 0 then return {} end
  local out = {"--- " .. (opts.from or "a"), "+++ " .. (opts.to or "b")}
  local c = 1
  while c <= #changes do
    -- a hunk: the changes no more than 2 * context equal lines apart, with context around
    local first, last = changes[c], changes[c]
    while c < #changes and changes[c + 1] - last - 1 <= 2 * context do
      c = c + 1
      last = changes[c]
    end
    c = c + 1
    local from, to = math.max(1, first - context), math.min(#ops, last + context)
    local body, na, nb = {}, 0, 0
    for i = from, to do
      local op = ops[i]
      body[#body + 1] = op[1] .. op[2]
      if op[1] ~= "+" then na = na + 1 end
      if op[1] ~= "-" then nb = nb + 1 end
    end
    out[#out + 1] = fmt("@@ -%s +%s @@", range(ia[from], na), range(ib[from], nb))
    table.move(body, 1, #body, #out + 1, out)
  end
  return out
end

-- The unified diff as text, one line each (tests, messages).
function M.text(a, b, opts)
  local lines = M.unified(a, b, opts)
  if #lines == 0 then return "" end
  return concat(lines, "\n") .. "\n"
end

return M
