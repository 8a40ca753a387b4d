-- Every example runs with its one documented command on kubesim, and does what its README says.
local events = require "support.events"
local proc = require "support.proc"

local final_states = events.final_states

-- Runs a command; returns its result and the JSON events it printed.
local function run_json(argv)
  local r = proc.run(argv)
  return r, events.decode(r.stdout)
end


local EX = proc.source_dir .. "/examples"

-- Copies an example to a temp dir so the journals it writes stay out of the tree.
local function copy(name)
  local dir = proc.tmpdir()
  os.execute(("cp -r %s/. %s"):format(proc.quote(EX .. "/" .. name), proc.quote(dir)))
  return dir
end

describe("examples", function()
  it("shop: the seed workflow on kubesim", function()
    local dir = copy("shop")
    local r, ev = run_json {proc.moonship, "deploy", dir .. "/moonship.yaml", "-w", "deploy", "--sim",
                            "--scenario", dir .. "/scenario.yaml", "--time-scale", "0.05", "-o", "json"}
    assert.equal(0, r.code, r.stderr)
    assert.same({["services.frontend"] = "succeeded", ["jobs.migrate"] = "succeeded",
                 ["jobs.scrub"] = "succeeded", ["services.backend"] = "succeeded"}, final_states(ev))
  end)

  it("hooks: retry, a custom task kind and a custom resource's health rule", function()
    local dir = copy("hooks")
    local r, ev = run_json {proc.moonship, "deploy", dir .. "/moonship.yaml", "-w", "deploy", "--sim",
                            "--scenario", dir .. "/scenario.yaml", "--time-scale", "0.05", "-o", "json"}
    assert.equal(0, r.code, r.stderr)
    local states = final_states(ev)
    assert.equal("succeeded", states["jobs.seed"])
    assert.equal("succeeded", states["manifests.widget"])
    assert.equal("succeeded", states["lua.notify"])
    local attempts = 0
    for _, e in ipairs(ev) do
      if e.event == "task_started" and e.task == "jobs.seed" then attempts = attempts + 1 end
    end
    assert.equal(2, attempts)
  end)

  it("hooks: a widget missing parts halts the run and the cleanup hook lists what started", function()
    local dir = copy("hooks")
    proc.write_file(dir .. "/widget.yaml", "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: flagship}\nspec: {size: 3, parts: [gear]}\n")
    local r, ev = run_json {proc.moonship, "deploy", dir .. "/moonship.yaml", "-w", "deploy", "--sim",
                            "--scenario", dir .. "/scenario.yaml", "--time-scale", "0.05", "-o", "json"}
    assert.equal(1, r.code, r.stderr)
    local states = final_states(ev)
    assert.equal("failed", states["manifests.widget"])
    assert.equal("skipped", states["lua.notify"])
    local logged = {}
    for _, e in ipairs(ev) do if e.event == "log" then logged[#logged + 1] = e.message end end
    local text = table.concat(logged, "\n")
    assert.matches("halted; it started:", text)
    assert.matches("manifests.widget %(failed%)", text)
  end)

  it("voting-app: a real ReleaseHub template recovers its crash-looping services; hostnames and volume deployed", function()
    local dir = copy("voting-app")
    -- The template is found where ReleaseHub keeps it: .release/ under the current directory.
    local r, ev = run_json {"sh", "-c", ("cd %s && %s deploy -w setup --sim --scenario scenario.yaml --time-scale 0.05 -o json")
      :format(proc.quote(dir), proc.quote(proc.moonship))}
    assert.equal(0, r.code, r.stderr)
    local states = final_states(ev)
    for _, svc in ipairs {"db", "redis", "result"} do assert.equal("succeeded", states["services." .. svc]) end
    assert.equal("recovered", states["services.vote"])
    assert.equal("recovered", states["services.worker"])
    -- its hostnames are Ingresses, the database's volume a claim
    local applied = {}
    for _, e in ipairs(ev) do
      for _, o in ipairs(e.objects or {}) do applied[o.kind .. "/" .. o.name] = e.task end
    end
    assert.equal("services.result", applied["Ingress/result"])
    assert.equal("services.vote", applied["Ingress/vote"])
    assert.equal("services.db", applied["PersistentVolumeClaim/db-data"])
    assert.equal("", r.stderr)
  end)

  it("shop/deploy.lua: a deploy written as a Lua script", function()
    local r = proc.run {proc.moonship, "run", EX .. "/shop/deploy.lua", "--sim"}
    assert.equal(0, r.code, r.stderr)
    assert.matches("run %S+: succeeded", r.stdout)
    os.execute("rm -rf " .. proc.quote(EX .. "/shop/.moonship"))
  end)
end)
