-- `moonship diff` against the real API server, whose answers differ from kubesim's in what the
-- normaliser must leave out: a dry-run apply that only changes the run annotation bumps a
-- Deployment's generation, a Job's new run gets a selector and pod labels from its own name and
-- uid, managedFields carry new times. The shop deployed once diffs as all '=' (exit 0) and stores
-- nothing; one image changed is '~' with the image line; a Secret (stringData, which the server
-- turns into base64 data) and a secret env variable changed are named, their values never shown.
local events = require "support.events"
local json = require "moonship.json"
local proc = require "support.proc"
local realcluster = require "support.realcluster"

local SHOP = proc.source_dir .. "/examples/shop"

local cluster, why = realcluster.start {scenario = SHOP .. "/scenario.yaml", time_scale = 0.05}
if not cluster then pending(why) return end

local function object_lines(text)
  local out = {}
  for l in text:gmatch("[^\n]+") do
    if l:match("^[%+~=%-!%?] %a") then out[#out + 1] = l end
  end
  return out
end

-- The resourceVersion of every object in namespace ns, by kind/name.
local function versions(ns)
  local ok, out, err = cluster:kubectl("-n", ns, "get", "deployments,services,jobs,secrets", "-o", "json")
  assert(ok, err)
  local v = {}
  for _, item in ipairs(json.decode(out).items) do v[item.kind .. "/" .. item.metadata.name] = item.metadata.resourceVersion end
  return v
end

describe("moonship diff on the real control plane", function()
  local dir
  setup(function()
    dir = proc.tmpdir()
    os.execute("cp " .. proc.quote(SHOP .. "/moonship.yaml") .. " " .. proc.quote(dir))
    local code, _, stderr = events.deploy(cluster, {dir .. "/moonship.yaml", "-w", "deploy", "-n", "shop"})
    assert.equal(0, code, stderr)
  end)
  teardown(function()
    cluster:stop()
    os.execute("rm -rf " .. proc.quote(dir))
  end)

  local function diff(path, ns, wf, ...)
    local argv = {proc.moonship, "diff", path, "-w", wf, "--kubeconfig", cluster.kubeconfig, "-n", ns}
    for _, a in ipairs {...} do argv[#argv + 1] = a end
    return proc.run(argv)
  end

  it("the shop as deployed: every object '=', exit 0, and nothing stored", function()
    -- the server's own answer differs from the live object where the normaliser looks
    local ok, gen = cluster:kubectl("-n", "shop", "get", "deployment", "backend", "-o", "jsonpath={.metadata.generation}")
    assert.is_true(ok)
    local before = versions("shop")
    local r = diff(dir .. "/moonship.yaml", "shop", "deploy")
    assert.equal(0, r.code, r.stderr .. r.stdout)
    local objects = object_lines(r.stdout)
    assert.equal(6, #objects, r.stdout)
    for _, l in ipairs(objects) do assert.matches("^= unchanged ", l) end
    assert.matches("^= unchanged job/migrate%-%x+ %(reruns job/migrate%-%x+ with the same spec%)$", objects[3])
    assert.same(before, versions("shop"))
    local _, gen_after = cluster:kubectl("-n", "shop", "get", "deployment", "backend", "-o", "jsonpath={.metadata.generation}")
    assert.equal(gen, gen_after)
  end)

  it("a dry-run apply of the same Deployment under a new run id answers another generation and times", function()
    -- what moonship diff sends, by hand: the rendered object with another run id, dry run
    local ok, rendered, err = cluster:kubectl("-n", "shop", "get", "deployment", "backend", "-o", "json")
    assert(ok, err)
    local live = json.decode(rendered)
    local r = proc.run {proc.moonship, "render", dir .. "/moonship.yaml", "-w", "deploy", "-n", "shop", "--run-id", "other-run"}
    assert.equal(0, r.code, r.stderr)
    local doc
    for d in (r.stdout .. "---\n"):gmatch("(.-)%-%-%-\n") do
      if d:find("\nkind: Deployment\n", 1, true) and d:find("\n  name: backend\n", 1, true) then doc = d end
    end
    assert(doc, r.stdout)
    local path = proc.write_file(dir .. "/backend.yaml", doc)
    local dok, answer, derr = cluster:kubectl("apply", "--server-side", "--field-manager", "moonship", "--force-conflicts",
      "--dry-run=server", "-f", path, "-o", "json")
    assert(dok, derr)
    local want = json.decode(answer)
    assert.equal(live.metadata.generation + 1, want.metadata.generation)
    assert.equal("other-run", want.metadata.annotations["moonship.dev/run"])
    assert.equal(live.metadata.resourceVersion, versions("shop")["Deployment/backend"])
  end)

  it("one image changed: exit 1, '~ changed deployment/backend' with the image line", function()
    local text = proc.read_file(dir .. "/moonship.yaml"):gsub("shop%-api:1%.4%.2", "shop-api:1.5.0")
    local path = proc.write_file(dir .. "/image.yaml", text)
    local r = diff(path, "shop", "deploy")
    assert.equal(1, r.code, r.stderr)
    assert.matches("\n~ changed deployment/backend\n%-%-%- live\n%+%+%+ moonship\n@@ [^\n]+ @@\n", r.stdout)
    assert.matches("\n%-        image: ghcr%.io/example/shop%-api:1%.4%.2\n%+        image: ghcr%.io/example/shop%-api:1%.5%.0\n",
      r.stdout)
    assert.matches("\n= unchanged deployment/frontend\n", "\n" .. r.stdout)
    assert.matches("\n%+ created job/migrate%-%x+ %(reruns job/migrate%-%x+ with a changed spec%)\n", r.stdout)
  end)

  it("a Secret and a secret env variable changed: named, their values shown nowhere", function()
    local app = [[
app: vault
services:
- name: api
  image: example/api:1
  envs:
  - {key: STRIPE_KEY, value: %s, secret: true}
manifests:
- {name: db, path: db.yaml}
workflows:
- name: up
  order_from: [manifests.db, services.api]
]]
    local secret = "apiVersion: v1\nkind: Secret\nmetadata: {name: db-credentials}\ntype: Opaque\n"
      .. "stringData:\n  username: shop\n  password: %s\n"
    proc.write_file(dir .. "/vault.yaml", app:format("sk-0ld-value-1"))
    proc.write_file(dir .. "/db.yaml", secret:format("pw-0ld-value-2"))
    local code, _, stderr = events.deploy(cluster, {dir .. "/vault.yaml", "-w", "up", "-n", "vault"})
    assert.equal(0, code, stderr)
    local same = diff(dir .. "/vault.yaml", "vault", "up")
    assert.equal(0, same.code, same.stderr .. same.stdout)
    proc.write_file(dir .. "/vault.yaml", app:format("sk-n3w-value-3"))
    proc.write_file(dir .. "/db.yaml", secret:format("pw-n3w-value-4"))
    local r, doc = diff(dir .. "/vault.yaml", "vault", "up"), diff(dir .. "/vault.yaml", "vault", "up", "-o", "json")
    for _, out in ipairs {r, doc} do
      assert.equal(1, out.code, out.stderr)
      for _, value in ipairs {"sk-0ld-value-1", "pw-0ld-value-2", "sk-n3w-value-3", "pw-n3w-value-4",
                              "cHctMGxkLXZhbHVlLTI=", "cHctbjN3LXZhbHVlLTQ=", "c2hvcA=="} do
        assert.is_nil(out.stdout:find(value, 1, true), value .. " shown:\n" .. out.stdout)
      end
    end
    assert.same({"~ changed secret/db-credentials", "~ changed deployment/api"}, object_lines(r.stdout))
    -- the server keeps the values as base64 data: the keys are there, masked
    assert.matches('\n%-  password: "%*%*%* %(before%)"\n%+  password: "%*%*%* %(after%)"\n', r.stdout)
    assert.matches('\n   username: "%*%*%*"\n', r.stdout)
    assert.matches('\n         %- name: STRIPE_KEY\n%-          value: "%*%*%* %(before%)"\n', r.stdout)
  end)
end)
