"""Runs the pinned buildifier over this workspace: `tools/bazel run //dev:buildifier [-- --mode=fix]`.

Default: `--mode=check --lint=warn`, every BUILD, .bzl, WORKSPACE and MODULE.bazel file; exits
non-zero with the findings. The binary is buildifier 8.2.1 from the npm registry, pinned by
sha256 in tools/dev_repositories.bzl; `.buildifier.json` holds the documented exceptions.
"""

import os
import platform
import subprocess
import sys

ARCHITECTURES = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64", "riscv64": "riscv64"}


def binary(binaries: list[str]) -> str:
    """This machine's buildifier among `binaries` (runfiles paths, `buildifier-<os>_<arch>`)."""
    system, machine = platform.system().lower(), platform.machine().lower()
    wanted = f"buildifier-{system}_{ARCHITECTURES.get(machine, machine)}"
    for path in binaries:
        if os.path.basename(path) == wanted:
            return os.path.abspath(path)
    sys.exit(f"buildifier: no {wanted} among {', '.join(os.path.basename(path) for path in binaries)}")


def main() -> None:
    workspace = os.environ.get("BUILD_WORKSPACE_DIRECTORY")
    if not workspace:
        sys.exit("buildifier: run me with `tools/bazel run //dev:buildifier`")
    binaries = [argument for argument in sys.argv[1:] if "buildifier-" in os.path.basename(argument)]
    arguments = [argument for argument in sys.argv[1:] if argument not in binaries] or ["--mode=check", "--lint=warn"]
    result = subprocess.run([binary(binaries), "-r", *arguments, "."], cwd=workspace, check=False)
    if result.returncode:
        print("buildifier: findings above; `tools/bazel run //dev:buildifier -- --mode=fix --lint=fix` "
              "fixes what it can", file=sys.stderr)
    sys.exit(result.returncode)


if __name__ == "__main__":
    main()
