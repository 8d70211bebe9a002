"""The model-zoo tarballs, each an http_archive with a pinned sha256 where one is on public record."""

load("@bazel_tools//tools/build_defs/repo:http.bzl", "http_archive")
load(":constants.bzl", "CHECKPOINT_CONFIG_FILE", "CHECKPOINT_PREFIX", "CHECKPOINT_STATE_FILE")

_TF_ZOO = "download.tensorflow.org/models/object_detection/"

def _tf_zoo_urls(archive):
    # https only: download.tensorflow.org is served from this bucket.
    return ["https://storage.googleapis.com/" + _TF_ZOO + archive]

# repository name -> (archive file, folder inside it, urls, sha256 or "" when no public record exists).
ZOO_ARCHIVES = {
    "ssd_mobilenet_v1_quantized_coco": (
        "ssd_mobilenet_v1_quantized_300x300_coco14_sync_2018_07_18.tar.gz",
        "ssd_mobilenet_v1_quantized_300x300_coco14_sync_2018_07_18",
        _tf_zoo_urls("ssd_mobilenet_v1_quantized_300x300_coco14_sync_2018_07_18.tar.gz"),
        # TensorFlow's own workspace pins this tarball.
        "09280972c5777f1aa775ef67cb4ac5d5ed21970acd8535aeca62450ef14f0d79",
    ),
    "ssd_mobilenet_v2_quantized_coco": (
        "ssd_mobilenet_v2_quantized_300x300_coco_2019_01_03.tar.gz",
        "ssd_mobilenet_v2_quantized_300x300_coco_2019_01_03",
        _tf_zoo_urls("ssd_mobilenet_v2_quantized_300x300_coco_2019_01_03.tar.gz"),
        "",
    ),
    "ssdlite_mobilenet_v2_coco": (
        "ssdlite_mobilenet_v2_coco_2018_05_09.tar.gz",
        "ssdlite_mobilenet_v2_coco_2018_05_09",
        _tf_zoo_urls("ssdlite_mobilenet_v2_coco_2018_05_09.tar.gz"),
        "542445cce834dbfbb7df1991425d475e85a2d7ec68c60a4f262bb18aac10c8b2",
    ),
    "ssd_resnet50_v1_fpn_coco": (
        "ssd_resnet50_v1_fpn_shared_box_predictor_640x640_coco14_sync_2018_07_03.tar.gz",
        "ssd_resnet50_v1_fpn_shared_box_predictor_640x640_coco14_sync_2018_07_03",
        _tf_zoo_urls("ssd_resnet50_v1_fpn_shared_box_predictor_640x640_coco14_sync_2018_07_03.tar.gz"),
        # OpenVINO Open Model Zoo, models/public/ssd_resnet50_v1_fpn_coco/model.yml (366947246 bytes).
        "b5ff24a4a013130ebbbf5da71fbbd05a5df27825184632899650f45833ffb66b",
    ),
    "mlperf_ssd_mobilenet_v1_8bit": (
        "mobilenet_v1_ssd_8bit_finetuned.tar.gz",
        "mobilenet_v1_ssd_finetuned",
        ["https://zenodo.org/record/3252084/files/mobilenet_v1_ssd_8bit_finetuned.tar.gz"],
        "",
    ),
}

_CHECKPOINT_BUILD = """\
load("@rules_ssd_tflite//tools:defs.bzl", "ssd_checkpoint")

ssd_checkpoint(
    name = "checkpoint",
    data = glob(["{prefix}.data-*"]),
    index = "{prefix}.index",
    pipeline_config = "{config}",
    visibility = ["//visibility:public"],
)

# The tarballs also hold a TF `{state}` state file, which the target above shadows.
exports_files(glob(["**"], exclude = ["{state}"]))
""".format(prefix = CHECKPOINT_PREFIX, config = CHECKPOINT_CONFIG_FILE, state = CHECKPOINT_STATE_FILE)

def _unpinned_tarball_impl(rctx):
    fail(("{name}: no public record gives the sha256 of {archive}, so it is not downloaded unpinned. " +
          "Pin the tarball you trust with zoo_sha256 = {{\"{name}\": \"<sha256>\"}} " +
          "(`sha256sum {archive}`), or accept any bytes with allow_unpinned = [\"{name}\"].").format(
        name = rctx.attr.name,
        archive = rctx.attr.archive,
    ))

_unpinned_tarball = repository_rule(
    implementation = _unpinned_tarball_impl,
    doc = "Stands for a model-zoo tarball without a pin: fails, saying how to pin it, when a build needs it.",
    attrs = {"archive": attr.string(mandatory = True)},
)

# What every model-zoo tarball holds in its folder, checked when there is no sha256 to check.
_CHECKPOINT_FILES = [CHECKPOINT_CONFIG_FILE, CHECKPOINT_PREFIX + ".index"]

def _allowed_unpinned_tarball_impl(rctx):
    downloaded = rctx.download_and_extract(url = rctx.attr.urls, stripPrefix = rctx.attr.strip_prefix)
    missing = [name for name in _CHECKPOINT_FILES if not rctx.path(name).exists]
    if missing:
        fail("{}: the tarball from {} (sha256 {}) has no {} in {}/: not a model-zoo checkpoint.".format(
            rctx.attr.name,
            rctx.attr.urls[0],
            downloaded.sha256,
            " or ".join(missing),
            rctx.attr.strip_prefix,
        ))

    # buildifier: disable=print
    print(("{name}: downloaded unpinned (allow_unpinned), sha256 {sha256}. If you trust these bytes, pin them " +
           "with zoo_sha256 = {{\"{name}\": \"{sha256}\"}}: Bazel then checks them and keeps them in its repository cache.").format(
        name = rctx.attr.name,
        sha256 = downloaded.sha256,
    ))
    rctx.file("BUILD.bazel", _CHECKPOINT_BUILD)
    return {"name": rctx.attr.name, "sha256": downloaded.sha256, "strip_prefix": rctx.attr.strip_prefix, "urls": rctx.attr.urls}

_allowed_unpinned_tarball = repository_rule(
    implementation = _allowed_unpinned_tarball_impl,
    doc = "A model-zoo tarball downloaded without a pin (allow_unpinned): checked to hold a checkpoint, its sha256 printed.",
    attrs = {
        "strip_prefix": attr.string(mandatory = True, doc = "The folder inside the tarball."),
        "urls": attr.string_list(mandatory = True, doc = "Where to download it, tried in order."),
    },
)

def _mirror_error(mirror):
    """Why `mirror` may not serve tarballs, or None: https, file, or plain http to this machine only."""
    lowered = mirror.lower()  # URL schemes and host names are case-insensitive
    if lowered.startswith(("https://", "file://")):
        return None
    if lowered.startswith("http://"):
        host = lowered[len("http://"):].split("/")[0]
        if "@" not in host and (host == "[::1]" or host.startswith("[::1]:") or host.split(":")[0] in ("127.0.0.1", "localhost")):
            return None
    return "zoo_mirrors: {} is neither https:// nor file:// nor http:// on this machine (127.0.0.1, localhost, [::1]): ".format(mirror) + \
           "an unpinned tarball from it could be swapped in transit."

def zoo_repositories(mirrors = [], sha256 = {}, allow_unpinned = []):
    """One repository per model-zoo tarball.

    Args:
      mirrors: base URLs tried before the public ones; `<mirror>/<archive file>`
        must serve the same tarball (an internal artifact store, say). https://
        or file://; plain http:// only on this machine (a test server).
      sha256: repository name -> sha256, to pin what has no public pin here,
        or to use other tarballs under the same names.
      allow_unpinned: repository names to download without a sha256 when
        none is known (the sha256 seen is then printed, and the tarball checked
        to hold a checkpoint); True for all. Others without a pin fail with
        instructions when a build needs them.

    Returns:
      list of struct(rule, name, attrs): the repository rule to call for each name, with its attributes.
    """
    errors = [error for error in [_mirror_error(mirror) for mirror in mirrors] if error]
    unknown = [name for name in sha256.keys() + ([] if allow_unpinned == True else allow_unpinned) if name not in ZOO_ARCHIVES]
    if unknown:
        errors.append("zoo_sha256 / allow_unpinned name no model-zoo tarball: {} (known: {}).".format(
            ", ".join(sorted(unknown)),
            ", ".join(sorted(ZOO_ARCHIVES.keys())),
        ))
    if errors:
        fail("rules_ssd_tflite:\n  " + "\n  ".join(errors))
    repositories = []
    for name, (archive, folder, urls, digest) in ZOO_ARCHIVES.items():
        all_urls = [mirror.rstrip("/") + "/" + archive for mirror in mirrors] + urls
        pin = sha256.get(name, digest)
        if pin:
            repositories.append(struct(rule = http_archive, name = name, attrs = {
                "build_file_content": _CHECKPOINT_BUILD,
                "sha256": pin,
                "strip_prefix": folder,
                "urls": all_urls,
            }))
        elif allow_unpinned == True or name in allow_unpinned:
            repositories.append(struct(rule = _allowed_unpinned_tarball, name = name, attrs = {
                "strip_prefix": folder,
                "urls": all_urls,
            }))
        else:
            repositories.append(struct(rule = _unpinned_tarball, name = name, attrs = {"archive": archive}))
    return repositories
