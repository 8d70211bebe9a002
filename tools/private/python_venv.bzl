"""The rule set's Python: a virtualenv installed from a hashed lock file.

The virtualenv lives outside Bazel's output base, in a folder named after the
SHA-256 of the lock file and the interpreter version, so that every clone on a
machine shares one environment, a second fetch runs no pip, and editing the
lock file gives a new environment. The repository links it as `venv` and
runs it through `python`, a wrapper whose content names the environment
(version and digest) but not its folder: action keys are the same on every
machine and clone with that environment.
"""

load(":constants.bzl", "VENV_COMPLETE_MARKER", "WORKER_IMAGE_PREFIX", "WORKER_VENVS_ROOT")

_CACHE_ENV = "RULES_SSD_TFLITE_VENV_CACHE"

# numpy 2.4 and Pillow 12 in the lock need Python 3.11 or later.
_SUPPORTED_PYTHONS = ["3.11", "3.12", "3.13"]

def _run(rctx, argv, what, timeout = 600, quiet = True):
    result = rctx.execute(argv, timeout = timeout, quiet = quiet)
    if result.return_code != 0:
        fail("{} failed (exit {}):\n{}\n{}".format(what, result.return_code, result.stdout, result.stderr))
    return result.stdout.strip()

def _cache_root(rctx):
    env = rctx.os.environ
    if env.get(_CACHE_ENV):
        return env[_CACHE_ENV]
    if env.get("XDG_CACHE_HOME"):
        return env["XDG_CACHE_HOME"] + "/rules_ssd_tflite/venvs"
    if env.get("HOME"):
        return env["HOME"] + "/.cache/rules_ssd_tflite/venvs"
    fail("Cannot place the Python virtualenv: set {} (or HOME).".format(_CACHE_ENV))

def _python_venv_impl(rctx):
    python = rctx.which(rctx.attr.python_interpreter)
    if not python:
        fail("python_venv: `{}` is not on PATH; install Python {} or set python_interpreter.".format(
            rctx.attr.python_interpreter,
            " / ".join(_SUPPORTED_PYTHONS),
        ))
    version = _run(rctx, [python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"], "Probing " + str(python))
    if version not in _SUPPORTED_PYTHONS:
        fail("python_venv: {} is Python {}; TensorFlow in {} needs one of {}.".format(
            python,
            version,
            rctx.attr.requirements_lock,
            ", ".join(_SUPPORTED_PYTHONS),
        ))
    lock = rctx.path(rctx.attr.requirements_lock)
    installer = rctx.path(rctx.attr._installer)
    name = _run(rctx, [python, installer, "name", str(lock)], "Naming the environment of " + str(lock))
    root = _cache_root(rctx)
    if not rctx.path("{}/{}/{}".format(root, name, VENV_COMPLETE_MARKER)).exists:
        rctx.report_progress("Creating the Python virtualenv {}/{} from {} (pip, one time)".format(root, name, rctx.attr.requirements_lock))
    venv = _run(rctx, [python, installer, "install", str(lock), root], "Installing " + str(lock), timeout = 3600, quiet = False)
    rctx.symlink(venv, "venv")
    rctx.file("BUILD.bazel", _BUILD.format(worker_image = WORKER_IMAGE_PREFIX + name, host_platform = _host_platform()))
    rctx.file("development/BUILD.bazel", _DEVELOPMENT_BUILD)

    # The interpreter is found next to this file's real location, so its content (an action input)
    # names the environment, not where this machine keeps it: clones and machines share action keys.
    # A remote worker has no such link; its image holds the environment at WORKER_VENVS_ROOT.
    rctx.file("python", """#!/bin/sh
# The rules_ssd_tflite Python environment {name}, installed from {lock}.
local="$(dirname "$(readlink -f "$0")")/venv"
for venv in "$local" "{worker_venvs}/{name}"; do
  [ -x "$venv/bin/python3" ] && exec "$venv/bin/python3" "$@"
done
echo "rules_ssd_tflite: the Python environment {name} is neither at $local nor at {worker_venvs}/{name}." >&2
echo "Here, 'bazel sync --only=rules_ssd_tflite_python' makes it again; a remote-execution worker needs the image" >&2
echo "that tools/remote/Dockerfile builds from this {lock} ({worker_image})." >&2
exit 127
""".format(
        name = name,
        lock = rctx.attr.requirements_lock.name,
        worker_venvs = WORKER_VENVS_ROOT,
        worker_image = WORKER_IMAGE_PREFIX + name,
    ), executable = True)

_BUILD = """\
load("@rules_ssd_tflite//tools:python_toolchain.bzl", "ssd_python_toolchain")

package(default_visibility = ["//visibility:public"])

# What rules_ssd_tflite_register_toolchains() registers: our actions' Python, for our toolchain type only.
ssd_python_toolchain(
    name = "ssd_python",
    interpreter = ":python",
)

toolchain(
    name = "toolchain",
    toolchain = ":ssd_python",
    toolchain_type = "@rules_ssd_tflite//tools:python_toolchain_type",
)

# Remote execution (--config=remote_exec): actions run in the worker image that holds this
# environment (tools/remote/Dockerfile). Derive a platform from this one to name your registry's copy.
platform(
    name = "remote_platform",
    exec_properties = {{
        "OSFamily": "linux",
        "container-image": "{worker_image}",
    }},
    parents = ["{host_platform}"],
)

exports_files(["python"])
"""

# Only rules_ssd_tflite's own tests and CLIs use this package, so only they need rules_python.
_DEVELOPMENT_BUILD = """\
load("@rules_python//python:defs.bzl", "py_runtime", "py_runtime_pair")

# A Python toolchain for py_binary/py_test, registered by rules_ssd_tflite's own workspace only
# (its tests and CLIs); a host workspace keeps its own.
py_runtime(
    name = "py3_runtime",
    interpreter = "//:python",
    python_version = "PY3",
    # The launcher stub only finds and starts the interpreter; any python3 on PATH will do.
    stub_shebang = "#!/usr/bin/env python3",
)

py_runtime_pair(
    name = "runtime_pair",
    py3_runtime = ":py3_runtime",
)

toolchain(
    name = "py_toolchain",
    toolchain = ":runtime_pair",
    toolchain_type = "@bazel_tools//tools/python:toolchain_type",
)
"""

def _host_platform():
    # Bazel 7 made @local_config_platform//:host an alias of @platforms//host, which older Bazels lack.
    major = native.bazel_version.split(".")[0]
    return "@platforms//host" if major.isdigit() and int(major) >= 7 else "@local_config_platform//:host"

python_venv = repository_rule(
    implementation = _python_venv_impl,
    doc = "Installs `requirements_lock` into a shared virtualenv and declares it as the rule set's Python.",
    attrs = {
        "requirements_lock": attr.label(
            mandatory = True,
            allow_single_file = True,
            doc = "pip lock file in which every requirement carries --hash pins.",
        ),
        "python_interpreter": attr.string(
            default = "python3",
            doc = "Base interpreter, looked up on PATH, from which the virtualenv is made.",
        ),
        "_installer": attr.label(default = "//tools/private:install_venv.py"),
    },
    environ = [_CACHE_ENV, "XDG_CACHE_HOME", "HOME", "PATH"],
)
