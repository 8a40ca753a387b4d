-- Durations as users write them: 90, "90s", "5m", "1h30m", "1.5h", "250ms" -> seconds, and
-- back to text for plans and reports.
local M = {}

local UNIT = {ms = 0.001, s = 1, m = 60, h = 3600}

-- duration.parse(v) -> seconds or nil, message
function M.parse(v)
  if math.type(v) or type(v) == "number" then
    if v < 0 then return nil, "a duration cannot be negative" end
    return v
  end
  if type(v) ~= "string" or v == "" then return nil, "not a duration: " .. tostring(v) end
  if v:match("^%d+%.?%d*$") then return tonumber(v) end
  local total, rest = 0, v
  while rest ~= "" do
    local num, unit, tail = rest:match("^(%d+%.?%d*)(%a+)(.*)$")
    if not num or not UNIT[unit] then
      return nil, ("not a duration: %q (use e.g. 90s, 5m, 1h30m)"):format(v)
    end
    total = total + tonumber(num) * UNIT[unit]
    rest = tail
  end
  return total
end

-- duration.format(seconds) -> "4.2s", "12s", "3m05s": how plans and reports show a duration.
function M.format(x)
  local tenths = math.floor(x * 10 + 0.5) / 10
  if tenths >= 60 then -- 59.96 s is a minute, not "60s"
    local whole = math.floor(x + 0.5)
    return ("%dm%02ds"):format(whole // 60, whole % 60)
  end
  return ("%gs"):format(tenths)
end

return M
