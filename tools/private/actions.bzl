"""Running tools in actions: our Python tools or a plugged executable, without flooding the build log."""

load(":python_toolchain.bzl", "SsdPythonToolInfo", "python_tool_command")

# TensorFlow logs a lot, even on success; show a tool's output only when it fails.
_QUIETLY = """quietly() {
  log="$(mktemp)"
  if "$@" >"$log" 2>&1; then rm -f "$log"; else status=$?; cat "$log" >&2; rm -f "$log"; return $status; fi
}
"""

def run_quietly(ctx, command, **kwargs):
    """ctx.actions.run_shell whose `command` may call `quietly TOOL ARGS...`."""
    ctx.actions.run_shell(command = _QUIETLY + command, **kwargs)

def tool_invocation(ctx, target):
    """How an action runs `target`: one of our Python tools (SsdPythonToolInfo) or any executable.

    Args:
      ctx: the rule context (its rule declares the Python toolchain type).
      target: the tool's Target.

    Returns:
      struct(argv, inputs, tools): the command's first words, and what the action needs for them.
    """
    if SsdPythonToolInfo in target:
        command = python_tool_command(ctx, target[SsdPythonToolInfo])
        return struct(argv = [command.executable.path] + command.arguments, inputs = command.inputs, tools = [])
    files_to_run = target[DefaultInfo].files_to_run
    if not files_to_run or not files_to_run.executable:
        fail("{} is neither an executable nor a rules_ssd_tflite Python tool".format(target.label))
    return struct(argv = [files_to_run.executable.path], inputs = depset(), tools = [files_to_run])

def run_tool(ctx, tool, args, inputs, **kwargs):
    """Runs `tool` (see tool_invocation) with `args`, showing its output only when it fails.

    Args:
      ctx: the rule context.
      tool: the tool's Target.
      args: its arguments (ctx.actions.args()).
      inputs: list of File it reads.
      **kwargs: outputs, mnemonic, progress_message, ... of ctx.actions.run_shell.
    """
    invocation = tool_invocation(ctx, tool)
    run_quietly(
        ctx,
        command = 'quietly "$@"',
        arguments = invocation.argv + [args],
        tools = invocation.tools,
        inputs = depset(inputs, transitive = [invocation.inputs]),
        **kwargs
    )
