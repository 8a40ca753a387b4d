-- Comparing decoded values as data, for the YAML and JSON specs.
local json = require "moonship.json"

local M = {}

-- Values equal as data: tables compared by contents, [] and {} told apart by their marks,
-- integers and floats told apart, NaN equal to NaN.
function M.same(a, b)
  if type(a) ~= "table" or type(b) ~= "table" then
    if type(a) == "number" and type(b) == "number" then
      return math.type(a) == math.type(b) and (a == b or (a ~= a and b ~= b))
    end
    return a == b
  end
  if json.is_array(a) ~= json.is_array(b) then return false end
  for k, v in pairs(a) do
    if not M.same(v, b[k]) then return false end
  end
  for k in pairs(b) do
    if a[k] == nil then return false end
  end
  return true
end

return M
