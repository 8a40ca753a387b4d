-- The HTML report in a real browser: a halted deploy of the shop on kubesim writes its report
-- (deploy --report, and moonship report from the journal: the same page), headless Chromium
-- loads it, runs its script and takes a screenshot. Assertions are on what the browser computed
-- (the DOM after the script ran) and on the PNG it wrote. Chromium comes from
-- `scripts/deps --browser` (CI runs it); this spec installs nothing.
local kubesim = require "support.kubesim"
local proc = require "support.proc"

local CHROMIUM = os.getenv("MOONSHIP_CHROMIUM") or "/usr/bin/chromium"
local SHOP = proc.source_dir .. "/examples/shop/moonship.yaml"

-- scrub fails after a while and halts the run; frontend (background) is still rolling out then.
local HALTING = [[
defaults: {start_delay: 0.2, ready_delay: 0.3, duration: 1}
workloads:
  frontend: {start_delay: 1, ready_delay: 60}
  backend: {start_delay: 1, ready_delay: 10}
  "migrate-*": {duration: 8, logs: ["migrating schema to v42", "migration done"]}
  "scrub-*": {duration: 20, exit_code: 3, logs: ["scrubbing test data", "cannot scrub: table <locked> & \"busy\""]}
]]

local function chromium_args(dir, extra)
  local argv = {"timeout", "120", CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--user-data-dir=" .. dir .. "/chromium-profile", "--window-size=1400,900"}
  for _, a in ipairs(extra) do argv[#argv + 1] = a end
  return argv
end

-- Where the screenshot is kept after the test: beside the binary under test (a build dir).
local function artifacts_dir()
  local dir = (proc.moonship:match("^(.*)/[^/]*$") or ".") .. "/test-artifacts"
  os.execute("mkdir -p " .. proc.quote(dir))
  return dir
end

local function png_size(data)
  assert.equal("\137PNG\r\n\26\n", data:sub(1, 8), "not a PNG")
  assert.equal("IHDR", data:sub(13, 16))
  return string.unpack(">I4", data, 17), string.unpack(">I4", data, 21)
end

describe("the HTML report in headless Chromium", function()
  local sim
  after_each(function() if sim then sim:stop() sim = nil end end)

  it("shows the halt point and the cancelled tasks of a halted run", function()
    local f = io.open(CHROMIUM)
    assert(f, CHROMIUM .. " is missing: run `scripts/deps --browser` to install Chromium for this test")
    f:close()

    sim = kubesim.start {scenario = HALTING, time_scale = 0.05}
    local dir = proc.tmpdir()
    local template = proc.write_file(dir .. "/moonship.yaml", proc.read_file(SHOP))
    local report = dir .. "/report.html"
    local r = proc.run {proc.moonship, "deploy", template, "-w", "deploy", "-o", "json", "--kubeconfig", sim.kubeconfig,
                        "--report", report}
    assert.equal(1, r.code, r.stderr)

    -- the same page from the journal afterwards
    local journal = io.popen("ls " .. proc.quote(dir) .. "/.moonship/runs/*.jsonl"):read("l")
    assert.truthy(journal, "no journal written")
    local again = proc.run {proc.moonship, "report", journal, "-o", dir .. "/again.html"}
    assert.equal(0, again.code, again.stderr)
    local page = proc.read_file(report)
    assert.equal(page, proc.read_file(dir .. "/again.html"))
    assert.truthy(page:find("cannot scrub: table &lt;locked&gt; &amp; &quot;busy&quot;", 1, true))

    -- the DOM after the page's script ran
    local dom = proc.run(chromium_args(dir, {"--dump-dom", "file://" .. report}))
    assert.equal(0, dom.code, dom.stderr)
    local body = dom.stdout:match("<body[^>]*>")
    assert.truthy(body, "no body in the dumped DOM: " .. dom.stdout:sub(1, 400))
    assert.truthy(body:find('data-rendered="true"', 1, true), body)
    assert.truthy(body:find('data-state="halted"', 1, true), body)
    assert.truthy(body:find('data-halt-task="jobs.scrub"', 1, true), body)
    assert.truthy(body:find('data-cancelled="services.frontend"', 1, true), body)
    assert.truthy(dom.stdout:find('<g id="halt%-marker" class="halt" data%-task="jobs%.scrub" data%-t="[%d.]+" data%-marked="true">'))
    assert.truthy(dom.stdout:find('<tr data%-task="services%.frontend" data%-state="cancelled" data%-marked="cancelled">'))
    local verdict = dom.stdout:match('<p id="verdict">(.-)</p>')
    assert.truthy(verdict)
    assert.truthy(verdict:find("^Halted at [%d.]+s: jobs%.scrub failed %(halt_on_error%)%."), verdict)
    assert.truthy(verdict:find("1 cancelled: services.frontend.", 1, true), verdict)
    assert.truthy(verdict:find("1 not run: services.backend.", 1, true), verdict)

    -- the screenshot
    local png = artifacts_dir() .. "/report-halted.png"
    os.remove(png)
    local shot = proc.run(chromium_args(dir, {"--screenshot=" .. png, "file://" .. report}))
    assert.equal(0, shot.code, shot.stderr)
    local data = proc.read_file(png)
    local w, h = png_size(data)
    assert.same({1400, 900}, {w, h})
    assert.is_true(#data > 30000, "the screenshot is nearly empty (" .. #data .. " bytes)")
    print("report screenshot: " .. png)
  end)
end)
