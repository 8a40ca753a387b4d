-- moonship.json: exact integers, [] versus {}, nulls, errors with positions, stable output.
local json = require "moonship.json"

describe("json.decode", function()
  it("keeps integers as integers, exactly", function()
    local v = assert(json.decode(
      '{"replicas":3,"ts":1700000000123,"max":9223372036854775807,"min":-9223372036854775808,' ..
      '"odd":9007199254740993,"f":1.5,"g":3.0,"e":1e3,"huge":123456789012345678901234567890}'))
    assert.equal("integer", math.type(v.replicas))
    assert.equal(3, v.replicas)
    assert.equal(1700000000123, v.ts)
    assert.equal(math.maxinteger, v.max)
    assert.equal(math.mininteger, v.min)
    assert.equal(9007199254740993, v.odd)
    assert.equal("float", math.type(v.f))
    assert.equal("float", math.type(v.g))
    assert.equal("float", math.type(v.e))
    assert.equal("float", math.type(v.huge))
  end)

  it("reads numbers in order past strings that look like numbers", function()
    local v = assert(json.decode('[{"a-1":"-2","b":"1e5\\"3"},7,["8",9.5],-0]'))
    assert.equal(7, v[2])
    assert.equal(9.5, v[3][2])
    assert.equal("integer", math.type(v[4]))
  end)

  it("decodes null as json.null and marks arrays", function()
    local v = assert(json.decode('{"a":null,"b":[],"c":{},"d":[null,1]}'))
    assert.equal(json.null, v.a)
    assert.is_true(json.is_array(v.b))
    assert.is_false(json.is_array(v.c))
    assert.equal(2, #v.d)
    assert.equal(json.null, json.decode("null"))
    assert.equal("x", json.decode('"x"'))
    assert.equal(false, json.decode(" false "))
  end)

  it("decodes strings as bytes", function()
    assert.equal("é\n\t\"/", json.decode('"\\u00e9\\n\\t\\"\\/"'))
    assert.equal("😀", json.decode('"\\ud83d\\ude00"'))
    assert.equal("\255raw", json.decode('"\255raw"'))
    assert.equal("a\0b", json.decode('"a\\u0000b"'))
    assert.same({["k\0"] = "v\0"}, json.decode('{"k\\u0000":"v\\u0000"}'))
  end)

  it("reports errors with line:col/offset", function()
    local cases = {
      {"", "json: 1:1/0: unexpected end of input"},
      {"   ", "json: 1:4/3: unexpected end of input"},
      {"[1,2", "json: 1:5/4: unexpected end of input"},
      {'{"a": tru}', "json: 1:7/6: unexpected character 't'"},
      {"[1] x", "json: 1:5/4: unexpected character 'x'"},
      {'{\n  "a": 1,\n  "b" 2\n}', "json: 3:7/18: unexpected character '2'"},
      {"[1]\0", "json: 1:4/3: unexpected NUL byte"},
      {("["):rep(1001) .. ("]"):rep(1001), "json: 1:1001/1000: nesting too deep"},
      {"[\1]", "json: 1:2/1: unexpected control character"},
      {"[1.]", "json: 1:2/1: invalid number"},
      {"[012]", "json: 1:2/1: invalid number"},
      {"[-]", "json: 1:2/1: invalid number"},
      {"[1e+]", "json: 1:2/1: invalid number"},
      {"[\"a\nb\"]", "json: 1:4/3: control character in string"},
      {"[1 \127]", "json: 1:4/3: unexpected byte 0x7F"},
    }
    for _, c in ipairs(cases) do
      assert.same({nil, c[2], "parse"}, {json.decode(c[1])})
    end
    assert.is_not_nil(json.decode(("["):rep(1000) .. ("]"):rep(1000)))
  end)

  it("reads past the members named by drop, and only those", function()
    local text = '{"kind":"Pod","metadata":{"name":"a","managedFields":[{"manager":"x"}],' ..
      '"labels":{"managedFields":"kept: not the path"}},"items":[{"metadata":{"managedFields":1}}],' ..
      '"spec":{"only":{"x":[1,{"y":2}]}}}'
    local v = assert(json.decode(text, {drop = {"metadata.managedFields", "spec.only", "nothing.here"}}))
    assert.is_nil(v.metadata.managedFields)
    assert.equal("a", v.metadata.name)
    assert.equal("kept: not the path", v.metadata.labels.managedFields)
    assert.equal(1, v.items[1].metadata.managedFields) -- "*" is the way into an array
    local list = assert(json.decode(text, {drop = {"items.*.metadata.managedFields", "*.name", "spec.*.x.*"}}))
    assert.same({{metadata = {}}}, list.items)
    assert.is_nil(list.metadata.name)
    assert.same({}, list.spec.only.x)
    assert.same({}, v.spec)
    assert.equal('{"spec":{}}', json.encode({spec = v.spec})) -- emptied: still an object
    local whole = assert(json.decode(text))
    assert.equal("x", whole.metadata.managedFields[1].manager)
    -- a dropped value is still read: its errors are reported
    local _, err = json.decode('{"metadata":{"managedFields":[1,}}', {drop = {"metadata.managedFields"}})
    assert.equal("json: 1:33/32: unexpected character '}'", err)
  end)

  it("raises on misuse", function()
    assert.has_error(function() json.decode({}) end)
    assert.has_error(function() json.decode("{}", {dorp = {}}) end, "json.decode: unknown option 'dorp'")
    assert.has_error(function() json.decode("{}", {drop = {"a..b"}}) end)
    assert.has_error(function() json.decode("{}", {drop = {""}}) end)
    assert.has_error(function() json.decode("{}", {drop = {1}}) end)
    assert.has_error(function() json.decode("{}", {drop = "a"}) end)
    -- a raised option error leaves the decoder usable
    assert.same({a = 1}, json.decode('{"a":1,"b":2}', {drop = {"b"}}))
  end)
end)

describe("json.encode", function()
  it("round-trips Kubernetes objects", function()
    local text = '{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"annotations":{},' ..
      '"creationTimestamp":null,"generation":1700000000123,"labels":{"app":"web"},"name":"web"},' ..
      '"spec":{"replicas":3,"selector":{"matchLabels":{"app":"web"}},"template":{"spec":' ..
      '{"containers":[{"args":[],"env":[{"name":"X","value":"1"}],"image":"nginx",' ..
      '"name":"web","ports":[{"containerPort":80}],"resources":{}}],"volumes":[]}},' ..
      '"weight":0.5},"status":{}}'
    local v = assert(json.decode(text))
    assert.equal(text, json.encode(v, {sort_keys = true}))
    assert.equal(text, json.encode(assert(json.decode(json.encode(v))), {sort_keys = true}))
  end)

  it("writes integers, floats and integral floats", function()
    assert.equal("[3,-7,1.5,3,0.1,1e+300,9223372036854775807]",
      json.encode({3, -7, 1.5, 3.0, 0.1, 1e300, math.maxinteger}))
    assert.equal("1e+20", json.encode(1e20))
  end)

  it("tells [] from {} by marks", function()
    assert.equal("{}", json.encode({}))
    assert.equal("[]", json.encode(json.array()))
    assert.equal("[]", json.encode(json.array({})))
    assert.equal("{}", json.encode(json.object()))
    assert.equal('{"1":"a","2":"b"}', json.encode(json.object({"a", "b"})))
    assert.equal('["a","b"]', json.encode({"a", "b"}))
    assert.equal('{"1":"a","3":"c"}', json.encode({[1] = "a", [3] = "c"}, {sort_keys = true}))
    assert.has_error(function() json.array(setmetatable({}, {})) end,
      "json.array: the table already has a metatable")
  end)

  it("escapes strings and keeps bytes", function()
    assert.equal('"a\\"b\\\\c\\n\\t\\u0001\\u007f/é"', json.encode('a"b\\c\n\t\1\127/é'))
    assert.equal('"\\u0000x"', json.encode("\0x"))
  end)

  it("sorts keys and indents on request", function()
    local v = {b = 1, a = {d = json.array(), c = {true, json.null}}, ["10"] = 0, [2] = "two"}
    assert.equal('{"10":0,"2":"two","a":{"c":[true,null],"d":[]},"b":1}',
      json.encode(v, {sort_keys = true}))
    assert.equal('{\n  "10": 0,\n  "2": "two",\n  "a": {\n    "c": [\n      true,\n' ..
      '      null\n    ],\n    "d": []\n  },\n  "b": 1\n}',
      json.encode(v, {sort_keys = true, indent = 2}))
    assert.equal('{\n\t"a": 1\n}', json.encode({a = 1}, {indent = "\t"}))
    assert.equal('{"a":1}', json.encode({a = 1}, {indent = 0}))
  end)

  it("raises on values JSON cannot hold, naming where", function()
    local t = {a = {}}
    t.a.back = t
    local cases = {
      {{a = {b = {print}}}, "json.encode: cannot encode a function at $.a.b[1]"},
      {t, "json.encode: cannot encode a table that contains itself at $.a.back"},
      {{x = 0 / 0}, "json.encode: cannot encode NaN or infinity at $.x"},
      {{1 / 0}, "json.encode: cannot encode NaN or infinity at $[1]"},
      {{[true] = 1}, "json.encode: cannot encode a boolean key at $"},
      {coroutine.create(print), "json.encode: cannot encode a thread at $"},
    }
    for _, c in ipairs(cases) do
      assert.has_error(function() json.encode(c[1]) end, c[2])
      assert.has_error(function() json.encode(c[1], {sort_keys = true}) end, c[2])
    end
    assert.has_error(function() json.encode({}, {sorted = true}) end,
      "json.encode: unknown option 'sorted'")
    local deep = {}
    local cur = deep
    for _ = 1, 1100 do
      cur[1] = {}
      cur = cur[1]
    end
    assert.has_error(function() json.encode(deep) end)
  end)

  it("shares one null with yaml", function()
    assert.equal(require("moonship.yaml").null, json.null)
    assert.equal("null", json.encode(json.null))
    assert.equal("[null,1]", json.encode({json.null, 1}))
  end)
end)
