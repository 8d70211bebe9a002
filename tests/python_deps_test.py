"""py/BUILD's MODULES and TOOLS tables name exactly what each module and tool imports.

The tables give every tool's action inputs (tools/python_toolchain.bzl's
ssd_python_library): a missing dependency would fail a remote action with an
ImportError (locally, Python finds the module beside the script's real path
anyway), and a superfluous one would re-run actions for edits that cannot
change their outputs. So both are read from the BUILD file (its tables are
literals) and compared with the `from ssd_tflite import ...` statements of the
sources, including imports inside functions, but not those under
`if TYPE_CHECKING:`, which only type checkers run.
"""

import ast
import glob
import os

from absl.testing import absltest

PY = os.path.join(os.environ["TEST_SRCDIR"], os.environ["TEST_WORKSPACE"], "py")


def build_tables() -> tuple[dict[str, list[str]], dict[str, tuple[str, list[str]]]]:
    """MODULES and TOOLS, the literal tables of py/BUILD."""
    with open(os.path.join(PY, "BUILD")) as build_file:
        tree = ast.parse(build_file.read(), "py/BUILD")
    tables = {node.targets[0].id: ast.literal_eval(node.value) for node in tree.body
              if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)}
    return tables["MODULES"], tables["TOOLS"]


# Calls that import a module whose name the tables cannot see.
DYNAMIC_IMPORTS = ("__import__", "importlib.import_module", "import_module", "importlib.__import__")


def _runtime_nodes(node: ast.AST):
    """`node` and everything below it, except the bodies of `if TYPE_CHECKING:` (imports for type hints only)."""
    yield node
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and ast.unparse(child.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING"):
            for orelse in child.orelse:
                yield from _runtime_nodes(orelse)
        else:
            yield from _runtime_nodes(child)


def imported_modules(path: str) -> list[str]:
    """The ssd_tflite modules that the Python file at `path` imports when it runs, anywhere in it."""
    with open(path) as source:
        tree = ast.parse(source.read(), path)
    found = set()
    for node in _runtime_nodes(tree):
        if isinstance(node, ast.ImportFrom):
            # `from . import x` and `from .x import y` inside the package, as the absolute forms.
            module = ("ssd_tflite." if node.level else "") + (node.module or "")
            if module.rstrip(".") == "ssd_tflite":
                found.update(alias.name for alias in node.names)
            elif module.startswith("ssd_tflite."):
                found.add(module.split(".")[1])
        elif isinstance(node, ast.Import):
            found.update(alias.name.split(".")[1] for alias in node.names if alias.name.startswith("ssd_tflite."))
        elif isinstance(node, ast.Call) and ast.unparse(node.func) in DYNAMIC_IMPORTS:
            raise AssertionError(f"{path}:{node.lineno}: {ast.unparse(node.func)} hides a dependency from "
                                 "py/BUILD's tables; import the module with an import statement")
    return sorted(found)


class PythonDepsTest(absltest.TestCase):

    def test_every_module_has_its_imports_as_deps(self):
        modules, _ = build_tables()
        sources = {os.path.basename(path)[:-len(".py")]: path
                   for path in glob.glob(os.path.join(PY, "ssd_tflite", "*.py")) if not path.endswith("__init__.py")}
        missing = {name: imported_modules(path) for name, path in sources.items() if name not in modules}
        self.assertEqual(missing, {}, "py/BUILD's MODULES: add these entries (module: the modules it imports)")
        self.assertEqual(sorted(set(modules) - set(sources)), [], "py/BUILD's MODULES: remove these, no such module")
        wrong = {name: imported_modules(path) for name, path in sources.items()
                 if imported_modules(path) != sorted(modules[name])}
        self.assertEqual(wrong, {}, "py/BUILD's MODULES: replace these entries by what the modules import")

    def test_every_tool_has_its_imports_as_deps(self):
        _, tools = build_tables()
        wrong = {name: (main, imported_modules(os.path.join(PY, main))) for name, (main, deps) in tools.items()
                 if imported_modules(os.path.join(PY, main)) != sorted(deps)}
        self.assertEqual(wrong, {}, "py/BUILD's TOOLS: replace these entries by what the scripts import")

    def test_a_missing_import_is_found(self):
        """The check sees imports inside functions and both import forms, not type-checking ones."""
        path = os.path.join(os.environ["TEST_TMPDIR"], "sample.py")
        with open(path, "w") as sample:
            sample.write("from typing import TYPE_CHECKING\nfrom ssd_tflite import a, b\nimport ssd_tflite.c\n\n"
                         "if TYPE_CHECKING:\n    from ssd_tflite import hints\n\n"
                         "def f():\n    from ssd_tflite.d import thing\n    from . import e\n"
                         "    from .f import other\n")
        self.assertEqual(imported_modules(path), ["a", "b", "c", "d", "e", "f"])
        with open(path, "a") as sample:
            sample.write("importlib.import_module('ssd_tflite.g')\n")
        with self.assertRaisesRegex(AssertionError, "importlib.import_module hides a dependency"):
            imported_modules(path)


if __name__ == "__main__":
    absltest.main()
