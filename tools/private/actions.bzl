"""Running tools in actions: our Python tools (as persistent workers) or a plugged executable."""

load("//tools:python_toolchain.bzl", "SsdPythonToolInfo", "python_tool_command")

def run_tool(ctx, tool, args, inputs, outputs, mnemonic, progress_message):
    """Runs `tool` with `args` in one ctx.actions.run, so that `bazel aquery` shows every flag.

    Our Python tools (SsdPythonToolInfo) run on the rule set's Python
    toolchain. They take their flags from a params file (which
    `bazel aquery --include_param_files` shows), print output only when they
    fail, and serve as persistent workers: one process per mnemonic imports
    TensorFlow once for many actions. `--strategy=<mnemonic>=sandboxed` (or
    `local`, `remote`) runs them one process per action instead, with the
    same outputs and messages. Any other executable (e.g. a TensorFlow source
    tree's toco) gets the flags on its command line.

    Args:
      ctx: the rule context; its rule declares the Python toolchain type.
      tool: the tool's Target.
      args: its flags (ctx.actions.args()).
      inputs: depset of File it reads.
      outputs: list of File it writes.
      mnemonic: the action's mnemonic.
      progress_message: shown while it runs.
    """
    if SsdPythonToolInfo in tool:
        command = python_tool_command(ctx, tool[SsdPythonToolInfo])
        args.use_param_file("@%s", use_always = True)

        # Shell-quoted, so that an argument may hold line breaks or start like a flag: a persistent
        # worker gets the file's lines (Bazel splits it), the tools decode both with shlex (cli.py).
        args.set_param_file_format("shell")
        ctx.actions.run(
            executable = command.executable,
            arguments = command.arguments + [args],
            inputs = inputs,
            # As tools, the interpreter and sources key the persistent workers: editing them starts new ones.
            tools = command.inputs,
            outputs = outputs,
            mnemonic = mnemonic,
            progress_message = progress_message,
            execution_requirements = {"supports-workers": "1"},
        )
        return
    files_to_run = tool[DefaultInfo].files_to_run
    if not files_to_run or not files_to_run.executable:
        fail("{} is neither an executable nor a rules_ssd_tflite Python tool".format(tool.label))
    ctx.actions.run(
        executable = files_to_run,
        arguments = [args],
        inputs = inputs,
        outputs = outputs,
        mnemonic = mnemonic,
        progress_message = progress_message,
    )

def check_param_file_lines(tool, attr_name, values):
    """Refuses arguments that a params file cannot carry to our tools as persistent workers.

    Bazel reads a worker's params file line by line and takes every line that
    starts with `@` for another params file, so an argument that starts with
    `@`, or holds a line break followed by `@`, would never reach the tool.

    Args:
      tool: the tool's Target; other executables get their flags on the command line.
      attr_name: the attribute the values come from, named in the error.
      values: its strings.
    """
    if SsdPythonToolInfo not in tool:
        return
    for value in values:
        if value.startswith("@") or "\n@" in value or "\r@" in value:
            fail("{}: a line may not start with '@' (Bazel would read it as a params file): {}".format(attr_name, repr(value)), attr = attr_name)
