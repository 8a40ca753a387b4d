-- SHA-256 (FIPS 180-4) in plain Lua 5.4: the ApplySet id (KEP-3659) is a hash of its parent's
-- name, computed once per run, so no C binding is needed for it.
--   sha256.digest(text) -> the 32 bytes of the digest
--   sha256.hex(text)    -> the same as 64 lowercase hex digits
local pack, unpack, rep, fmt = string.pack, string.unpack, string.rep, string.format

local M = {}

local MASK = 0xffffffff

-- The first 32 bits of the fractional parts of the square roots (H) and cube roots (K) of the
-- first 8 and 64 primes, as FIPS 180-4 §4.2.2 and §5.3.3 define them (doubles hold the root
-- with ~50 fractional bits; the known-answer tests of tests/lua/applyset_spec.lua pin them).
local function primes(n)
  local out, p = {}, 2
  while #out < n do
    local prime = true
    for _, q in ipairs(out) do
      if q * q > p then break end
      if p % q == 0 then prime = false break end
    end
    if prime then out[#out + 1] = p end
    p = p + 1
  end
  return out
end

local function frac32(x) return math.floor((x - math.floor(x)) * 2 ^ 32) end

local H0, K = {}, {}
for i, p in ipairs(primes(64)) do
  if i <= 8 then H0[i] = frac32(math.sqrt(p)) end
  -- p ^ (1/3) may be off by an ulp; one Newton step from it gives the correctly rounded root.
  local r = p ^ (1 / 3)
  r = r - (r * r * r - p) / (3 * r * r)
  K[i] = frac32(r)
end

local function rrot(x, n) return ((x >> n) | (x << (32 - n))) & MASK end

function M.digest(text)
  local h1, h2, h3, h4, h5, h6, h7, h8 = table.unpack(H0)
  local len = #text
  local msg = text .. "\128" .. rep("\0", (55 - len) % 64) .. pack(">I8", len * 8)
  local w = {}
  for chunk = 1, #msg, 64 do
    for i = 1, 16 do w[i] = unpack(">I4", msg, chunk + (i - 1) * 4) end
    for i = 17, 64 do
      local x, y = w[i - 15], w[i - 2]
      local s0 = rrot(x, 7) ~ rrot(x, 18) ~ (x >> 3)
      local s1 = rrot(y, 17) ~ rrot(y, 19) ~ (y >> 10)
      w[i] = (w[i - 16] + s0 + w[i - 7] + s1) & MASK
    end
    local a, b, c, d, e, f, g, h = h1, h2, h3, h4, h5, h6, h7, h8
    for i = 1, 64 do
      local t1 = (h + (rrot(e, 6) ~ rrot(e, 11) ~ rrot(e, 25)) + ((e & f) ~ (~e & g)) + K[i] + w[i]) & MASK
      local t2 = ((rrot(a, 2) ~ rrot(a, 13) ~ rrot(a, 22)) + ((a & b) ~ (a & c) ~ (b & c))) & MASK
      h, g, f, e, d, c, b, a = g, f, e, (d + t1) & MASK, c, b, a, (t1 + t2) & MASK
    end
    h1, h2, h3, h4 = (h1 + a) & MASK, (h2 + b) & MASK, (h3 + c) & MASK, (h4 + d) & MASK
    h5, h6, h7, h8 = (h5 + e) & MASK, (h6 + f) & MASK, (h7 + g) & MASK, (h8 + h) & MASK
  end
  return pack(">I4I4I4I4I4I4I4I4", h1, h2, h3, h4, h5, h6, h7, h8)
end

function M.hex(text)
  return (M.digest(text):gsub(".", function(c) return fmt("%02x", c:byte()) end))
end

return M
