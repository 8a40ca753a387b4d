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

local function chromium_args(dir, extra, width)
  local argv = {"timeout", "120", CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--user-data-dir=" .. dir .. "/chromium-profile", "--window-size=" .. (width or 1400) .. ",900"}
  for _, a in ipairs(extra) do argv[#argv + 1] = a end
  return argv
end

-- Where the screenshot is kept after the test: beside the binary under test (a build dir).
local function artifacts_dir()
  local dir = (proc.moonship:match("^(.*)/[^/]*$") or ".") .. "/test-artifacts"
  os.execute("mkdir -p " .. proc.quote(dir))
  return dir
end

-- Run in the page after its own script: every text of the timeline as the browser laid it out,
-- and whether any two overlap, or a text overlaps a bar that is not its own. The result goes
-- into body attributes, which --dump-dom shows.
local GEOMETRY = [[
<script>
(function () {
  var svg = document.getElementById("timeline");
  function box(el) { var r = el.getBoundingClientRect(); return {l: r.left, r: r.right, t: r.top, b: r.bottom}; }
  function hit(a, b) { return a.l < b.r - 0.5 && b.l < a.r - 0.5 && a.t < b.b - 0.5 && b.t < a.b - 0.5; }
  var texts = [], bars = [];
  svg.querySelectorAll("text").forEach(function (el) {
    var b = box(el);
    if (b.r > b.l) texts.push({el: el, b: b, name: el.textContent.split("\n")[0]});
  });
  svg.querySelectorAll(".bar rect").forEach(function (el) { bars.push({el: el, b: box(el)}); });
  var bad = [];
  for (var i = 0; i < texts.length; i++) {
    for (var j = i + 1; j < texts.length; j++) {
      if (hit(texts[i].b, texts[j].b)) bad.push(texts[i].name + " / " + texts[j].name);
    }
    bars.forEach(function (bar) {
      if (bar.el.parentNode !== texts[i].el.parentNode && hit(texts[i].b, bar.b)) bad.push(texts[i].name + " / a bar");
    });
  }
  document.body.setAttribute("data-texts", String(texts.length));
  document.body.setAttribute("data-overlaps", bad.join(" ;; "));
})();
</script>
]]

-- Loads a copy of the page with the geometry check at a window width: the number of texts
-- it measured, and the overlaps it found ("" for none).
local function overlaps(dir, page_path, width)
  local checked = page_path:gsub("%.html$", "") .. "-geometry.html"
  proc.write_file(checked, (proc.read_file(page_path):gsub("</body>", function() return GEOMETRY .. "</body>" end)))
  local dom = proc.run(chromium_args(dir, {"--dump-dom", "file://" .. checked}, width))
  assert.equal(0, dom.code, dom.stderr)
  local body = assert(dom.stdout:match("<body[^>]*>"), dom.stdout:sub(1, 400))
  return tonumber(body:match('data%-texts="(%d+)"')), body:match('data%-overlaps="([^"]*)"')
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
    assert(proc.exists(CHROMIUM), CHROMIUM .. " is missing: run `scripts/deps --browser` to install Chromium for this test")

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
    -- 'Logs of failed tasks': the job's output once, though it was streamed and then came with the failure
    local logs = page:match('<pre class="logs">(.-)</pre>')
    local _, n = logs:gsub("cannot scrub: table &lt;locked&gt;", "")
    assert.equal(1, n, logs)
    _, n = logs:gsub("scrubbing test data", "")
    assert.equal(1, n, logs)

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

    -- no text box overlaps another, nor a bar, at a wide and a narrow window
    for _, width in ipairs {1400, 800} do
      local n, found = overlaps(dir, report, width)
      assert.is_true(n >= 20, "only " .. tostring(n) .. " texts measured")
      assert.equal("", found, width .. " px")
    end

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

  it("lays out long task names, a background lane and steps a halt kept from starting without overlaps", function()
    local dir = proc.tmpdir()
    local LONG = "services.a-really-long-service-name-for-the-payments-gateway"
    local XL = "jobs.an-absurdly-long-job-name-that-no-label-column-could-hold-without-cutting-it-short"
    local plan = {{step = "prepare-the-database-and-the-caches", tasks = {LONG, XL}},
                  {step = "edge", tasks = {"services.edge"}, background = true},
                  {step = "web", tasks = {"services.web"}}, {step = "notify", tasks = {"lua.notify"}}}
    local lines = {}
    local function ev(t, fields)
      fields.t, fields.run, fields.workflow = t, "20261203-100000-aaaaaa", "deploy"
      lines[#lines + 1] = require("moonship.json").encode(fields)
    end
    ev(0, {event = "run_started", app = "long", namespace = "n", steps = 4,
           tasks = {LONG, XL, "services.edge", "services.web", "lua.notify"}, plan = plan})
    ev(0, {event = "step_started", step = plan[1].step, index = 1, tasks = plan[1].tasks})
    ev(0, {event = "task_started", step = plan[1].step, task = LONG, attempt = 1})
    ev(0, {event = "task_started", step = plan[1].step, task = XL, attempt = 1})
    ev(3, {event = "task_progress", step = plan[1].step, task = XL, attempt = 1, retry = true, message = "retrying"})
    ev(4, {event = "task_started", step = plan[1].step, task = XL, attempt = 2})
    ev(20, {event = "task_finished", step = plan[1].step, task = LONG, state = "succeeded", attempt = 1})
    ev(25, {event = "task_finished", step = plan[1].step, task = XL, state = "succeeded", attempt = 2})
    ev(25, {event = "step_finished", step = plan[1].step, index = 1, state = "succeeded"})
    ev(25, {event = "step_started", step = "edge", index = 2, background = true, tasks = {"services.edge"}})
    ev(25, {event = "task_started", step = "edge", task = "services.edge", attempt = 1})
    ev(25, {event = "step_started", step = "web", index = 3, tasks = {"services.web"}})
    ev(25, {event = "task_started", step = "web", task = "services.web", attempt = 1})
    ev(31, {event = "task_finished", step = "web", task = "services.web", state = "failed", attempt = 1, halt = true,
            message = "ProgressDeadlineExceeded", logs = {"no upstream"}})
    ev(31, {event = "run_halting", task = "services.web", cause = "halt_on_error",
            message = "services.web failed: halted by halt_on_error"})
    ev(31, {event = "task_finished", step = "edge", task = "services.edge", state = "cancelled", attempt = 1,
            message = "halted by services.web"})
    ev(31, {event = "step_finished", step = "web", index = 3, state = "failed", halt = true})
    ev(31, {event = "step_finished", step = "edge", index = 2, background = true, state = "cancelled"})
    ev(31, {event = "task_finished", step = "notify", task = "lua.notify", state = "skipped", attempt = 0,
            message = "not started: run halted"})
    ev(31.2, {event = "run_finished", state = "halted", exit_code = 1, failed = 1, halted_by = "services.web"})
    local journal = proc.write_file(dir .. "/run.jsonl", table.concat(lines, "\n") .. "\n")
    local r = proc.run {proc.moonship, "report", journal, "-o", dir .. "/long.html"}
    assert.equal(0, r.code, r.stderr)
    local page = proc.read_file(dir .. "/long.html")
    -- the step the halt kept from starting has its lane, its task drawn as not started
    assert.truthy(page:find(">4 · notify</text>", 1, true))
    assert.truthy(page:find('<g class="bar skipped" data-task="lua.notify" data-attempt="0">', 1, true))
    -- a label too long for the column is cut, and whole on hover
    assert.truthy(page:find("…<title>" .. XL .. "</title></text>", 1, true))
    for _, width in ipairs {1400, 800} do
      local n, found = overlaps(dir, dir .. "/long.html", width)
      assert.is_true(n >= 20, "only " .. tostring(n) .. " texts measured")
      assert.equal("", found, width .. " px")
    end
  end)
end)
