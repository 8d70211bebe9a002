"""This repository's own development dependencies: its tests' BuildGrid environment and buildifier.

Its CLIs, demo and tests load @rules_python and @rules_shell: a bazel_dep under Bzlmod; in this
WORKSPACE, stand-ins on Bazels before 7.

Not for consumers of the rules. Both entry points use the one list below:
`rules_ssd_tflite_development_dependencies()` in this repository's WORKSPACE,
and the `development` module extension (tools/extensions.bzl) in its MODULE.bazel.
"""

load("@bazel_tools//tools/build_defs/repo:http.bzl", "http_archive")
load("//tools/offline:offline_bootstrap.bzl", "builtin_rule_repositories")
load("//tools/private:python_venv.bzl", "python_venv")

# buildifier 8.2.1 from the npm registry: the package carries the binaries of every platform.
# npm integrity sha512-eZ/Aq+2r4PcJa6LbPCT6ffgIJfTU/gYilqIzoX2OLM4nNkbQC6tTMPZNn7aHHjhGPxbNLv41zm4Xqt1olCLgXw==,
# and the sha256 of the tarball with that sha512:
_BUILDIFIER_VERSION = "8.2.1"
_BUILDIFIER_SHA256 = "b96ea9b13003036c801f52bee6f9b0314738f8432e5cb9d814c89f59292604ee"

_BUILDIFIER_BUILD = """\
exports_files(glob(["buildifier-*"]))

filegroup(
    name = "binaries",
    srcs = glob(["buildifier-*"], exclude = ["*.exe"]),
    visibility = ["//visibility:public"],
)
"""

def development_repositories():
    """BuildGrid's locked environment (//tests:remote_execution_test) and buildifier (//dev:buildifier).

    Returns:
      list of struct(rule, name, attrs), as rules_ssd_tflite_repositories.
    """
    return [
        struct(rule = python_venv, name = "buildgrid_python", attrs = {
            "requirements_lock": Label("//tests/remote:buildgrid_requirements_lock.txt"),
        }),
        struct(rule = http_archive, name = "buildifier_prebuilt", attrs = {
            "build_file_content": _BUILDIFIER_BUILD,
            "sha256": _BUILDIFIER_SHA256,
            "strip_prefix": "package",
            "urls": ["https://registry.npmjs.org/@bazel/buildifier/-/buildifier-{}.tgz".format(_BUILDIFIER_VERSION)],
        }),
    ]

def rules_ssd_tflite_development_dependencies():
    """Declares development_repositories() in this repository's WORKSPACE, and on Bazels before 7 @rules_python and @rules_shell."""
    builtin_rule_repositories()
    for repository in development_repositories():
        repository.rule(name = repository.name, **repository.attrs)
