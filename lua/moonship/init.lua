-- require "moonship": the programmatic API. The scheduler is here now; the template loader,
-- the engine and the Kubernetes client join it as they land.
local M = {}

M.sched = require "moonship.sched"
M.version = require("moonship.core").version

return M
