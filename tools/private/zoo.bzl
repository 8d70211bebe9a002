"""The model-zoo tarballs, each an http_archive with a pinned sha256 where one is on public record."""

load("@bazel_tools//tools/build_defs/repo:http.bzl", "http_archive")

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
    data = glob(["model.ckpt.data-*"]),
    index = "model.ckpt.index",
    pipeline_config = "pipeline.config",
    visibility = ["//visibility:public"],
)

# The tarballs also hold a TF `checkpoint` state file, which the target above shadows.
exports_files(glob(["**"], exclude = ["checkpoint"]))
"""

def _unpinned_tarball_impl(rctx):
    fail(("{name}: no public record gives the sha256 of {archive}, so it is not downloaded unpinned. " +
          "Pin the tarball you trust with rules_ssd_tflite_dependencies(zoo_sha256 = {{\"{name}\": \"<sha256>\"}}) " +
          "(`sha256sum {archive}`), or accept any bytes with allow_unpinned = [\"{name}\"].").format(
        name = rctx.attr.name,
        archive = rctx.attr.archive,
    ))

_unpinned_tarball = repository_rule(
    implementation = _unpinned_tarball_impl,
    doc = "Stands for a model-zoo tarball without a pin: fails, saying how to pin it, when a build needs it.",
    attrs = {"archive": attr.string(mandatory = True)},
)

def zoo_repositories(mirrors = [], sha256 = {}, allow_unpinned = []):
    """Declares one http_archive per model-zoo tarball.

    Args:
      mirrors: base URLs tried before the public ones; `<mirror>/<archive file>`
        must serve the same tarball (an internal artifact store, say).
      sha256: repository name -> sha256, to pin what has no public pin here,
        or to use other tarballs under the same names.
      allow_unpinned: repository names to download without a sha256 when
        none is known (Bazel then prints the sha256 it saw); True for all.
        Others without a pin fail with instructions when a build needs them.
    """
    for name, (archive, folder, urls, digest) in ZOO_ARCHIVES.items():
        if native.existing_rule(name):
            continue
        pin = sha256.get(name, digest)
        if not pin and not (allow_unpinned == True or name in allow_unpinned):
            _unpinned_tarball(name = name, archive = archive)
            continue
        http_archive(
            name = name,
            urls = [mirror.rstrip("/") + "/" + archive for mirror in mirrors] + urls,
            sha256 = pin,
            strip_prefix = folder,
            build_file_content = _CHECKPOINT_BUILD,
        )
