"""The repositories of the rule set: one list, declared by both entry points.

`rules_ssd_tflite_dependencies()` (WORKSPACE, tools/repositories.bzl) and the
`rules_ssd_tflite` module extension (MODULE.bazel, tools/extensions.bzl) both
call each repository rule of this list with these attributes, and nothing else.
"""

load(":demo_repositories.bzl", "demo_repositories")
load(":python_venv.bzl", "python_venv")
load(":zoo.bzl", "zoo_repositories")

PYTHON_REPOSITORY = "rules_ssd_tflite_python"

def rules_ssd_tflite_repositories(zoo_mirrors = [], zoo_sha256 = {}, allow_unpinned = []):
    """The Python environment, the model-zoo tarballs and the demo's JavaScript.

    Args:
      zoo_mirrors: base URLs tried first for every model-zoo tarball.
      zoo_sha256: repository name -> sha256 overrides (see zoo.bzl).
      allow_unpinned: repository names (or True: all) of tarballs without a known sha256 that may be
        downloaded unpinned.

    Returns:
      list of struct(rule, name, attrs): call `rule(name = name, **attrs)` for each.
    """
    python = struct(rule = python_venv, name = PYTHON_REPOSITORY, attrs = {
        "requirements_lock": Label("//:requirements_lock.txt"),
    })
    return [python] + zoo_repositories(mirrors = zoo_mirrors, sha256 = zoo_sha256, allow_unpinned = allow_unpinned) + demo_repositories()

# What rules_ssd_tflite_register_toolchains() and MODULE.bazel register: our actions' Python, for our
# own toolchain type only.
TOOLCHAINS = ["@{}//:toolchain".format(PYTHON_REPOSITORY)]

# This repository's own tests and CLIs also run py_binary and py_test in that environment.
DEVELOPMENT_TOOLCHAINS = ["@{}//development:py_toolchain".format(PYTHON_REPOSITORY)]
