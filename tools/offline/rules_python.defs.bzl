"""Stand-in for @rules_python//python:defs.bzl on Bazels before 7 (see offline_bootstrap.bzl).

Re-exports the Python rules those Bazels have built in, which is what
rules_python's own defs.bzl gave them. Bazel 7 and later use the real rules_python.
"""

load("@bazel_tools//tools/python:toolchain.bzl", _py_runtime_pair = "py_runtime_pair")

py_binary = native.py_binary
py_library = native.py_library
py_runtime = native.py_runtime
py_runtime_pair = _py_runtime_pair
py_test = native.py_test
