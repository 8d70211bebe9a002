"""The Python that runs this rule set's own tools, resolved through a toolchain type of its own.

Python toolchains (`@bazel_tools//tools/python:toolchain_type`) are global to a
workspace: registering ours would hand a host's py_binary targets our
TensorFlow environment, and a host's registered first would run our tools
without TensorFlow. So our actions resolve `//tools:python_toolchain_type`
instead, which only this rule set uses, and run our tools' scripts with its
interpreter. The host's Python is left alone either way.
"""

SsdPythonInfo = provider(
    doc = "The interpreter that runs the rule set's Python tools, with their packages installed.",
    fields = {
        "interpreter": "File: an executable that runs like `python3`.",
        "files": "depset of File: what the interpreter needs as action inputs.",
    },
)

PYTHON_TOOLCHAIN_TYPE = "@rules_ssd_tflite//tools:python_toolchain_type"

def _ssd_python_toolchain_impl(ctx):
    return [platform_common.ToolchainInfo(python = SsdPythonInfo(
        interpreter = ctx.file.interpreter,
        files = depset([ctx.file.interpreter], transitive = [depset(ctx.files.files)]),
    ))]

ssd_python_toolchain = rule(
    implementation = _ssd_python_toolchain_impl,
    doc = "Declares the interpreter of a `//tools:python_toolchain_type` toolchain.",
    attrs = {
        "interpreter": attr.label(mandatory = True, allow_single_file = True, doc = "Runs like `python3`."),
        "files": attr.label_list(allow_files = True, doc = "Further files the interpreter needs at run time."),
    },
)

SsdPythonLibraryInfo = provider(
    doc = "Python modules of this rule set and, transitively, the modules they import.",
    fields = {"sources": "depset of File: the modules and everything they import."},
)

def _sources(srcs, deps):
    return depset(srcs, transitive = [dep[SsdPythonLibraryInfo].sources for dep in deps])

def _ssd_python_library_impl(ctx):
    sources = _sources(ctx.files.srcs, ctx.attr.deps)
    return [SsdPythonLibraryInfo(sources = sources), DefaultInfo(files = sources)]

ssd_python_library = rule(
    implementation = _ssd_python_library_impl,
    doc = """Modules of this rule set's Python tools, with the modules they import as deps.

Each tool's action inputs are then exactly the modules it imports, so that an
edit to a module re-runs only the actions of the tools that import it.
//tests:python_deps_test checks that deps match the imports.""",
    attrs = {
        "srcs": attr.label_list(allow_files = [".py"], doc = "The modules."),
        "deps": attr.label_list(providers = [SsdPythonLibraryInfo], doc = "The libraries they import."),
    },
    provides = [SsdPythonLibraryInfo],
)

SsdPythonToolInfo = provider(
    doc = "A Python tool of this rule set: a script and the sources it imports.",
    fields = {
        "main": "File: the script to run.",
        "sources": "depset of File: the modules it imports (found through the script's folder on sys.path).",
    },
)

def _ssd_python_tool_impl(ctx):
    sources = _sources([], ctx.attr.deps)
    return [
        SsdPythonToolInfo(main = ctx.file.main, sources = sources),
        DefaultInfo(files = depset([ctx.file.main], transitive = [sources])),
    ]

ssd_python_tool = rule(
    implementation = _ssd_python_tool_impl,
    doc = "A script of this rule set that actions run with the `//tools:python_toolchain_type` interpreter.",
    attrs = {
        "main": attr.label(mandatory = True, allow_single_file = [".py"], doc = "The script."),
        "deps": attr.label_list(
            providers = [SsdPythonLibraryInfo],
            doc = "The libraries (`ssd_python_library`) it imports, below the script's folder.",
        ),
    },
    provides = [SsdPythonToolInfo],
)

def python_tool_command(ctx, tool):
    """How to run `tool` (SsdPythonToolInfo) in an action of `ctx`.

    Args:
      ctx: the rule context; its rule must declare PYTHON_TOOLCHAIN_TYPE.
      tool: SsdPythonToolInfo of the tool.

    Returns:
      struct(executable, arguments, inputs): the interpreter to run, the
      script (exec-root relative: no machine path enters the action key) as
      its first argument, and every file it needs.
    """
    python = ctx.toolchains[PYTHON_TOOLCHAIN_TYPE].python
    return struct(
        executable = python.interpreter,
        arguments = [tool.main.path],
        inputs = depset([tool.main], transitive = [tool.sources, python.files]),
    )
