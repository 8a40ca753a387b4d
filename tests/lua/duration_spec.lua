-- moonship.duration: the durations users write, table-driven, with the exact messages.
local duration = require "moonship.duration"

describe("duration.parse", function()
  local ok_cases = {
    {90, 90}, {1.5, 1.5}, {"90", 90}, {"90s", 90}, {"5m", 300}, {"1h30m", 5400}, {"1.5h", 5400},
    {"250ms", 0.25}, {"1m30s", 90}, {"0", 0},
  }
  for _, c in ipairs(ok_cases) do
    it("reads " .. tostring(c[1]), function() assert.equal(c[2], duration.parse(c[1])) end)
  end

  local bad_cases = {
    {-1, "a duration cannot be negative"},
    {"", "not a duration: "},
    {"5 minutes", 'not a duration: "5 minutes" (use e.g. 90s, 5m, 1h30m)'},
    {"1d", 'not a duration: "1d" (use e.g. 90s, 5m, 1h30m)'},
    {true, "not a duration: true"},
  }
  for _, c in ipairs(bad_cases) do
    it("refuses " .. tostring(c[1]), function()
      local v, err = duration.parse(c[1])
      assert.is_nil(v)
      assert.equal(c[2], err)
    end)
  end
end)

describe("duration.format", function()
  it("shows seconds to a tenth under a minute, minutes and seconds above", function()
    assert.same({"4.2s", "12s", "0s", "1m00s", "3m05s", "61m40s"},
      {duration.format(4.21), duration.format(12), duration.format(0), duration.format(59.96),
       duration.format(185), duration.format(3700)})
  end)
end)
