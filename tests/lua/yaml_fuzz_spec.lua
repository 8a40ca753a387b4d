-- Mutations of the template fixtures and the malformed corpus through yaml.load/dump and
-- json.decode/encode, with a fixed seed: nothing raises where a fail tuple is due, what loads
-- dumps and loads back to the same value. Run longer by hand: MOONSHIP_FUZZ_ITERATIONS=1e6.
local yaml = require "moonship.yaml"
local json = require "moonship.json"
local proc = require "support.proc"

local SRC = os.getenv("MOONSHIP_SOURCE_DIR") or "."
local ITERATIONS = tonumber(os.getenv("MOONSHIP_FUZZ_ITERATIONS") or "4000")

local PIECES = {"&a ", "*a ", "<<: ", "- ", ": ", "{", "}", "[", "]", "\n", "\t", "'", '"',
  "!!int ", "!!str ", "? ", "---\n", "...\n", "|\n", ">-\n", "\\u0000", "\\ud800", "\255",
  "\194\133", "#", ",", "~", "1e3", "0x", "0644", "null", "true", "  ", "%YAML 1.1\n"}

local function seeds()
  local list = {}
  local p = assert(io.popen("find " .. SRC .. "/tests/fixtures/templates -name '*.yaml' | sort; ls " ..
    SRC .. "/tests/fuzz/yaml/* " .. SRC .. "/tests/fuzz/json/*"))
  for path in p:lines() do
    local s = proc.read_file(path)
    if #s < 20000 then list[#list + 1] = s end
  end
  p:close()
  return list
end

local function mutate(s, random)
  for _ = 1, random(1, 8) do
    local pos, r = random(0, #s), random(3)
    if r == 1 then
      s = s:sub(1, pos) .. PIECES[random(#PIECES)] .. s:sub(pos + 1)
    elseif r == 2 then
      s = s:sub(1, pos) .. s:sub(pos + random(1, 10))
    else
      s = s:sub(1, pos) .. string.char(random(0, 255)) .. s:sub(pos + 2)
    end
  end
  return s
end

describe("loaders under mutation", function()
  it("fail cleanly or round-trip", function()
    local list = seeds()
    assert.is_true(#list > 50)
    math.randomseed(42)
    local random = math.random
    local loaded, decoded = 0, 0
    for _ = 1, ITERATIONS do
      local s = mutate(list[random(#list)], random)
      local docs, err = yaml.load(s, {filename = "m.yaml"})
      if docs then
        loaded = loaded + 1
        local out = yaml.dump_all(docs)
        local again, err2 = yaml.load(out, {max_depth = 1000})
        assert(again, "dump does not load back: " .. tostring(err2) .. "\n" .. s)
        local ok1, a = pcall(json.encode, docs, {sort_keys = true})
        local ok2, b = pcall(json.encode, again, {sort_keys = true})
        assert(ok1 == ok2 and (not ok1 or a == b), "round trip changed:\n" .. s)
      else
        assert(err:match("^m%.yaml:%d+:%d+: ."), err)
      end
      local v, jerr = json.decode(s)
      if v ~= nil then
        decoded = decoded + 1
        local ok, text = pcall(json.encode, v)
        if ok then assert(json.decode(text) ~= nil, text) end
      else
        assert(jerr:match("^json: %d+:%d+/%d+: ."), jerr)
      end
    end
    assert.is_true(loaded > 0 and decoded > 0)
  end)
end)
