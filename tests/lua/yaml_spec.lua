-- moonship.yaml: loading with positions, nulls, merges, errors, dump round trips, and our
-- templates in ReleaseHub's format (tests/fixtures/templates; the public corpus of real ones is
-- tests/lua/compat_releasehub_spec.lua's).
local yaml = require "moonship.yaml"
local json = require "moonship.json"
local proc = require "support.proc"

local TEMPLATES = "tests/fixtures/templates"

-- Every YAML file under tests/fixtures/templates: ReleaseHub-format, malformed and doubtful.
local function fixture_files()
  local files = {}
  local p = assert(io.popen("find " .. TEMPLATES .. " -name '*.yaml' | sort"))
  for path in p:lines() do files[#files + 1] = path end
  p:close()
  return files
end

local function load1(text, opts)
  local docs, err = yaml.load(text, opts)
  assert(docs, err)
  return docs[1]
end

local same = require("support.values").same

local function roundtrip(value)
  local text = yaml.dump(value)
  local back, err = yaml.load(text)
  assert(back, (err or "") .. "\n" .. text)
  assert(same(back[1], value), "round trip changed the value:\n" .. text)
  return text
end

describe("yaml.load", function()
  it("returns the documents of a stream", function()
    local docs = assert(yaml.load("a: 1\n---\n- x\n---\n"))
    assert.equal(3, #docs)
    assert.equal(1, docs[1].a)
    assert.equal("x", docs[2][1])
    assert.equal(yaml.null, docs[3])
    assert.same({}, assert(yaml.load("")))
  end)

  it("resolves scalars like Kubernetes users expect", function()
    local d = load1("int: 3\nbig: 1700000000123\nhex: 0x1f\nmode: 0644\nf: 1.5\n" ..
      "t: True\nyes: yes\noff: off\ns: '3'\nn: ~\ne:\ntagged: !!str 12\nver: 1.10\n")
    assert.equal("integer", math.type(d.int))
    assert.equal(3, d.int)
    assert.equal(1700000000123, d.big)
    assert.equal(31, d.hex)
    assert.equal(420, d.mode)
    assert.equal(1.5, d.f)
    assert.is_true(d.t)
    assert.equal("yes", d.yes)
    assert.equal("off", d.off)
    assert.equal("3", d.s)
    assert.equal(yaml.null, d.n)
    assert.equal(yaml.null, d.e)
    assert.equal("12", d.tagged)
    assert.equal(1.1, d.ver)
  end)

  it("keeps nulls in sequences so their length holds", function()
    local d = load1("- 1\n- ~\n-\n- 4\n")
    assert.equal(4, #d)
    assert.equal(yaml.null, d[2])
    assert.equal(yaml.null, d[3])
    assert.equal(json.null, yaml.null)
  end)

  it("expands aliases into separate tables and merges '<<' keys", function()
    local d = load1("base: &b\n  image: nginx\n  replicas: 2\n" ..
      "web:\n  <<: *b\n  replicas: 3\nlist: [*b, *b]\n" ..
      "multi:\n  <<: [{a: 1}, {a: 2, b: 2}]\n")
    assert.equal("nginx", d.web.image)
    assert.equal(3, d.web.replicas)
    assert.is_nil(d.web["<<"])
    assert.are_not.equal(d.list[1], d.list[2])
    d.list[1].image = "changed"
    assert.equal("nginx", d.list[2].image)
    assert.same({a = 1, b = 2}, d.multi)
  end)

  it("marks sequences as arrays and empty mappings as objects", function()
    local d = load1("a: []\nb: {}\nc: [1]\n")
    assert.is_true(json.is_array(d.a))
    assert.is_false(json.is_array(d.b))
    assert.equal('{"a":[],"b":{},"c":[1]}', json.encode(d, {sort_keys = true}))
  end)

  it("keeps mapping keys as strings", function()
    local d = load1("80: http\ntrue: yes\n~: n\n")
    assert.equal("http", d["80"])
    assert.equal("yes", d["true"])
    assert.equal("n", d["~"])
  end)

  it("reports errors as file:line:col: message", function()
    local cases = {
      {"a: b: c", "app.yaml:1:5: mapping values are not allowed in this context; "
       .. "a value with ': ' in it must be quoted (a: \"b: c\")"},
      {"app: x\nservices:\n  - name: a\n    name: b\n",
       "app.yaml:4:5: duplicate key 'name' (first at 3:5)"},
      {"a: *missing", "app.yaml:1:4: undefined alias 'missing'"},
      {"a:\n\t- b", "app.yaml:2:1: found character that cannot start any token " ..
       "(while scanning for the next token started at 2:1); YAML indents with spaces: this line has a tab"},
      {"a: !!int x", "app.yaml:1:4: invalid !!int value 'x'"},
      {"a: [1", "app.yaml:2:1: did not find expected ',' or ']' " ..
       "(while parsing a flow sequence started at 1:4); the list opened at 1:4 is not closed: ']' is missing, "
       .. "or a ',' between two of its values"},
    }
    for _, c in ipairs(cases) do
      assert.same({nil, c[2], "parse"}, {yaml.load(c[1], {filename = "app.yaml"})})
    end
    local _, err = yaml.load("a: b: c")
    assert.equal("<string>:1:5: mapping values are not allowed in this context; "
      .. "a value with ': ' in it must be quoted (a: \"b: c\")", err)
  end)

  it("adds a one-line hint for the common causes of a syntax error", function()
    local cases = {
      -- an unquoted ': ' in a value
      {"services:\n- name: web\n  command: echo a: b\n",
       "3:18: mapping values are not allowed in this context; a value with ': ' in it must be quoted "
       .. "(command: \"echo a: b\")"},
      -- a missing space after ':'
      {"app: shop\nimage:nginx\nname: x\n",
       "3:1: could not find expected ':' (while scanning a simple key started at 2:1); line 2 has 'image:nginx': "
       .. "a key needs a space after its ':' (image: nginx)"},
      {"services:\n- name:web\n  image: x\n",
       "3:8: mapping values are not allowed in this context; line 2 has 'name:web': a key needs a space after its "
       .. "':' (name: web)"},
      -- indentation
      {"services:\n- name: web\n   image: x\n",
       "3:9: mapping values are not allowed in this context; this line is indented more than the keys beside it: "
       .. "the keys of one mapping line up"},
      {"services:\n  - name: web\n    image: x\n   ports: []\n",
       "4:4: did not find expected '-' indicator (while parsing a block collection started at 2:3); the items of "
       .. "the list at 2:3 each start with '- ' at the same indentation; this line does not"},
      {"services:\n  - name: web\n - name: api\n",
       "3:2: did not find expected key (while parsing a block mapping started at 1:1); a list item where a key was "
       .. "expected: indent the list under its key, and its items alike"},
      {"app: shop\n  domain: x\n", "2:9: mapping values are not allowed in this context; this line is indented "
       .. "more than the keys beside it: the keys of one mapping line up"},
      -- an alias name YAML does not allow, named
      {"a: *company-data-covered*\n",
       "1:25: did not find expected alphabetic or numeric character (while scanning an alias started at 1:4); "
       .. "'*company-data-covered*' reads as an alias ('*' starts one, and its name may have only letters, digits, "
       .. "'-' and '_'): quote the value if it is text (\"*company-data-covered*\")"},
      -- characters that cannot start a value, quotes, lists, template expressions
      {"a: @foo\n", "1:4: found character that cannot start any token (while scanning for the next token started "
       .. "at 1:4); '@' cannot start a plain value: quote it (\"@foo\")"},
      {"a: \"foo\nb: 1\n", "3:1: found unexpected end of stream (while scanning a quoted scalar started at 1:4); "
       .. "the quote opened at 1:4 is never closed"},
      {"a: - b\n", "1:4: block sequence entries are not allowed in this context; a list after a key goes on the "
       .. "lines below it, each '- ' indented (or on one line: [a, b])"},
      {"image: {{ .Values.image }}\n", "1:9: mapping keys must be scalars; '{{' starts a mapping in YAML: quote a "
       .. "template expression (\"{{ .Values.image }}\")"},
    }
    for _, c in ipairs(cases) do
      assert.same({nil, "app.yaml:" .. c[2], "parse"}, {yaml.load(c[1], {filename = "app.yaml"})}, c[1])
    end
  end)

  it("refuses alias bombs", function()
    local lines = {"a: &a [x, x, x, x, x, x, x, x, x, x]"}
    for i = 2, 9 do
      local prev, cur = string.char(96 + i - 1), string.char(96 + i)
      lines[i] = ("%s: &%s [%s]"):format(cur, cur, ("*" .. prev .. ", "):rep(9) .. "*" .. prev)
    end
    local docs, err = yaml.load(table.concat(lines, "\n"))
    assert.is_nil(docs)
    assert.matches("^<string>:6:%d+: document too large: more than 1000000 nodes", err)
    local _, err2, code = yaml.load("a: &a [1, 2]\nb: [*a, *a, *a]", {max_nodes = 8})
    assert.matches("more than 8 nodes", err2)
    assert.equal("parse", code)
  end)

  it("raises on misuse", function()
    assert.has_error(function() yaml.load(nil) end)
    assert.has_error(function() yaml.load("a: 1", {filname = "x"}) end,
      "yaml.load: unknown option 'filname'")
    assert.has_error(function() yaml.load("a: 1", {max_depth = 0}) end)
  end)

  it("loads files and names them in errors", function()
    local path = proc.write_file(os.tmpname(), "x: 1\nx: 2\n")
    local loaded = {yaml.load_file(path)}
    os.remove(path)
    assert.same({nil, path .. ":2:1: duplicate key 'x' (first at 1:1)", "parse"}, loaded)
    local none, err2, code = yaml.load_file("/nonexistent/app.yaml")
    assert.is_nil(none)
    assert.matches("^/nonexistent/app.yaml: No such file", err2)
    assert.equal("io", code)
  end)
end)

describe("yaml.where", function()
  local text = "# header\napp: web\nservices:\n  - name: api\n    ports: [80, 443]\n" ..
    "  - {name: db}\n---\nkind: Service\n"
  local docs = assert(yaml.load(text, {filename = "t.yaml"}))
  local app = docs[1]

  it("gives the position of keys, items and tables", function()
    assert.same({"t.yaml", 2, 1}, {yaml.where(app, "app")})
    assert.same({"t.yaml", 3, 1}, {yaml.where(app, "services")})
    assert.same({"t.yaml", 4, 5}, {yaml.where(app.services, 1)})
    assert.same({"t.yaml", 6, 5}, {yaml.where(app.services, 2)})
    assert.same({"t.yaml", 4, 5}, {yaml.where(app.services[1], "name")})
    assert.same({"t.yaml", 5, 17}, {yaml.where(app.services[1].ports, 2)})
    assert.same({"t.yaml", 6, 6}, {yaml.where(app.services[2], "name")})
    assert.same({"t.yaml", 4, 5}, {yaml.where(app.services[1])})
    assert.same({"t.yaml", 8, 1}, {yaml.where(docs, 2)})
    assert.same({"t.yaml", 2, 1}, {yaml.where(app)})
  end)

  it("gives nothing for unknown keys and foreign tables", function()
    assert.is_nil(yaml.where(app, "nope"))
    assert.is_nil(yaml.where({}))
    assert.has_error(function() yaml.where("x") end)
  end)

  it("keeps positions weakly", function()
    local side = debug.getregistry()["moonship.yaml.where"]
    local function count()
      collectgarbage()
      collectgarbage()
      local n = 0
      for _ in pairs(side) do n = n + 1 end
      return n
    end
    local before = count()
    local t = load1("a: {b: [1, 2]}")
    assert.is_not_nil(yaml.where(t.a.b, 2))
    assert.equal(before + 3, count()) -- t, t.a, t.a.b (the documents list is gone)
    t = nil
    assert.equal(before, count())
    assert.is_nil(getmetatable(side).__gc)
  end)

  it("gives merged keys the position they were written at", function()
    local d = load1("b: &b {x: 1}\nc:\n  <<: *b\n  y: 2\n")
    assert.same({"<string>", 1, 8}, {yaml.where(d.c, "x")})
    assert.same({"<string>", 4, 3}, {yaml.where(d.c, "y")})
  end)
end)

describe("yaml.dump", function()
  it("writes Kubernetes-style block YAML with stable key order", function()
    local text = yaml.dump({
      apiVersion = "apps/v1", kind = "Deployment",
      metadata = {name = "web", labels = {app = "web"}},
      spec = {replicas = 3, template = {spec = {containers = {
        {name = "web", image = "nginx:1.25", args = {"--port=80", "-v"}, env = json.array()},
      }}}},
    })
    assert.equal([[
apiVersion: apps/v1
kind: Deployment
metadata:
  labels:
    app: web
  name: web
spec:
  replicas: 3
  template:
    spec:
      containers:
      - args:
        - --port=80
        - -v
        env: []
        image: nginx:1.25
        name: web
]], text)
  end)

  it("keeps the order of loaded mappings", function()
    local src = "kind: Service\napiVersion: v1\nmetadata:\n  name: x\n  namespace: y\n"
    assert.equal(src, yaml.dump(load1(src)))
  end)

  it("quotes strings that would read back as something else", function()
    assert.equal('"123"\n', yaml.dump("123"))
    assert.equal('"true"\n', yaml.dump("true"))
    assert.equal('"null"\n', yaml.dump("null"))
    assert.equal('""\n', yaml.dump(""))
    assert.equal('"0644"\n', yaml.dump("0644"))
    assert.equal('"- a"\n', yaml.dump("- a"))
    assert.equal('"a: b"\n', yaml.dump("a: b"))
    assert.equal("yes\n", yaml.dump("yes"))
    assert.equal("3.0\n", yaml.dump(3.0))
    assert.equal("null\n", yaml.dump(yaml.null))
    assert.equal("|-\n  line one\n  line two\n", yaml.dump("line one\nline two"))
  end)

  it("round-trips what it loads", function()
    local values = {
      {a = 1, b = -2.5, c = "x", d = true, e = yaml.null, f = json.array(), g = {}},
      {"", " lead", "trail ", "#x", "a #b", "x:", "- y", "---", "...", "'q'", '"dq"',
       "tab\there", "nl\n", "two\n\n", "\nfirst empty", "  indented\nx", "a\r\nb",
       "ctrl\1\127", "é ü 日本", "nel\194\133x", "ls\226\128\168x", "bom\239\187\191", "c1\194\145", "fffe\239\191\190", "nbsp\194\160",
       "0x10", "1e3", ".inf", "~", "Null", "True", "on", "1_000", "@at", "%pct", "`tick",
       "{x}", "[y]", "a,b", "!tag", "&anc", "*ali", "|pipe", ">fold", "?q", "-", "-1", "+1",
       "   ", "\n", "\n\n", "<<", "a\n \nb", "trailing space \nx"},
      {1, 0, -1, 9223372036854775807, math.mininteger, 1.5, -0.25, 1e300, 1/0, -1/0,
       0.1, 2^53, 3.0},
      {nested = {{{}}, {json.array()}, {{a = {b = {c = {"deep"}}}}}}},
      {["key with: colon"] = 1, ["123"] = 2, ["multi\nline"] = 3, [""] = 4, ["- dash"] = 5},
      {[("k"):rep(1500)] = {("v"):rep(1500), {[("\1"):rep(300)] = {x = {1}}}}, short = 1},
      {script = "#!/bin/sh\nset -e\necho hi\n", cfg = "a: 1\nb:\n  - 2\n"},
    }
    for _, v in ipairs(values) do
      roundtrip(v)
    end
    for _, s in ipairs(values[2]) do
      roundtrip(s)
      roundtrip({k = s})
      roundtrip({s})
    end
  end)

  it("round-trips dump(load(x)) for every template fixture that loads", function()
    local n = 0
    for _, path in ipairs(fixture_files()) do
      local docs = yaml.load_file(path)
      if docs then
        for _, doc in ipairs(docs) do
          roundtrip(doc)
        end
        local again = assert(yaml.load(yaml.dump_all(docs)))
        assert.equal(#docs, #again)
        n = n + 1
      end
    end
    assert.is_true(n >= 80, n .. " fixtures loaded")
  end)

  it("raises on values YAML cannot hold", function()
    assert.has_error(function() yaml.dump({f = print}) end, "yaml.dump: cannot dump a function")
    local t = {}
    t.self = t
    assert.has_error(function() yaml.dump(t) end,
      "yaml.dump: cannot dump a table that contains itself")
    assert.has_error(function() yaml.dump({[true] = 1}) end,
      "yaml.dump: cannot dump a boolean key")
  end)
end)

describe("templates in ReleaseHub's format", function()
  local dir = TEMPLATES .. "/releasehub-format/"

  it("give values and positions", function()
    local path = dir .. "storefront/application_template.yaml"
    local app = assert(yaml.load_file(path))[1]
    assert.is_true(app.auto_deploy)
    assert.equal("shop.example.test", app.domain)
    assert.equal(1, app.resources.replicas)
    assert.equal("256Mi", app.resources.memory.requests)
    assert.equal("db", app.services[1].name)
    assert.equal("6379", app.services[2].ports[1].port)
    assert.equal(5432, app.services[1].ports[1].port)
    assert.equal(2, app.environment_templates[2].resources.replicas)
    assert.same({path, 8, 1}, {yaml.where(app, "repo_name")})
    assert.same({path, 31, 3}, {yaml.where(app.services, 1)})
    assert.same({path, 33, 3}, {yaml.where(app.services[1], "has_repo")})
    assert.same({path, 136, 13}, {yaml.where(app.workflows[1].parallelize[1].tasks, 1)})
    assert.same({path, 136, 26}, {yaml.where(app.workflows[1].parallelize[1].tasks, 2)})
  end)

  it("expand an anchor into a copy at each alias, with the anchor's positions", function()
    local path = dir .. "batch-jobs/application_template.yaml"
    local app = assert(yaml.load_file(path))[1]
    local worker, report = app.services[1].node_selector, app.jobs[3].node_selector
    assert.same({{key = "workload", value = "batch"}}, worker)
    assert.same(worker, report)
    assert.are_not.equal(worker, report)
    assert.same({path, 17, 5}, {yaml.where(report[1], "key")})
    assert.is_nil(app.app)
    assert.equal(12, app.jobs[3].env.PAGES)
  end)
end)
