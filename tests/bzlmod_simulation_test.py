"""A simulation of Bzlmod: MODULE.bazel and the module extensions, run by a Starlark interpreter.

Only Bazel 4.2.3 runs here, and it has no Bzlmod. So this test evaluates
MODULE.bazel, tools/extensions.bzl and everything they load with starlark-pyo3
(starlark-rust), with recording stand-ins for Bazel's module API (`module`,
`bazel_dep`, `use_extension`, `use_repo`, `register_toolchains`, a
`module_ctx` with tags, `repository_rule`, `attr`, `native`), and evaluates the
WORKSPACE macros the same way. It checks that:
  - every `use_repo` name is a repository its extension creates;
  - the extension creates the repositories (rule and attributes) that
    `rules_ssd_tflite_dependencies()` declares for the same zoo settings;
  - MODULE.bazel registers the toolchains a WORKSPACE registers, dev and not;
  - the extension refuses what the macro refuses, naming it.
It is a simulation, not Bazel: module resolution, repository visibility,
fetching and the repository rules' implementations are not run here.
"""

import os
import re
from typing import Any, Optional

import starlark
from absl.testing import absltest

from starlark_sources import REPOSITORY, file_of_label, source_root
# Bazel 8 in WORKSPACE mode: a released Bazel, so no Bazel-4 stand-ins are declared.
WORKSPACE_BAZEL_VERSION = "8.0.0"
GLOBALS = starlark.Globals.extended_by([starlark.LibraryExtension.StructType, starlark.LibraryExtension.Print])
DIALECT = starlark.Dialect.extended()

# Bazel's API, as far as these files use it; each stand-in records what it is asked to declare.
API = '''
def _recorder(kind):
    def declare(name, **attrs):
        record("repository", kind, name, attrs)
    return declare

def repository_rule(implementation, **kwargs):
    return _recorder(str(implementation))

def tag_class(attrs = {}, doc = ""):
    return struct(attrs = attrs)

def module_extension(implementation, tag_classes = {}, doc = ""):
    return struct(implementation = implementation, tag_classes = tag_classes)

def _attribute(empty):
    def declare(default = empty, **kwargs):
        return struct(default = default)
    return declare

attr = struct(
    bool = _attribute(False),
    int = _attribute(0),
    label = _attribute(None),
    label_keyed_string_dict = _attribute({}),
    label_list = _attribute([]),
    string = _attribute(""),
    string_dict = _attribute({}),
    string_list = _attribute([]),
)

def Label(label):
    return "@@REPOSITORY" + label if label.startswith("//") else label

def workspace(name):
    record("workspace", name, "", {})

def _register_toolchains(*toolchains):
    record("toolchains", "workspace", list(toolchains), {})

native = struct(
    bazel_version = "BAZEL_VERSION",
    existing_rule = existing_rule,
    existing_rules = existing_rules,
    register_toolchains = _register_toolchains,
)
'''.replace("REPOSITORY", REPOSITORY).replace("BAZEL_VERSION", WORKSPACE_BAZEL_VERSION)

# The @bazel_tools files the .bzl files load.
BAZEL_TOOLS = {
    "@bazel_tools//tools/build_defs/repo:http.bzl": 'http_archive = _recorder("http_archive")\n',
    "@bazel_tools//tools/build_defs/repo:utils.bzl": '''
def maybe(repo_rule, name, **kwargs):
    if not native.existing_rule(name):
        repo_rule(name = name, **kwargs)
''',
}

# MODULE.bazel's globals.
MODULE_API = '''
def _tag_recorder(extension, tag):
    def add(**attrs):
        record("tag", extension, tag, attrs)
    return add

def use_extension(extension_bzl, name, dev_dependency = False):
    key = extension_bzl + "%" + name
    extension = EXTENSIONS.get(key)
    if not extension:
        fail("use_extension: no extension {} in {}".format(name, extension_bzl))
    tags = {tag: _tag_recorder(key, tag) for tag in extension.tag_classes}
    return struct(extension_key = key, dev_dependency = dev_dependency, **tags)

def use_repo(proxy, *names, **aliases):
    record("use_repo", proxy.extension_key, list(names) + aliases.values(), {"dev_dependency": proxy.dev_dependency})

def module(**kwargs):
    record("module", "", "", kwargs)

def bazel_dep(name, version = "", dev_dependency = False, **kwargs):
    record("bazel_dep", name, version, {"dev_dependency": dev_dependency})

def register_toolchains(*toolchains, dev_dependency = False):
    record("toolchains", "module", list(toolchains), {"dev_dependency": dev_dependency})
'''


class Simulation:
    """One evaluation: loads .bzl files as Bazel would, and records every declaration."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Any, Any, dict]] = []
        self.repositories: dict[str, tuple[str, dict]] = {}  # name -> (rule, attributes)
        self.loaded: dict[str, starlark.FrozenModule] = {}

    def record(self, event: str, what: Any, name: Any, attrs: dict) -> None:
        if event == "repository":
            if name in self.repositories:
                raise AssertionError(f"repository {name} declared twice")
            self.repositories[name] = (what, attrs)
        self.events.append((event, what, name, attrs))

    def events_of(self, event: str) -> list[tuple[Any, Any, dict]]:
        return [(what, name, attrs) for kind, what, name, attrs in self.events if kind == event]

    def module(self, prelude: str = "") -> starlark.Module:
        module = starlark.Module()
        module.add_callable("record", self.record)
        module.add_callable("existing_rules", lambda: {name: {"name": name} for name in self.repositories})
        module.add_callable("existing_rule", lambda name: {"name": name} if name in self.repositories else None)
        self.evaluate(module, "<bazel api>", API + prelude, "//")
        return module

    def evaluate(self, module: starlark.Module, name: str, source: str, package: str) -> object:
        loader = starlark.FileLoader(lambda label: self.load(label, package))
        return starlark.eval(module, starlark.parse(name, source, DIALECT), GLOBALS, loader)

    def load(self, label: str, package: str) -> starlark.FrozenModule:
        if label not in self.loaded:
            if label in BAZEL_TOOLS:
                module, source, file_package = self.module(), BAZEL_TOOLS[label], "//"
            else:
                path = self.path(label, package)
                with open(os.path.join(source_root(), path)) as bzl:
                    module, source, file_package = self.module(), bzl.read(), "//" + os.path.dirname(path)
            self.evaluate(module, label, source, file_package)
            self.loaded[label] = module.freeze()
        return self.loaded[label]

    @staticmethod
    def path(label: str, package: str) -> str:
        """The file of a label in this repository (`//pkg:file.bzl`, `:file.bzl` relative to `package`)."""
        path = file_of_label(label, package[len("//"):])
        if path is None:
            raise AssertionError(f"cannot load {label}: not a file of this repository")
        return path

    def run(self, name: str, source: str, variables: Optional[dict] = None) -> None:
        """Evaluates `source` (loads allowed) with Bazel's API and `variables` as globals."""
        module = self.module()
        for variable, value in (variables or {}).items():
            module[variable] = value
        self.evaluate(module, name, source, "//")


def evaluate_module_file() -> tuple[Simulation, list[tuple[str, str]]]:
    """MODULE.bazel's declarations, and the (file, name) of each extension it uses."""
    with open(os.path.join(source_root(), "MODULE.bazel")) as module_file:
        text = module_file.read()
    extensions = sorted(set(re.findall(r'use_extension\(\s*"([^"]+)",\s*"(\w+)"', text)))
    simulation = Simulation()
    loads = "".join(f'load("{bzl}", _extension_{i} = "{name}")\n' for i, (bzl, name) in enumerate(extensions))
    table = "EXTENSIONS = {%s}\n" % ", ".join(
        f'"{bzl}%{name}": _extension_{i}' for i, (bzl, name) in enumerate(extensions))
    module = simulation.module()
    simulation.evaluate(module, "<extensions>", loads + table + MODULE_API, "//")
    simulation.evaluate(module, "MODULE.bazel", text, "//")
    return simulation, extensions


def run_extension(bzl: str, name: str, modules: list[tuple[str, dict[str, list[dict]]]]) -> Simulation:
    """The repositories the extension creates for `modules`: (module name, tag -> list of attrs), root first."""
    simulation = Simulation()
    simulation.run("<module_ctx>", f'''
load("{bzl}", _extension = "{name}")

def _tags(recorded):
    tags = {{}}
    for tag, tag_class in _extension.tag_classes.items():
        defaults = {{attribute: value.default for attribute, value in tag_class.attrs.items()}}
        tags[tag] = [struct(**dict(defaults, **attrs)) for attrs in recorded.get(tag, [])]
    return struct(**tags)

_extension.implementation(struct(modules = [
    struct(name = module_name, version = "", is_root = index == 0, tags = _tags(recorded))
    for index, (module_name, recorded) in enumerate(MODULES)
]))
''', {"MODULES": [[module_name, tags] for module_name, tags in modules]})
    return simulation


def run_workspace(calls: str) -> Simulation:
    """What the WORKSPACE macros declare and register in `calls` (Starlark statements)."""
    simulation = Simulation()
    simulation.run("<WORKSPACE>", '''
load("//tools:repositories.bzl", "rules_ssd_tflite_dependencies", "rules_ssd_tflite_register_development_toolchains",
     "rules_ssd_tflite_register_toolchains")
''' + calls)
    return simulation


# Zoo settings that exercise every branch: a mirror, a pin, an allowed unpinned tarball, one left unpinned.
ZOO_TAG = {
    "mirrors": ["https://mirror.example/zoo", "http://127.0.0.1:8080"],
    "sha256": {"mlperf_ssd_mobilenet_v1_8bit": "ab" * 32},
    "allow_unpinned": ["ssd_mobilenet_v2_quantized_coco"],
}
ZOO_MACRO_ARGUMENTS = ('zoo_mirrors = ["https://mirror.example/zoo", "http://127.0.0.1:8080"], '
                       'zoo_sha256 = {"mlperf_ssd_mobilenet_v1_8bit": "%s"}, '
                       'allow_unpinned = ["ssd_mobilenet_v2_quantized_coco"]' % ("ab" * 32))
MAIN_EXTENSION = ("//tools:extensions.bzl", "rules_ssd_tflite")
DEVELOPMENT_EXTENSION = ("//tools:extensions.bzl", "development")


class ModuleFileTest(absltest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.module, cls.extensions = evaluate_module_file()

    def test_uses_both_extensions(self):
        self.assertEqual(set(self.extensions), {MAIN_EXTENSION, DEVELOPMENT_EXTENSION})

    def test_every_use_repo_name_is_created_by_its_extension(self):
        tags = {key: {} for key in ("%".join(extension) for extension in self.extensions)}
        for key, tag, attrs in self.module.events_of("tag"):
            tags[key].setdefault(tag, []).append(attrs)
        used = self.module.events_of("use_repo")
        self.assertLen(used, 2)
        for key, names, _ in used:
            with self.subTest(extension=key):
                created = run_extension(*key.split("%"), [(REPOSITORY, tags[key])]).repositories
                self.assertNotEmpty(names)
                self.assertEmpty(set(names) - set(created), f"use_repo names that {key} does not create")
                # And every repository is used: //models names every tarball, the tests every development one.
                self.assertEmpty(set(created) - set(names), f"repositories of {key} that MODULE.bazel does not use")

    def test_development_parts_are_dev_dependencies(self):
        dev = {key: attrs["dev_dependency"] for key, _, attrs in self.module.events_of("use_repo")}
        self.assertEqual(dev, {"%".join(MAIN_EXTENSION): False, "%".join(DEVELOPMENT_EXTENSION): True})
        deps = {name: attrs["dev_dependency"] for name, _, attrs in self.module.events_of("bazel_dep")}
        self.assertEqual(deps, {"bazel_skylib": False, "platforms": False, "rules_python": False,
                                "rules_shell": True})

    def test_registers_the_toolchains_of_a_workspace(self):
        registered = {False: [], True: []}
        for _, toolchains, attrs in self.module.events_of("toolchains"):
            registered[attrs["dev_dependency"]] += toolchains
        consumer = run_workspace("rules_ssd_tflite_register_toolchains()\n")
        development = run_workspace("rules_ssd_tflite_register_development_toolchains()\n")
        self.assertEqual(registered[False], [toolchains for _, toolchains, _ in consumer.events_of("toolchains")][0])
        self.assertEqual(registered[True], [toolchains for _, toolchains, _ in development.events_of("toolchains")][0])
        self.assertNotIn("@bazel_tools//tools/python:toolchain_type", str(registered[False]))

    def test_module_file_without_tags_declares_what_this_workspace_declares(self):
        self.assertEmpty(self.module.events_of("tag"))
        workspace = Simulation()
        with open(os.path.join(source_root(), "WORKSPACE")) as workspace_file:
            workspace.run("WORKSPACE", workspace_file.read())
        declared = workspace.repositories
        created = {**run_extension(*MAIN_EXTENSION, [(REPOSITORY, {})]).repositories,
                   **run_extension(*DEVELOPMENT_EXTENSION, [(REPOSITORY, {})]).repositories}
        # bazel_skylib is a bazel_dep under Bzlmod.
        self.assertIn("bazel_skylib", [name for name, _, _ in self.module.events_of("bazel_dep")])
        self.assertEqual(declared.pop("bazel_skylib")[0], "http_archive")
        self.assertEqual(created, declared)


class ExtensionTest(absltest.TestCase):

    def test_tags_give_what_the_macro_gives_for_the_same_arguments(self):
        created = run_extension(*MAIN_EXTENSION, [(REPOSITORY, {"zoo": [ZOO_TAG]})]).repositories
        declared = run_workspace(f"rules_ssd_tflite_dependencies({ZOO_MACRO_ARGUMENTS})\n").repositories
        declared.pop("bazel_skylib")
        self.assertEqual(created, declared)
        kinds = {name: rule.rsplit(".", 1)[-1] for name, (rule, _) in created.items()}
        self.assertEqual(kinds["ssd_mobilenet_v2_quantized_coco"], "_allowed_unpinned_tarball_impl")
        self.assertEqual(kinds["mlperf_ssd_mobilenet_v1_8bit"], "http_archive")
        self.assertEqual(created["mlperf_ssd_mobilenet_v1_8bit"][1]["sha256"], "ab" * 32)
        self.assertEqual(created["ssdlite_mobilenet_v2_coco"][1]["urls"][:2], [
            "https://mirror.example/zoo/ssdlite_mobilenet_v2_coco_2018_05_09.tar.gz",
            "http://127.0.0.1:8080/ssdlite_mobilenet_v2_coco_2018_05_09.tar.gz"])

    def test_allow_all_unpinned_is_allow_unpinned_true(self):
        created = run_extension(*MAIN_EXTENSION, [(REPOSITORY, {"zoo": [{"allow_all_unpinned": True}]})])
        declared = run_workspace("rules_ssd_tflite_dependencies(allow_unpinned = True)\n").repositories
        declared.pop("bazel_skylib")
        self.assertEqual(created.repositories, declared)

    def test_pins_come_from_every_module_and_the_download_policy_from_the_root_only(self):
        created = run_extension(*MAIN_EXTENSION, [
            (REPOSITORY, {"zoo": [{"mirrors": ["https://a.example"],
                                   "sha256": {"ssd_mobilenet_v2_quantized_coco": "ef" * 32}}]}),
            ("other_module", {"zoo": [{"mirrors": ["https://b.example"], "allow_all_unpinned": True,
                                       "sha256": {"mlperf_ssd_mobilenet_v1_8bit": "ab" * 32,
                                                  "ssd_mobilenet_v2_quantized_coco": "cd" * 32}}]}),
        ]).repositories
        mlperf, v2 = created["mlperf_ssd_mobilenet_v1_8bit"][1], created["ssd_mobilenet_v2_quantized_coco"][1]
        self.assertEqual(mlperf["urls"][0], "https://a.example/mobilenet_v1_ssd_8bit_finetuned.tar.gz")
        self.assertNotIn("https://b.example/mobilenet_v1_ssd_8bit_finetuned.tar.gz", mlperf["urls"])
        self.assertEqual(mlperf["sha256"], "ab" * 32)  # a dependency's pin
        self.assertEqual(v2["sha256"], "ef" * 32)  # the root's pin wins
        # The dependency's allow_all_unpinned is ignored: nothing is downloaded unpinned.
        self.assertNotIn("_allowed_unpinned_tarball_impl", str([rule for rule, _ in created.values()]))

    def test_refusals_name_what_is_wrong(self):
        for modules, message in [
            ([(REPOSITORY, {}),
              ("one_module", {"zoo": [{"sha256": {"ssd_mobilenet_v2_quantized_coco": "ab" * 32}}]}),
              ("other_module", {"zoo": [{"sha256": {"ssd_mobilenet_v2_quantized_coco": "cd" * 32}}]})],
             "modules one_module and other_module pin ssd_mobilenet_v2_quantized_coco to different sha256s"),
            ([(REPOSITORY, {"zoo": [{"mirrors": ["http://mirror.example/zoo"]}]})],
             "http://mirror.example/zoo is neither https:// nor file://"),
            ([(REPOSITORY, {"zoo": [{"mirrors": ["http://127.0.0.1.evil.example/zoo"]}]})],
             "http://127.0.0.1.evil.example/zoo is neither https:// nor file://"),
            ([(REPOSITORY, {"zoo": [{"mirrors": ["http://127.0.0.1:80@evil.example/zoo"]}]})],
             "http://127.0.0.1:80@evil.example/zoo is neither https:// nor file://"),
            ([(REPOSITORY, {"zoo": [{"allow_unpinned": ["ssd_mobilenet_v3"]}]})],
             "name no model-zoo tarball: ssd_mobilenet_v3"),
        ]:
            with self.subTest(message=message):
                with self.assertRaisesRegex(starlark.StarlarkError, re.escape(message)):
                    run_extension(*MAIN_EXTENSION, modules)

    def test_macro_refuses_the_same(self):
        with self.assertRaisesRegex(starlark.StarlarkError, re.escape("ftp://mirror.example is neither https://")):
            run_workspace('rules_ssd_tflite_dependencies(zoo_mirrors = ["ftp://mirror.example"])\n')


if __name__ == "__main__":
    absltest.main()
