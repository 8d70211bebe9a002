"""The module extension of rules_ssd_tflite (Bazel 7 and later, MODULE.bazel).

    ssd = use_extension("@rules_ssd_tflite//tools:extensions.bzl", "rules_ssd_tflite")
    ssd.zoo(sha256 = {"ssd_mobilenet_v2_quantized_coco": "<sha256>"})
    use_repo(ssd, "ssd_mobilenet_v2_quantized_coco")

It declares what `rules_ssd_tflite_dependencies()` declares in a WORKSPACE,
through the same list (tools/private/dependencies.bzl); `zoo` tags carry
that macro's arguments. `development` is this repository's own, for its
tests and lint (dev_dependency); Bazel 4 never loads this file.
"""

load("//tools/private:dependencies.bzl", "rules_ssd_tflite_repositories")
load(":dev_repositories.bzl", "development_repositories")

_zoo = tag_class(
    doc = "How to fetch the model-zoo tarballs: rules_ssd_tflite_dependencies()'s zoo arguments.",
    attrs = {
        "allow_all_unpinned": attr.bool(doc = "Download every tarball without a known sha256 unpinned (allow_unpinned = True)."),
        "allow_unpinned": attr.string_list(doc = "Repository names of tarballs without a known sha256 that may be downloaded unpinned."),
        "mirrors": attr.string_list(doc = "Base URLs tried first for every tarball: https://, file://, or http:// on this machine."),
        "sha256": attr.string_dict(doc = "Repository name -> sha256 of the tarball you trust."),
    },
)

def _zoo_settings(module_ctx):
    """The zoo tags, merged: pins from every module (the root module's win), mirrors and unpinned downloads from the root only.

    A dependency may pin a tarball it was tested with, but may not loosen the root module's download
    policy; two dependencies pinning one tarball differently, where the root pins nothing, is an error.
    """
    mirrors, allow_unpinned, allow_all = [], [], False
    root_sha256, sha256, pinned_by = {}, {}, {}
    for module in module_ctx.modules:
        for tag in module.tags.zoo:
            if module.is_root:
                mirrors += [mirror for mirror in tag.mirrors if mirror not in mirrors]
                allow_unpinned += [name for name in tag.allow_unpinned if name not in allow_unpinned]
                allow_all = allow_all or tag.allow_all_unpinned
                root_sha256.update(tag.sha256)
                continue
            for name, digest in tag.sha256.items():
                if sha256.get(name, digest) != digest:
                    fail("rules_ssd_tflite: modules {} and {} pin {} to different sha256s ({} and {}); pin it in the root module.".format(
                        pinned_by[name],
                        module.name,
                        name,
                        sha256[name],
                        digest,
                    ))
                sha256[name] = digest
                pinned_by[name] = module.name
    return struct(
        zoo_mirrors = mirrors,
        zoo_sha256 = dict(sha256, **root_sha256),
        allow_unpinned = True if allow_all else allow_unpinned,
    )

def _rules_ssd_tflite_impl(module_ctx):
    settings = _zoo_settings(module_ctx)
    for repository in rules_ssd_tflite_repositories(settings.zoo_mirrors, settings.zoo_sha256, settings.allow_unpinned):
        repository.rule(name = repository.name, **repository.attrs)

rules_ssd_tflite = module_extension(
    implementation = _rules_ssd_tflite_impl,
    doc = "The Python environment, the model-zoo tarballs and the demo's JavaScript of rules_ssd_tflite.",
    tag_classes = {"zoo": _zoo},
)

def _development_impl(_module_ctx):
    for repository in development_repositories():
        repository.rule(name = repository.name, **repository.attrs)

development = module_extension(
    implementation = _development_impl,
    doc = "rules_ssd_tflite's own development dependencies (tools/dev_repositories.bzl): use with dev_dependency = True.",
)
