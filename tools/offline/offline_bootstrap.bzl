"""Repositories that let Debian's Bazel 4.2.3, and other Bazels before 7, build this workspace.

Bazel 4 downloads @rules_cc, @rules_java and @remote_coverage_tools as soon as
a py_binary, py_test or sh_test is analysed, and the rule set's bzl_library
targets need @bazel_skylib. Local stand-ins replace them only on Debian's
bootstrap build of Bazel (the one that reports no version); release builds
fetch their own versions as usual.

This repository's BUILD files load py_* rules from @rules_python and sh_binary
from @rules_shell, as Bazel 9 requires. Bazels before 7 have those rules built
in (current rules_python and rules_shell do not support them), so there its
own WORKSPACE declares @rules_python and @rules_shell as stand-ins that
re-export the built-in rules (builtin_rule_repositories).

Every stand-in is declared only for names the workspace has not declared
(declare your own first to use it), and the log says which.
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

def has_builtin_rules_only(bazel_version):
    """Whether this Bazel predates rules_python and rules_shell support: a bootstrap build or before 7.

    Args:
      bazel_version: `native.bazel_version`.

    Returns:
      True for Bazel builds without a version and releases before 7.
    """
    major = bazel_version.split(".")[0]
    return needs_offline_bootstrap(bazel_version) or (major.isdigit() and int(major) < 7)

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

def _builtin_rules_impl(rctx):
    rctx.file("WORKSPACE", 'workspace(name = "{}")\n'.format(rctx.name))
    rctx.file("BUILD", "")
    for source, path in rctx.attr.files.items():
        rctx.symlink(source, path)
    for folder in {path.rsplit("/", 1)[0]: None for path in rctx.attr.files.values()}:
        rctx.file(folder + "/BUILD", "")

_builtin_rules = repository_rule(
    implementation = _builtin_rules_impl,
    attrs = {"files": attr.label_keyed_string_dict(mandatory = True, allow_files = [".bzl"], doc = ".bzl file that re-exports built-in rules -> its path in the repository")},
    doc = "A stand-in for @rules_python or @rules_shell: .bzl files that re-export Bazel's built-in rules.",
)

_BUILTIN_RULE_REPOSITORIES = {
    "rules_python": {"//tools/offline:rules_python.defs.bzl": "python/defs.bzl"},
    "rules_shell": {"//tools/offline:rules_shell.sh_binary.bzl": "shell/sh_binary.bzl"},
}

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
    """Declares the stand-ins Debian's Bazel 4 needs, unless the workspace already has them."""
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
    _report(declared, "Debian's bootstrap Bazel (no version) cannot download them")

def builtin_rule_repositories():
    """Declares @rules_python and @rules_shell as re-exports of the built-in rules on Bazels before 7.

    For this repository's own BUILD files (its CLIs, demo and tests); a workspace that only builds
    models needs neither, and one that declares its own keeps it.
    """
    if not has_builtin_rules_only(native.bazel_version):
        return
    existing = native.existing_rules()
    declared = []
    for name, files in _BUILTIN_RULE_REPOSITORIES.items():
        if name not in existing:
            _builtin_rules(name = name, files = files)
            declared.append("@" + name)
    _report(declared, "Bazel {} has Python and shell rules built in".format(native.bazel_version or "(no version)"))

def _report(declared, why):
    if declared:
        # buildifier: disable=print
        print("rules_ssd_tflite: {}; using local stand-ins for {}.".format(why, ", ".join(declared)))
