"""Reads the Object Detection API's `label_map.pbtxt` into labels by class index.

A label map is a StringIntLabelMap in protobuf text format:

    item { id: 1 name: "/m/01g317" display_name: "person" }

Class index i (what a detect.tflite outputs) is the item with id i + 1; ids
missing in between become `???` lines, as in models/coco_labels.txt (no
background line: id 0 is the OD API's background, which no labels file has).
An item is named by its `display_name` if it has one, else by its `name`: the
zoo's COCO map names classes by Freebase id (`/m/01g317`) and shows them as
`person`, which is what coco_labels.txt and COCO's own categories hold, and
fine-tune maps usually have a `name` only.

Besides id, name and display_name, an item may have `keypoints { id label }`
(the OD API's per-class keypoint names), read and ignored. Any other field is
refused: a misspelt `dispaly_name` would otherwise rename classes silently.

The parser is our own, for the text format's syntax as label maps use it:
`#` comments, `field: value` with an optional `,` or `;` after it, `field { ... }`
or `field: { ... }`, decimal integers, and strings in '...' or "..." with C
escapes and \\u, \\U (adjacent strings concatenate; the bytes are UTF-8). It
keeps the line of every token, so that each refusal names the file and line.
"""

import dataclasses
import re
from typing import Iterator, Optional, Union

from ssd_tflite import pipeline_schema
from ssd_tflite.errors import InputError

UNKNOWN_LABEL = "???"
# A labels file has one line per class: as many classes as a pipeline.config may have.
MAX_ID = int(pipeline_schema.RANGES["Ssd.num_classes"].high)


@dataclasses.dataclass(frozen=True)
class _Token:
    kind: str  # "name", "integer", "string" or a punctuation character
    text: str  # the source text; for a string, its decoded value
    line: int


@dataclasses.dataclass(frozen=True)
class _Field:
    name: str
    line: int
    value: Union[_Token, list["_Field"]]  # a scalar, or the fields of a { ... } block


_TOKEN = re.compile(r"""
    (?P<space>[ \t\r\f\v]+|\#[^\n]*)
  | (?P<newline>\n)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<integer>[-+]?[0-9]+)(?![A-Za-z0-9_.])
  | (?P<string>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')
  | (?P<punctuation>[{}:;,])
""", re.VERBOSE)
_SIMPLE_ESCAPES = {"n": b"\n", "t": b"\t", "r": b"\r", "a": b"\a", "b": b"\b", "f": b"\f", "v": b"\v",
                   "\\": b"\\", "'": b"'", '"': b'"', "?": b"?"}
_ESCAPE = re.compile(r"\\(?:([0-7]{1,3})|x([0-9A-Fa-f]{1,2})|u([0-9A-Fa-f]{4})|U([0-9A-Fa-f]{8})|(.))")

# Field name -> its kind: "integer", "string", or the fields of a nested block.
_KEYPOINT_FIELDS = {"id": "integer", "label": "string"}
_ITEM_FIELDS = {"id": "integer", "name": "string", "display_name": "string", "keypoints": _KEYPOINT_FIELDS}
_REPEATED = {"item", "keypoints"}


def _code_point(value: int, literal: str, path: str, line: int) -> bytes:
    """The UTF-8 bytes of a \\u or \\U escape."""
    try:
        return chr(value).encode("utf-8")
    except (ValueError, UnicodeEncodeError):  # beyond U+10FFFF, or a lone surrogate
        raise InputError(f"{path}:{line}: the escape U+{value:X} in the string {literal} is no character") from None


def _string_value(literal: str, path: str, line: int) -> str:
    """The text of a quoted string literal: C escapes decoded to bytes, the bytes read as UTF-8."""
    encoded = bytearray()
    position = 0
    body = literal[1:-1]
    for escape in _ESCAPE.finditer(body):
        encoded += body[position:escape.start()].encode("utf-8")
        octal, hexadecimal, code_point, long_code_point, simple = escape.groups()
        if octal:
            encoded.append(int(octal, 8) & 0xFF)
        elif hexadecimal:
            encoded.append(int(hexadecimal, 16))
        elif code_point or long_code_point:
            encoded += _code_point(int(code_point or long_code_point, 16), literal, path, line)
        elif simple in _SIMPLE_ESCAPES:
            encoded += _SIMPLE_ESCAPES[simple]
        else:
            raise InputError(f"{path}:{line}: unknown escape \\{simple} in the string {literal}")
        position = escape.end()
    encoded += body[position:].encode("utf-8")
    try:
        return encoded.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InputError(f"{path}:{line}: the string {literal} is not UTF-8 ({error})") from None


def _tokens(text: str, path: str) -> Iterator[_Token]:
    line, position = 1, 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            rest = text[position:].split("\n", 1)[0]
            if rest[0] in "'\"":
                raise InputError(f"{path}:{line}: the string {rest} is not closed on its line: end it with {rest[0]}")
            raise InputError(f"{path}:{line}: unexpected text {rest[:40]!r}; a label map holds "
                             "item { id: N name: \"...\" display_name: \"...\" } blocks")
        kind = match.lastgroup
        if kind == "newline":
            line += 1
        elif kind == "string":
            yield _Token(kind, _string_value(match.group(), path, line), line)
        elif kind != "space":
            yield _Token(kind if kind != "punctuation" else match.group(), match.group(), line)
        position = match.end()


class _Parser:
    """The text format's structure: fields with scalar values or { ... } blocks, each with its line."""

    def __init__(self, text: str, path: str):
        self.path = path
        self.tokens = list(_tokens(text, path))
        self.position = 0
        self.last_line = text.count("\n") + 1

    def _peek(self) -> Optional[_Token]:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def _next(self, expected: str) -> _Token:
        token = self._peek()
        if token is None:
            raise InputError(f"{self.path}:{self.last_line}: the file ends where {expected} should follow")
        self.position += 1
        return token

    def _skip(self, kinds: str) -> bool:
        token = self._peek()
        if token is not None and token.kind in kinds:
            self.position += 1
            return True
        return False

    def fields(self, closing: Optional[_Token]) -> list[_Field]:
        """Fields up to the `}` that closes the block opened by `closing` (None: up to the end of the file)."""
        fields = []
        while True:
            token = self._peek()
            if token is None:
                if closing is not None:
                    raise InputError(f"{self.path}:{closing.line}: this {{ is never closed by a }}")
                return fields
            if token.kind == "}":
                if closing is None:
                    raise InputError(f"{self.path}:{token.line}: a }} that closes no block")
                self.position += 1
                return fields
            fields.append(self._field())
            self._skip(",;")

    def _field(self) -> _Field:
        name = self._next("a field name")
        if name.kind != "name":
            raise InputError(f"{self.path}:{name.line}: expected a field name, found {name.text!r}")
        colon = self._skip(":")
        value = self._next(f"a value for {name.text}")
        if value.kind == "{":
            return _Field(name.text, name.line, self.fields(value))
        if not colon:
            raise InputError(f"{self.path}:{value.line}: expected ':' or '{{' after {name.text}, found {value.text!r}")
        if value.kind == "string":  # adjacent strings concatenate
            parts = [value.text]
            while (following := self._peek()) is not None and following.kind == "string":
                parts.append(self._next("a string").text)
                value = _Token("string", "".join(parts), value.line)
        elif value.kind not in ("integer", "name"):
            raise InputError(f"{self.path}:{value.line}: expected a value for {name.text}, found {value.text!r}")
        return _Field(name.text, name.line, value)


def _checked(fields: list[_Field], schema: dict, where: str, path: str) -> dict[str, list[_Field]]:
    """The fields by name, checked against `schema` (name -> kind): known, of the right kind, not repeated
    unless repeatable."""
    by_name: dict[str, list[_Field]] = {}
    for field in fields:
        kind = schema.get(field.name)
        if kind is None:
            known = ", ".join(schema)
            raise InputError(f"{path}:{field.line}: unknown field {field.name!r} in this {where} (it has {known})")
        if isinstance(kind, dict):
            if not isinstance(field.value, list):
                raise InputError(f"{path}:{field.line}: {field.name} is a block: write {field.name} {{ ... }}")
            _checked(field.value, kind, field.name, path)
        elif isinstance(field.value, list) or field.value.kind != kind:
            wanted = "an integer" if kind == "integer" else "a quoted string"
            raise InputError(f"{path}:{field.line}: {field.name} takes {wanted}")
        if field.name in by_name and field.name not in _REPEATED:
            raise InputError(f"{path}:{field.line}: a second {field.name} in this {where} "
                             f"(the first is on line {by_name[field.name][0].line})")
        by_name.setdefault(field.name, []).append(field)
    return by_name


def _item_label(item: _Field, fields: dict[str, list[_Field]], path: str) -> str:
    for key in ("display_name", "name"):
        if key in fields and fields[key][0].value.text:
            label = fields[key][0].value.text
            if "\n" in label or "\r" in label:
                raise InputError(f"{path}:{fields[key][0].line}: the {key} holds a line break, but a labels "
                                 "file has one class per line")
            return label
    raise InputError(f"{path}:{item.line}: this item has no display_name or name: give it one")


def parse(text: str, path: str = "label_map.pbtxt", num_classes: Optional[int] = None) -> list[str]:
    """Labels by class index (class i: the item with id i + 1), `???` where the map has no such id.

    With `num_classes` (a pipeline.config's), ids above it are refused and
    the labels run to it: one line per class, as the rules' labels file has.
    """
    max_id = MAX_ID if num_classes is None else num_classes
    top = _checked(_Parser(text, path).fields(None), {"item": _ITEM_FIELDS}, "label map", path)
    labels_by_id: dict[int, tuple[str, int]] = {}
    for item in top.get("item", []):
        fields = _checked(item.value, _ITEM_FIELDS, "item", path)
        if "id" not in fields:
            raise InputError(f"{path}:{item.line}: this item has no id: give it id: N, N from 1")
        id_field = fields["id"][0]
        class_id = int(id_field.value.text)
        if not 1 <= class_id <= max_id:
            why = f" (num_classes is {num_classes})" if num_classes is not None else ""
            if class_id == 0:
                why = " (0 is the background, which has no line in a labels file)"
            raise InputError(f"{path}:{id_field.line}: id {class_id} is outside 1..{max_id}{why}")
        if class_id in labels_by_id:
            raise InputError(f"{path}:{id_field.line}: id {class_id} again (first on line "
                             f"{labels_by_id[class_id][1]}): each class needs its own id")
        labels_by_id[class_id] = _item_label(item, fields, path), id_field.line
    if not labels_by_id:
        raise InputError(f"{path}: no item {{ id: N name: \"...\" }} in the label map")
    last_id = max(labels_by_id) if num_classes is None else num_classes
    return [labels_by_id.get(class_id, (UNKNOWN_LABEL, 0))[0] for class_id in range(1, last_id + 1)]


def read(path: str, num_classes: Optional[int] = None) -> list[str]:
    """The labels of the label map file at `path` (see parse)."""
    try:
        with open(path, encoding="utf-8") as map_file:
            text = map_file.read()
    except FileNotFoundError:
        raise InputError(f"{path}: no such label map") from None
    except OSError as error:
        raise InputError(f"{path}: cannot read the label map: {error.strerror}") from None
    except UnicodeDecodeError as error:
        raise InputError(f"{path}: the label map is not UTF-8 text: {error}") from None
    return parse(text, path, num_classes)


def read_labels(path: Optional[str], num_classes: Optional[int] = None) -> list[str]:
    """Class names by class index from a labels file: a label_map.pbtxt (see `read`), or one name per line.

    None without a file (detections are then named class_<id>).
    """
    if not path:
        return []
    if path.endswith(".pbtxt"):
        return read(path, num_classes)
    try:
        with open(path, encoding="utf-8") as labels_file:
            return labels_file.read().splitlines()
    except OSError as error:
        raise InputError(f"{path}: cannot read labels: {error.strerror}") from None
    except UnicodeDecodeError as error:
        raise InputError(f"{path}: labels are not UTF-8 text: {error}") from None
