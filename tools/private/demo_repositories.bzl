"""The browser demo's JavaScript: MediaPipe Tasks Vision from the npm registry, pinned.

An http_archive of the package tarball rather than `npm ci`: the package has
no dependencies, Bazel's repository cache then keeps it for offline builds,
and the sha256 below is checked on every fetch. It was computed from the
tarball whose sha512 equals the registry's own `integrity` record.
"""

load("@bazel_tools//tools/build_defs/repo:http.bzl", "http_archive")
load(":constants.bzl", "MEDIAPIPE_BUNDLE", "MEDIAPIPE_TASKS_VISION_REPOSITORY")

# 0.10.35, not 1.x: 1.1.0 POSTs usage metrics to a Google endpoint every 60 s; 0.10.35 sends nothing.
_VERSION = "0.10.35"
_SHA256 = "84597a25e13d123b5f4cbe768bb72e97a2c28c7a465f0ace287d8cbe5246bff0"
# npm integrity: sha512-HOvadwVRE6JC+45nyYhmnywnr5h/J8KZvOeUNVOG9q/0875pZgItznFB9bRTvLc264YSJqiZ1NsIpCStJw/egg==

_BUILD = """\
exports_files(["{bundle}"])

filegroup(
    name = "files",
    srcs = ["{bundle}"] + glob(["wasm/*"]),
    visibility = ["//visibility:public"],
)
""".format(bundle = MEDIAPIPE_BUNDLE)

def demo_repositories():
    """The demo's npm package, fetched only when //demo:serve is built.

    Returns:
      list of struct(rule, name, attrs), as zoo_repositories.
    """
    return [struct(rule = http_archive, name = MEDIAPIPE_TASKS_VISION_REPOSITORY, attrs = {
        "build_file_content": _BUILD,
        "sha256": _SHA256,
        "strip_prefix": "package",
        "urls": ["https://registry.npmjs.org/@mediapipe/tasks-vision/-/tasks-vision-{}.tgz".format(_VERSION)],
    })]
