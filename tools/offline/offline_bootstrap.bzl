"""Repositories that let Debian's Bazel 4.2.3 work with no network.

Bazel 4 downloads @rules_cc, @rules_java and @remote_coverage_tools as soon as
a py_binary, py_test or sh_test is analysed, and the rule set's bzl_library
targets need @bazel_skylib. These rules provide local stand-ins instead, only on Debian's bootstrap build of Bazel (the one that
reports no version) and only for names the workspace has not declared, and
say so in the log. Release builds of any version are left alone: they fetch
their own versions as usual.
"""

# name -> (Debian package, the folder it installs the repository's files into)
_DEBIAN_REPOSITORIES = {
    "bazel_skylib": ("bazel-skylib", "/usr/share/bazel/tools/skylib"),
    "rules_java": ("bazel-rules-java", "/usr/share/bazel/rules/java"),
}

def needs_offline_bootstrap(bazel_version):
    """Whether this Bazel is Debian's bootstrap Bazel, the offline Bazel 4 the stand-ins are for.

    Args:
      bazel_version: `native.bazel_version`; Debian's build reports none.

    Returns:
      True for Bazel builds without a version.
    """
    return bazel_version in ("", "no_version")

def _offline_rules_cc_impl(rctx):
    rctx.file("WORKSPACE", 'workspace(name = "rules_cc")\n')
    rctx.file("BUILD", "")
    rctx.file("cc/BUILD", "")
    rctx.symlink(rctx.attr._defs, "cc/defs.bzl")

_offline_rules_cc = repository_rule(
    implementation = _offline_rules_cc_impl,
    attrs = {"_defs": attr.label(default = "//tools/offline:rules_cc.defs.bzl")},
    doc = "@rules_cc whose cc/defs.bzl re-exports Bazel 4's native C++ rules.",
)

def _offline_remote_coverage_tools_impl(rctx):
    rctx.file("WORKSPACE", 'workspace(name = "remote_coverage_tools")\n')
    rctx.symlink(rctx.attr._build, "BUILD")
    rctx.symlink(rctx.attr._script, "coverage_unavailable.sh")

_offline_remote_coverage_tools = repository_rule(
    implementation = _offline_remote_coverage_tools_impl,
    attrs = {
        "_build": attr.label(default = "//tools/offline:remote_coverage_tools.BUILD"),
        "_script": attr.label(default = "//tools/offline:coverage_unavailable.sh"),
    },
    doc = "@remote_coverage_tools with the two targets every test rule names.",
)

def _debian_repository_impl(rctx):
    source = rctx.path(rctx.attr.folder)
    if not source.exists:
        fail("Bazel 4 needs @{}, which it cannot download offline. ".format(rctx.name) +
             "Install Debian's package with `apt-get install {}` ".format(rctx.attr.package) +
             "(tools/bazel does this for you), or use Bazel 6 or later.")
    for child in source.readdir():
        rctx.symlink(child, child.basename)

_debian_repository = repository_rule(
    implementation = _debian_repository_impl,
    doc = "A repository whose files a Debian package installed (bazel-rules-java, bazel-skylib).",
    attrs = {
        "package": attr.string(mandatory = True, doc = "The Debian package."),
        "folder": attr.string(mandatory = True, doc = "Where it installs the repository's files."),
    },
    local = True,
)

def offline_bootstrap_repositories():
    """Declares the Bazel 4 stand-ins unless the workspace already has them."""
    if not needs_offline_bootstrap(native.bazel_version):
        return
    existing = native.existing_rules()
    declared = []
    if "rules_cc" not in existing:
        _offline_rules_cc(name = "rules_cc")
        declared.append("@rules_cc")
    for name, (package, folder) in _DEBIAN_REPOSITORIES.items():
        if name not in existing:
            _debian_repository(name = name, package = package, folder = folder)
            declared.append("@" + name)
    if "remote_coverage_tools" not in existing:
        _offline_remote_coverage_tools(name = "remote_coverage_tools")
        declared.append("@remote_coverage_tools")
    if declared:
        # buildifier: disable=print
        print("rules_ssd_tflite: Debian's bootstrap Bazel (no version) cannot download {}; using local stand-ins.".format(
            ", ".join(declared),
        ))
