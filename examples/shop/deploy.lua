-- A deploy written as a script: `moonship run examples/shop/deploy.lua [--sim [SCENARIO]]`, or
-- the same file under a stock lua5.4 (README "The Lua API"). It deploys the shop's workflow with
-- the engine the CLI uses, then checks the result itself and prints what each task did. Without
-- --sim it uses the current kubeconfig context.
local moonship = require "moonship"

local here = arg[0]:match("^(.*)/[^/]*$") or "."
local use_sim = arg[1] == "--sim"

local result = moonship.deploy(here .. "/moonship.yaml", {
  workflow = "deploy",
  sim = use_sim,
  scenario = use_sim and (arg[2] or (here .. "/scenario.yaml")) or nil,
  time_scale = use_sim and 0.05 or nil,
  output = "none",
})
if result.errors then
  for _, e in ipairs(result.errors) do io.stderr:write(tostring(e), "\n") end
  os.exit(result.exit_code)
end
for _, id in ipairs(result.journal.order) do
  local t = result.journal.tasks[id]
  print(string.format("%-20s %-10s %5.2fs  %d attempt(s)", id, t.state, (t.finished or 0) - (t.started or 0), t.attempts))
end
print("run " .. result.run_id .. ": " .. result.state)
-- A stock lua5.4 ignores what the script returns: the exit code is os.exit's.
os.exit(result.exit_code)
