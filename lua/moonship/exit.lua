-- The exit codes of moonship (DESIGN.md §3), one table for every command.
return {
  ok = 0,                -- everything succeeded (ignored failures that recovered count)
  halted = 1,            -- a halt_on_error failure stopped the run
  failed = 1,            -- a script raised an error (`moonship run`)
  differences = 1,       -- `moonship diff`: a deploy would change something (as kubectl diff)
  bad_input = 2,         -- bad input: nothing was deployed
  ignored_failures = 3,  -- finished, with ignored failures that did not recover
  interrupted = 130,     -- Ctrl-C / SIGTERM: cleanups ran
}
