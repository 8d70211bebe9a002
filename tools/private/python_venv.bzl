"""A Python toolchain backed by a virtualenv installed from a hashed lock file.

The virtualenv lives outside Bazel's output base, in a folder named after the
SHA-256 of the lock file and the interpreter version, so that every clone on a
machine shares one environment (and one set of action keys), a second fetch
runs no pip, and editing the lock file gives a new environment.
"""

_CACHE_ENV = "RULES_SSD_TFLITE_VENV_CACHE"
_SUPPORTED_PYTHONS = ["3.10", "3.11", "3.12", "3.13"]

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
    digest = _run(rctx, [
        python,
        "-c",
        "import hashlib, sys; print(hashlib.sha256(open(sys.argv[1], 'rb').read() + sys.argv[2].encode()).hexdigest()[:24])",
        str(lock),
        version,
    ], "Hashing " + str(lock))
    venv = "{}/py{}-{}".format(_cache_root(rctx), version, digest)
    marker = rctx.path(venv + "/.rules_ssd_tflite_complete")
    if not marker.exists:
        rctx.report_progress("Creating the Python {} virtualenv {} from {} (pip, one time)".format(version, venv, rctx.attr.requirements_lock))
        _run(rctx, [python, rctx.path(rctx.attr._installer), str(lock), venv], "Installing " + str(lock), timeout = 3600, quiet = False)
    rctx.file("BUILD.bazel", """\
load("@bazel_tools//tools/python:toolchain.bzl", "py_runtime_pair")

package(default_visibility = ["//visibility:public"])

py_runtime(
    name = "py3_runtime",
    interpreter_path = "{python}",
    python_version = "PY3",
    stub_shebang = "#!{python}",
)

py_runtime_pair(
    name = "runtime_pair",
    py3_runtime = ":py3_runtime",
)

toolchain(
    name = "toolchain",
    toolchain = ":runtime_pair",
    toolchain_type = "@bazel_tools//tools/python:toolchain_type",
)

# The interpreter itself, for scripts outside Bazel (benchmarks).
exports_files(["python"])
""".format(python = venv + "/bin/python3"))
    # A wrapper, not a symlink: the venv's python finds pyvenv.cfg only when run by its own path.
    rctx.file("python", '#!/bin/sh\nexec "{}/bin/python3" "$@"\n'.format(venv), executable = True)

python_venv = repository_rule(
    implementation = _python_venv_impl,
    doc = "Installs `requirements_lock` into a shared virtualenv and declares it as a Python toolchain.",
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
