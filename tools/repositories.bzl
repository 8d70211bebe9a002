"""Workspace set-up for rules_ssd_tflite (Bazel 4 to 8; Bazel 7 and later can use MODULE.bazel instead).

In a WORKSPACE file:

    load("@rules_ssd_tflite//tools:repositories.bzl", "rules_ssd_tflite_dependencies", "rules_ssd_tflite_register_toolchains")
    rules_ssd_tflite_dependencies()
    rules_ssd_tflite_register_toolchains()
"""

load("@bazel_tools//tools/build_defs/repo:http.bzl", "http_archive")
load("@bazel_tools//tools/build_defs/repo:utils.bzl", "maybe")
load("//tools/offline:offline_bootstrap.bzl", "offline_bootstrap_repositories")
load("//tools/private:dependencies.bzl", "DEVELOPMENT_TOOLCHAINS", "TOOLCHAINS", "rules_ssd_tflite_repositories")

def rules_ssd_tflite_dependencies(zoo_mirrors = [], zoo_sha256 = {}, allow_unpinned = []):
    """Declares the Python environment, bazel_skylib, the model-zoo tarballs, the demo's JavaScript and the stand-ins of older Bazels.

    Tarballs and packages are only downloaded when a target that needs them is built. A repository
    the workspace declared first is kept.

    Args:
      zoo_mirrors: base URLs tried first for every model-zoo tarball (https://, file://, or http:// on
        this machine).
      zoo_sha256: repository name -> sha256 overrides (see tools/private/zoo.bzl).
      allow_unpinned: repository names (or True: all) of tarballs without a known sha256 that may be
        downloaded unpinned; by default a build that needs one fails, saying how to pin it.
    """
    offline_bootstrap_repositories()
    maybe(
        http_archive,
        name = "bazel_skylib",
        sha256 = "66ffd9315665bfaafc96b52278f57c7e2dd09f5ede279ea6d39b2be471e7e3aa",
        urls = ["https://github.com/bazelbuild/bazel-skylib/releases/download/1.4.2/bazel-skylib-1.4.2.tar.gz"],
    )
    for repository in rules_ssd_tflite_repositories(zoo_mirrors, zoo_sha256, allow_unpinned):
        maybe(repository.rule, name = repository.name, **repository.attrs)

# buildifier: disable=unnamed-macro
def rules_ssd_tflite_register_toolchains():
    """Registers the locked virtualenv as the Python of this rule set's actions.

    Only for the rule set's own toolchain type: the workspace's py_binary and
    py_test targets keep whatever Python toolchain it registers.
    """
    native.register_toolchains(*TOOLCHAINS)

# buildifier: disable=unnamed-macro
def rules_ssd_tflite_register_development_toolchains():
    """Also makes the virtualenv the workspace's Python toolchain: for rules_ssd_tflite's own tests and CLIs."""
    native.register_toolchains(*DEVELOPMENT_TOOLCHAINS)
