-- moonship.core.codec: gzip and base64 of Lua strings. Round trips keep every byte; damaged
-- input is an error tuple (nil, message, code), never a crash; misuse raises.
local codec = require("moonship.core").codec
local json = require "moonship.json"

describe("codec.gzip / gunzip", function()
  it("round-trips text, binary and empty strings", function()
    local record = json.encode({run = "20260101-120000-abcdef", steps = {{step = "deploy", tasks = {}}}})
    local bytes = {}
    for i = 0, 255 do bytes[#bytes + 1] = string.char(i) end
    for _, data in ipairs {"", "a", record, table.concat(bytes), ("moonship "):rep(100000)} do
      local z = codec.gzip(data)
      assert.equal("\31\139", z:sub(1, 2)) -- the gzip magic
      assert.equal(data, codec.gunzip(z))
    end
  end)

  it("compresses a repetitive record well, and the same input to the same bytes", function()
    local data = ("{\"kind\":\"Deployment\",\"metadata\":{\"name\":\"web\"}}"):rep(1000)
    local z = codec.gzip(data, 9)
    assert.is_true(#z < #data / 50)
    assert.equal(z, codec.gzip(data, 9))
  end)

  it("gives an error, not a crash, for damaged input", function()
    local z = codec.gzip("the objects of a run")
    local cases = {
      {"", "gunzip: unexpected end of the gzip data"},
      {z:sub(1, #z - 1), "gunzip: unexpected end of the gzip data"},
      {"{\"run\": 1}", "gunzip: incorrect header check"},
      {z .. "x", "gunzip: bytes after the end of the gzip data"},
      {z:sub(1, #z - 8) .. string.char(z:byte(#z - 7) ~ 1) .. z:sub(#z - 6), "gunzip: incorrect data check"},
    }
    for _, c in ipairs(cases) do
      local out, err, code = codec.gunzip(c[1])
      assert.is_nil(out)
      assert.equal(c[2], err)
      assert.equal("parse", code)
    end
    -- every prefix of a good member
    for n = 0, #z - 1 do
      local out, err, code = codec.gunzip(z:sub(1, n))
      assert.is_nil(out, n)
      assert.is_string(err)
      assert.equal("parse", code)
    end
  end)

  it("stops at max_bytes (a decompression bomb is refused)", function()
    local z = codec.gzip(("x"):rep(1000))
    assert.equal(1000, #codec.gunzip(z, 1000))
    local out, err, code = codec.gunzip(z, 999)
    assert.is_nil(out)
    assert.equal("gunzip: the data would decompress to more than 999 bytes", err)
    assert.equal("parse", code)
  end)

  it("raises on misuse", function()
    assert.has_error(function() codec.gzip({}) end)
    assert.has_error(function() codec.gzip("x", 10) end)
    assert.has_error(function() codec.gunzip(nil) end)
    assert.has_error(function() codec.gunzip("x", -1) end)
  end)
end)

describe("codec.base64", function()
  it("encodes and decodes as RFC 4648 says", function()
    for _, c in ipairs {{"", ""}, {"f", "Zg=="}, {"fo", "Zm8="}, {"foo", "Zm9v"}, {"foobar", "Zm9vYmFy"}} do
      assert.equal(c[2], codec.base64_encode(c[1]))
      assert.equal(c[1], codec.base64_decode(c[2]))
    end
    local z = codec.gzip("binary \0 bytes")
    assert.equal(z, codec.base64_decode(codec.base64_encode(z)))
  end)

  it("refuses what is not base64", function()
    for _, text in ipairs {"Zg", "Zg=", "Z*==", "Zg==Zg=="} do
      local out, err, code = codec.base64_decode(text)
      assert.is_nil(out)
      assert.equal("base64: not valid base64", err)
      assert.equal("parse", code)
    end
  end)

  it("is what the client sends for basic auth", function()
    local kube = require "moonship.kube"
    local dir = os.tmpname()
    os.remove(dir)
    os.execute("mkdir -p " .. dir)
    local f = assert(io.open(dir .. "/config", "w"))
    f:write([[
apiVersion: v1
kind: Config
current-context: c
clusters: [{name: k, cluster: {server: "https://127.0.0.1:6443", insecure-skip-tls-verify: true}}]
users: [{name: u, user: {username: admin, password: s3cret-pass}}]
contexts: [{name: c, context: {cluster: k, user: u}}]
]])
    f:close()
    local client = assert(kube.connect {kubeconfig = dir .. "/config"})
    local headers = {}
    assert(client:auth(headers))
    assert.equal("Basic YWRtaW46czNjcmV0LXBhc3M=", headers.Authorization)
    os.execute("rm -rf " .. dir)
  end)
end)
