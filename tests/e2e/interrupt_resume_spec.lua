-- scripts/interrupt-resume with three moments (seed, wide, seed): SIGINT after the k-th JSON
-- event, then exit 130, every task's final state in the journal, the cleanup hook called, and
-- --resume completing the workflow without running again what had succeeded.
local proc = require "support.proc"

describe("scripts/interrupt-resume", function()
  it("interrupts at three moments and resumes each", function()
    local r = proc.run {proc.source_dir .. "/scripts/interrupt-resume", "--moments", "3", "--seed", "7",
                        "--services", "12"}
    assert.equal(0, r.code, r.stdout .. r.stderr)
    assert.matches("3/3 interrupted and resumed correctly", r.stdout)
  end)
end)
