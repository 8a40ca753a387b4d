-- Hooks for the gadgets example: retry, error policy, cleanup, a custom task kind and a
-- readiness rule for a custom resource. Every field is optional; see README "Hooks".
return {
  -- Jobs get two more tries, 1 s then 2 s apart; everything else gives up at once.
  retry = function(ctx, task, err, attempt)
    if task.kind == "jobs" and attempt < 3 then
      ctx.log("attempt %d of %s failed (%s); retrying", attempt, task.id, err)
      return 2 ^ (attempt - 1)
    end
  end,

  -- A custom resource that fails to become healthy stops the whole deployment; other failures
  -- keep the template's policy (ignored unless halt_on_error).
  on_error = function(ctx, task, err)
    if task.kind == "manifests" then return "halt" end
  end,

  -- After a halt or Ctrl-C: say what this run started, so nothing is left in an unknown state.
  cleanup = function(ctx, run, reason)
    ctx.log("run %s %s; it started:", run.run_id, reason)
    for _, t in ipairs(run.started) do
      ctx.log("  %s (%s)", t.id, t.state)
    end
  end,

  -- lua.<name> tasks: record the deployment in a ConfigMap (a stand-in for a chat message).
  tasks = {
    lua = function(ctx, name, spec)
      local cm, err = ctx.kube:apply {
        apiVersion = "v1", kind = "ConfigMap",
        metadata = {name = "gadgets-" .. name, namespace = ctx.namespace},
        data = {run = ctx.run_id, workflow = ctx.workflow, env = ctx.env or "local"},
      }
      if not cm then return nil, err end
      ctx.log("%s: recorded run %s in configmap/%s", name, ctx.run_id, cm.metadata.name)
      return true
    end,
  },

  -- A Widget is healthy once it has all its parts.
  health = {
    ["example.com/Widget"] = function(obj)
      local parts = obj.spec and obj.spec.parts or {}
      local size = obj.spec and obj.spec.size or 0
      if #parts >= size then return "healthy", ("%d of %d parts"):format(#parts, size) end
      return "degraded", ("only %d of %d parts"):format(#parts, size)
    end,
  },
}
