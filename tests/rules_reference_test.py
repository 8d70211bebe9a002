"""docs/rules.md documents exactly the public Starlark API, member by member.

Public is what the four public .bzl files export: every top-level name of
tools/defs.bzl, tools/repositories.bzl, tools/extensions.bzl and
tools/python_toolchain.bzl that does not start with `_`. Each file is evaluated
with starlark-pyo3 (starlark-rust), as in bzlmod_simulation_test, with
stand-ins for Bazel's API that record what `rule`, `attr.*`, `provider`,
`tag_class` and `module_extension` declare; a macro's parameters come from its
`def` (Python's own parser reads Starlark's syntax). docs/rules.md gives each
symbol a heading `### \`name\`` (a tag class: `### \`extension.tag\``) under the
heading `## \`//tools:<file>.bzl\`` of the file that exports it, and each
attribute, parameter or field a table row whose first cell is `` `member` ``;
attribute rows give the type and default too. The tests fail on a symbol or
member without its entry, an entry for one that no longer exists, and a type
or default that differs from the .bzl file.
"""

import ast
import json
import os
from typing import Any, NamedTuple, Optional

import starlark
from absl.testing import absltest

from starlark_sources import file_of_label, read_source

PUBLIC_FILES = ("tools/defs.bzl", "tools/extensions.bzl", "tools/python_toolchain.bzl", "tools/repositories.bzl")
REFERENCE = "docs/rules.md"
GLOBALS = starlark.Globals.extended_by([starlark.LibraryExtension.StructType, starlark.LibraryExtension.Json,
                                        starlark.LibraryExtension.Print])
DIALECT = starlark.Dialect.extended()

# Names Starlark itself defines: no stand-in may shadow them.
STARLARK_BUILTINS = frozenset(
    "abs all any bool bytes dict dir enumerate fail float getattr hasattr hash int json len list max min "
    "print range repr reversed sorted str struct tuple type zip True False None".split())

# What the .bzl files call at load time, recording each declaration. Values of other Bazel globals
# (ctx, depset, DefaultInfo, ...) are only used inside functions, which are never called here.
API = '''
def _attribute(type_name, empty):
    def declare(default = empty, mandatory = False, doc = "", **kwargs):
        return struct(type = type_name, default = "mandatory" if mandatory else repr(default))
    return declare

attr = struct(**{type_name: _attribute(type_name, empty) for type_name, empty in [
    ("bool", False), ("int", 0), ("int_list", []), ("label", None), ("label_keyed_string_dict", {}),
    ("label_list", []), ("output", None), ("output_list", []), ("string", ""), ("string_dict", {}),
    ("string_keyed_label_dict", {}), ("string_list", []), ("string_list_dict", {}),
]})

def rule(implementation = None, attrs = {}, doc = "", **kwargs):
    return struct(kind = "test rule" if kwargs.get("test") else "rule", attrs = attrs)

def repository_rule(implementation = None, attrs = {}, doc = "", **kwargs):
    return struct(kind = "repository rule", attrs = attrs)

def provider(doc = "", fields = {}, **kwargs):
    return struct(kind = "provider", fields = list(fields))

def tag_class(attrs = {}, doc = ""):
    return struct(kind = "tag class", attrs = attrs)

def module_extension(implementation = None, tag_classes = {}, doc = "", **kwargs):
    return struct(kind = "module extension", tag_classes = tag_classes)

def _build_setting(flag = False, **kwargs):
    return struct(kind = "build setting")

config = struct(bool = _build_setting, int = _build_setting, string = _build_setting, string_list = _build_setting)

def Label(label):
    return label

def _opaque(*args, **kwargs):
    return None
'''

# Describes each loaded symbol as plain data: structs and dicts become Python dicts.
DESCRIBE = '''
def _describe(value):
    if type(value) == "function":
        return {"kind": "function", "id": str(value)}
    if type(value) == "struct" and hasattr(value, "kind"):
        return value
    return {"kind": "constant"}
'''


def top_level_names(tree: ast.Module) -> list[str]:
    """The top-level names a .bzl file defines (assignments and defs), in order."""
    names = []
    for statement in tree.body:
        if isinstance(statement, ast.FunctionDef):
            names.append(statement.name)
        elif isinstance(statement, ast.Assign):
            names += [target.id for target in statement.targets if isinstance(target, ast.Name)]
    return list(dict.fromkeys(names))


def public_names(tree: ast.Module) -> list[str]:
    """What a .bzl file exports: its top-level names but the private `_` ones (loaded names are not exported)."""
    return [name for name in top_level_names(tree) if not name.startswith("_")]


def free_names(tree: ast.Module) -> set[str]:
    """Names a file reads but never binds (Bazel's globals): each needs a stand-in to compile."""
    read, bound = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (read if isinstance(node.ctx, ast.Load) else bound).add(node.id)
        elif isinstance(node, ast.FunctionDef):
            bound.add(node.name)
            arguments = node.args
            bound.update(argument.arg for argument in arguments.posonlyargs + arguments.args + arguments.kwonlyargs)
            bound.update(argument.arg for argument in (arguments.vararg, arguments.kwarg) if argument)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "load":
            bound.update(keyword.arg for keyword in node.keywords)
            bound.update(argument.value for argument in node.args[1:] if isinstance(argument, ast.Constant))
    return read - bound - STARLARK_BUILTINS - {"load"}


def starlark_repr(value: Any) -> str:
    """A Python literal written as Starlark's repr() writes it."""
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(starlark_repr(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{starlark_repr(key)}: {starlark_repr(item)}" for key, item in value.items()) + "}"
    return repr(value)


def parameters(function: ast.FunctionDef) -> dict[str, str]:
    """A def's parameters -> their defaults as Starlark writes them ("mandatory" when there is none)."""
    arguments = function.args
    positional = arguments.posonlyargs + arguments.args
    defaults = [None] * (len(positional) - len(arguments.defaults)) + arguments.defaults
    members = {argument.arg: default_text(default)
               for argument, default in zip(positional + arguments.kwonlyargs, defaults + arguments.kw_defaults)}
    if arguments.vararg:
        members["*" + arguments.vararg.arg] = "[]"
    if arguments.kwarg:
        members["**" + arguments.kwarg.arg] = "{}"
    return members


def default_text(node: Optional[ast.expr]) -> str:
    """A parameter's default as Starlark's repr() writes it; an expression as written; "mandatory" for none."""
    if node is None:
        return "mandatory"
    try:
        return starlark_repr(ast.literal_eval(node))
    except ValueError:
        return ast.unparse(node)


class Member(NamedTuple):
    type: Optional[str]  # an attribute's attr.<type>; None for parameters and fields
    default: Optional[str]  # Starlark's repr() of the default, or "mandatory"; None for fields


class Symbol(NamedTuple):
    file: str  # the public file that exports it
    kind: str
    members: dict[str, Member]


class Evaluation:
    """Loads .bzl files as Bazel would, with the recording stand-ins, and describes the public ones."""

    def __init__(self) -> None:
        self.loaded: dict[str, starlark.FrozenModule] = {}
        self.trees: dict[str, ast.Module] = {}  # path -> Python's parse of the file

    def tree(self, path: str) -> ast.Module:
        if path not in self.trees:
            self.trees[path] = ast.parse(read_source(path), path)
        return self.trees[path]

    def module(self, path: str, source: str) -> tuple[starlark.Module, starlark.AstModule]:
        """A module with Bazel's stand-ins and an opaque value for every other free name of `source`."""
        module = starlark.Module()
        opaque = sorted(free_names(ast.parse(source, path)) - set(top_level_names(ast.parse(API))))
        starlark.eval(module, starlark.parse("<bazel api>", API + "".join(f"{name} = _opaque\n" for name in opaque),
                                             DIALECT), GLOBALS)
        return module, starlark.parse(path, source, DIALECT)

    def evaluate(self, path: str, source: str) -> starlark.FrozenModule:
        module, parsed = self.module(path, source)
        requested = {load.module_id: list(load.symbols.values()) for load in parsed.loads()}
        package = os.path.dirname(path)
        starlark.eval(module, parsed, GLOBALS, starlark.FileLoader(lambda label: self.load(label, package, requested)))
        return module.freeze()

    def load(self, label: str, package: str, requested: dict[str, list[str]]) -> starlark.FrozenModule:
        path = file_of_label(label, package)
        if path is None:  # another repository's file (@bazel_tools, @bazel_skylib): opaque stand-ins
            module = starlark.Module()
            starlark.eval(module, starlark.parse(label, API + "".join(
                f"{symbol} = _opaque\n" for symbol in requested[label]), DIALECT), GLOBALS)
            return module.freeze()
        if path not in self.loaded:
            self.tree(path)
            self.loaded[path] = self.evaluate(path, read_source(path))
        return self.loaded[path]

    def public_symbols(self, path: str) -> dict[str, Symbol]:
        """Every public name of `path` (and `extension.tag` of each tag class) -> its kind and members."""
        names = public_names(self.tree(path))
        label = "//{}:{}".format(*os.path.split(path))
        source = "".join(f'load("{label}", {name} = "{name}")\n' for name in names) + DESCRIBE + (
            "def describe_all():\n    return {%s}\n" % ", ".join(f'"{name}": _describe({name})' for name in names))
        symbols = {}
        for name, description in self.evaluate("<describe>", source).call("describe_all").items():
            symbols.update(self.symbols(path, name, description))
        return symbols

    def symbols(self, path: str, name: str, description: dict) -> dict[str, Symbol]:
        kind = description["kind"]
        if kind == "function":
            defined_in, _, function_name = description["id"].rpartition(".")
            function = next((statement for statement in self.tree(defined_in).body
                             if isinstance(statement, ast.FunctionDef) and statement.name == function_name), None)
            if function is None:
                raise AssertionError(f"{path} exports {name}, a function that is no top-level def of {defined_in}")
            return {name: Symbol(path, "macro", {
                parameter: Member(None, default) for parameter, default in parameters(function).items()})}
        if kind == "provider":
            return {name: Symbol(path, kind, {field: Member(None, None) for field in description["fields"]})}
        if kind == "module extension":
            symbols = {name: Symbol(path, kind, {})}
            for tag, tag_class in description["tag_classes"].items():
                symbols[f"{name}.{tag}"] = Symbol(path, "tag class", attributes(tag_class))
            return symbols
        if "attrs" in description:
            return {name: Symbol(path, kind, attributes(description))}
        return {name: Symbol(path, kind, {})}


def attributes(description: dict) -> dict[str, Member]:
    """The public attributes of a rule or tag class (private `_` ones are implementation details)."""
    return {name: Member(attribute["type"], attribute["default"])
            for name, attribute in description["attrs"].items() if not name.startswith("_")}


def public_api() -> dict[str, Symbol]:
    evaluation = Evaluation()
    symbols = {}
    for path in PUBLIC_FILES:
        symbols.update(evaluation.public_symbols(path))
    return symbols


class Entry(NamedTuple):
    file: Optional[str]  # the file heading it is under, as a repository path
    line: int
    members: dict[str, dict[str, str]]  # member -> column header -> cell


def code_span(text: str) -> Optional[str]:
    """The content of `text` when it is exactly one `code span`, else None."""
    text = text.strip()
    if len(text) > 2 and text[0] == text[-1] == "`" and text.count("`") == 2:
        return text[1:-1]
    return None


def table_cells(line: str) -> list[str]:
    """The cells of a Markdown table row; `\\|` stays inside its cell."""
    cells, cell, escaped = [], "", False
    for character in line.strip().removeprefix("|").removesuffix("|"):
        if character == "|" and not escaped:
            cells.append(cell.strip())
            cell = ""
        else:
            cell += character
        escaped = character == "\\"
    return cells + [cell.strip()]


def read_reference(text: str) -> tuple[dict[str, Entry], list[str]]:
    """The entries of docs/rules.md (`### \\`name\\`` headings and their member tables), and its structural errors."""
    entries: dict[str, Entry] = {}
    errors = []
    file, entry, columns, in_code = None, None, None, False
    for number, line in enumerate(text.splitlines(), 1):
        if line.startswith("```"):
            in_code = not in_code
            continue
        if in_code:
            continue
        if line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            name = code_span(line[level:])
            columns = None
            if level <= 2:
                file = file_of_label(name, "") if level == 2 and name and name.endswith(".bzl") else None
                entry = None
            elif level == 3:
                entry = name if name and all(part.isidentifier() for part in name.split(".")) else None
                if entry in entries:
                    errors.append(f"{REFERENCE}:{number}: a second entry for `{entry}`")
                elif entry:
                    entries[entry] = Entry(file, number, {})
            continue
        if not line.startswith("|"):
            columns = None
            continue
        cells = table_cells(line)
        if columns is None:
            columns = [cell.lower() for cell in cells]
        elif entry and not all(set(cell) <= set("-: ") for cell in cells):
            member = code_span(cells[0])
            if member is None:
                errors.append(f"{REFERENCE}:{number}: the first cell of a member row is its `name`: {line}")
            elif member in entries[entry].members:
                errors.append(f"{REFERENCE}:{number}: `{entry}` lists `{member}` twice")
            else:
                entries[entry].members[member] = dict(zip(columns, cells))
    return entries, errors


def label_of(path: str) -> str:
    return "//{}:{}".format(*os.path.split(path))


class RulesReferenceTest(absltest.TestCase):
    longMessage = False  # the messages below say everything; the lists they come from add nothing

    @classmethod
    def setUpClass(cls):
        cls.api = public_api()
        cls.entries, cls.structure_errors = read_reference(read_source(REFERENCE))

    def test_reads_the_public_api(self):
        # Guards against a vacuous pass: the evaluation finds what is known to be there.
        self.assertEqual(self.api["ssd_tflite_model"].kind, "rule")
        self.assertEqual(self.api["ssd_tflite_model"].members["graph"], Member("label", "mandatory"))
        self.assertEqual(self.api["rules_ssd_tflite.zoo"].kind, "tag class")
        self.assertIn("tflite", self.api["SsdTfliteModelInfo"].members)
        self.assertIn("zoo_sha256", self.api["rules_ssd_tflite_dependencies"].members)

    def test_reference_is_well_formed(self):
        self.assertEmpty(self.structure_errors, "\n".join(self.structure_errors))

    def test_every_public_symbol_has_an_entry(self):
        missing = [f"`{name}` ({symbol.kind}): add a heading ### `{name}` under ## `{label_of(symbol.file)}`, "
                   "with a table of its members" for name, symbol in self.api.items() if name not in self.entries]
        self.assertEmpty(missing, f"{REFERENCE} has no entry for:\n" + "\n".join(missing))

    def test_every_entry_is_a_public_symbol(self):
        stale = [f"`{name}` ({REFERENCE}:{entry.line})" for name, entry in self.entries.items() if name not in self.api]
        self.assertEmpty(stale, f"{REFERENCE} documents what no file of {', '.join(PUBLIC_FILES)} exports "
                                "(renamed or removed? update or delete the entry):\n" + "\n".join(stale))

    def test_every_entry_is_under_its_file(self):
        misplaced = [f"`{name}` ({REFERENCE}:{entry.line}) is exported by {label_of(self.api[name].file)}, "
                     f"but is under {label_of(entry.file) if entry.file else 'no file heading'}"
                     for name, entry in self.entries.items() if name in self.api and entry.file != self.api[name].file]
        self.assertEmpty(misplaced, "\n".join(misplaced))

    def test_every_member_has_a_row_and_every_row_a_member(self):
        problems = []
        for name, symbol in self.api.items():
            if name not in self.entries:
                continue  # reported by test_every_public_symbol_has_an_entry
            documented = self.entries[name].members
            for member in symbol.members.keys() - documented.keys():
                problems.append(f"`{name}` ({symbol.kind}) has `{member}`, which its table in {REFERENCE} lacks")
            for member in documented.keys() - symbol.members.keys():
                problems.append(f"{REFERENCE} lists `{member}` for `{name}` ({symbol.kind}), which has no such member")
            for member, row in documented.items():
                if not list(row.values())[-1]:
                    problems.append(f"{REFERENCE}: `{name}`'s `{member}` has an empty description")
        self.assertEmpty(problems, "\n".join(problems))

    def test_types_and_defaults_are_those_of_the_bzl_files(self):
        problems = []
        for name, symbol in self.api.items():
            documented = self.entries.get(name, Entry(None, 0, {})).members
            for member, declared in symbol.members.items():
                row = documented.get(member)
                if row is None:
                    continue  # reported by test_every_member_has_a_row_and_every_row_a_member
                for column, value in (("type", declared.type), ("default", declared.default)):
                    if value is not None and (row.get(column) or "").strip("`") != value:
                        problems.append(f"`{name}`'s `{member}`: {column} is `{value}`, {REFERENCE} says "
                                        f"{row.get(column, 'nothing (no ' + column + ' column)')!r}")
        self.assertEmpty(problems, "\n".join(problems))


if __name__ == "__main__":
    absltest.main()
