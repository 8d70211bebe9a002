"""Stand-in for @rules_shell//shell:sh_binary.bzl on Bazels before 7 (see offline_bootstrap.bzl).

Re-exports the built-in sh_binary. Bazel 7 and later use the real rules_shell.
"""

sh_binary = native.sh_binary
