-- The apps the rollback and prune specs deploy, alike on kubesim (tests/e2e) and on the real
-- control plane (tests/real), so that both prove the same thing.
local proc = require "support.proc"

local M = {}

-- example/web:2 starts and exits every time (crashing_images, which kubesim and the real control
-- plane's simulated nodes both follow).
M.SCENARIO = [[
defaults: {start_delay: 0.5, ready_delay: 1, crash_after: 0.5, duration: 1, jitter: 0}
crashing_images: ["example/web:2"]
]]

local TEMPLATE = [[
app: shop
services:
- name: web
  image: example/web:%d
  replicas: 2
  ports: [{type: container_port, port: 80}]
jobs:
- name: migrate
  image: example/tools:1
workflows:
- name: deploy
  parallelize:
  - {step: migrate, tasks: [jobs.migrate]}
  - {step: web, tasks: [services.web], halt_on_error: true}
]]

-- Release `version` of the shop: its web image example/web:<version>. extra: it also has the
-- service extra, applied in the first step (what a rollback to a release without it prunes).
function M.text(version, opts)
  local text = TEMPLATE:format(version)
  if opts and opts.extra then
    text = text:gsub("\njobs:\n", "\n- name: extra\n  image: example/extra:1\n"
      .. "  ports: [{type: container_port, port: 81}]\njobs:\n", 1)
      :gsub("tasks: %[jobs%.migrate%]", "tasks: [jobs.migrate, services.extra]", 1)
  end
  return text
end

-- Writes release `version` as dir/moonship.yaml (and hooks, when given, as dir/hooks.lua);
-- returns the template's path.
function M.write(dir, version, opts)
  opts = opts or {}
  if opts.hooks then proc.write_file(dir .. "/hooks.lua", opts.hooks) end
  return proc.write_file(dir .. "/moonship.yaml", M.text(version, opts))
end

-- Another tool's Deployment in namespace ns with the app's label (app.kubernetes.io/part-of:
-- shop) but no ApplySet membership: what a prune must never touch.
function M.foreign(ns)
  return ([[
apiVersion: apps/v1
kind: Deployment
metadata:
  name: legacy
  namespace: %s
  labels: {app.kubernetes.io/part-of: shop, app: legacy}
spec:
  replicas: 1
  selector: {matchLabels: {app: legacy}}
  template:
    metadata: {labels: {app: legacy}}
    spec: {containers: [{name: main, image: example/legacy:1}]}
]]):format(ns)
end

return M
