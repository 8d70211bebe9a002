"""TFLite Model Metadata for detection models: written into the model, and read back.

The format is tflite-support's `metadata_schema.fbs` (file identifier M001):
a `ModelMetadata` flatbuffer stored in one of the model's buffers, listed in
the model's `metadata` as `TFLITE_METADATA`, with its associated files (here
the labels) appended to the model as a zip archive. MediaPipe Tasks and the
TFLite Support libraries read it. Tables are written field by field with the
`flatbuffers` builder; the slot numbers below are the schema's field order
(a union takes two slots: its type, then its value). Reading needs no
TensorFlow, so that `detect` starts fast.
"""

import dataclasses
import io
import struct
import zipfile
import zlib
from typing import Optional, Sequence

import flatbuffers
from flatbuffers import table as flatbuffers_table

from ssd_tflite import architecture, flatbuffer_model
from ssd_tflite.errors import InputError

METADATA_NAME = "TFLITE_METADATA"
FILE_IDENTIFIER = b"M001"
MIN_PARSER_VERSION = "1.0.0"  # every field written here is in schema 1.0
LABELS_FILE = "labels.txt"
# The output tensors of TFLite_Detection_PostProcess, by the names MediaPipe's detector looks for.
OUTPUT_NAMES = ("location", "category", "score", "number of detections")

# Schema enums.
_IMAGE_PROPERTIES, _FEATURE_PROPERTIES, _BOUNDING_BOX_PROPERTIES = 2, 1, 3  # ContentProperties
_NORMALIZATION_OPTIONS = 1  # ProcessUnitOptions
_RGB = 1  # ColorSpaceType
_BOUNDARIES = 1  # BoundingBoxType (coordinate type RATIO is the default, 0)
_TENSOR_VALUE_LABELS = 3  # AssociatedFileType
# TFLite_Detection_PostProcess boxes are [ymin, xmin, ymax, xmax]: where left, top, right, bottom are.
_BOX_ORDER = (1, 0, 3, 2)
# A fixed timestamp for the zip entries, so that equal inputs give equal bytes.
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)

# Bounds on the zip appended to a model, which a hostile file can make a zip bomb. Our writer packs
# one file, tflite-support one per associated file (labels, labels per locale, vocabularies): a few.
MAX_PACKED_FILES = 64
# COCO's 90 labels are 661 bytes; the longest class list in common use, ImageNet-21k's 21,841
# classes, is 0.2 MB as WordNet ids and under 1 MB with names. 4 MiB leaves room above that.
MAX_PACKED_FILE_BYTES = 4 << 20
# Label lists deflate 1.7x (COCO) to 4.4x (class_1..class_90); a zip bomb ~1000x (deflate's limit).
# Beyond the first 64 KiB, where even 1000 lines of "???" (129x) are harmless, a packed file may
# expand to at most 100x its compressed size.
MAX_COMPRESSION_RATIO = 100
RATIO_FREE_BYTES = 64 << 10
_READ_CHUNK_BYTES = 64 << 10
_READABLE_COMPRESSION = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)
_ENCRYPTED = 0x1  # general purpose flag bit 0
# What zipfile raises for a damaged archive: BadZipFile mostly, ValueError for an offset before the
# start, NotImplementedError for an unknown zip version, KeyError for a missing file, zlib.error for a
# broken deflate stream; UnicodeDecodeError (labels that are not UTF-8) is a ValueError too.
_DAMAGED_ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, KeyError, ValueError, NotImplementedError, OSError, EOFError)
# What reading a damaged ModelMetadata raises (80,000 fuzzed buffers of three models): struct.error for an
# offset outside the buffer, IndexError for a missing or overlong vector, TypeError for an offset that
# flatbuffers' number check refuses, UnicodeDecodeError for a name that is not UTF-8.
_DAMAGED_METADATA_ERRORS = (struct.error, IndexError, TypeError, UnicodeDecodeError)


@dataclasses.dataclass(frozen=True)
class DetectorMetadata:
    """What a detection model's metadata says."""
    name: str
    description: str
    version: str
    mean: tuple[float, ...]  # float input = (pixel - mean) / std, per RGB channel
    std: tuple[float, ...]
    labels: tuple[str, ...]  # by class index


class _Writer:
    def __init__(self) -> None:
        self.builder = flatbuffers.Builder(1024)

    def offsets(self, offsets: Sequence[int]) -> int:
        self.builder.StartVector(4, len(offsets), 4)
        for offset in reversed(offsets):
            self.builder.PrependUOffsetTRelative(offset)
        return self.builder.EndVector()

    def scalars(self, values: Sequence[float], prepend: str) -> int:
        self.builder.StartVector(4, len(values), 4)
        for value in reversed(values):
            getattr(self.builder, prepend)(value)
        return self.builder.EndVector()

    def table(self, fields: dict[int, tuple[str, object]]) -> int:
        """A table from slot -> (kind, value); kind: offset, int8, uint8 or int32. Children come first."""
        self.builder.StartObject(max(fields) + 1 if fields else 0)
        for slot, (kind, value) in sorted(fields.items()):
            if kind == "offset":
                self.builder.PrependUOffsetTRelativeSlot(slot, value, 0)
            elif kind == "int8":
                self.builder.PrependInt8Slot(slot, value, 0)
            elif kind == "uint8":
                self.builder.PrependUint8Slot(slot, value, 0)
            else:
                self.builder.PrependInt32Slot(slot, value, 0)
        return self.builder.EndObject()

    def content(self, properties_type: int, properties: int, dimension: Optional[int]) -> int:
        fields = {0: ("uint8", properties_type), 1: ("offset", properties)}
        if dimension is not None:  # ValueRange: the dimension holding the objects' values
            fields[2] = ("offset", self.table({0: ("int32", dimension), 1: ("int32", dimension)}))
        return self.table(fields)

    def tensor(self, name: str, description: str, content: int, process_units: Sequence[int] = (),
               stats: Optional[int] = None, associated_files: Sequence[int] = ()) -> int:
        fields = {0: ("offset", self.builder.CreateString(name)),
                  1: ("offset", self.builder.CreateString(description)),
                  3: ("offset", content)}
        if process_units:
            fields[4] = ("offset", self.offsets(process_units))
        if stats is not None:
            fields[5] = ("offset", stats)
        if associated_files:
            fields[6] = ("offset", self.offsets(associated_files))
        return self.table(fields)


def metadata_buffer(metadata: DetectorMetadata, height: int, width: int) -> bytes:
    """The ModelMetadata flatbuffer of a detect.tflite with `metadata` and a height x width input."""
    writer = _Writer()
    mean = [float(value) for value in metadata.mean]
    std = [float(value) for value in metadata.std]
    normalization = writer.table({0: ("offset", writer.scalars(mean, "PrependFloat32")),
                                  1: ("offset", writer.scalars(std, "PrependFloat32"))})
    process_unit = writer.table({0: ("uint8", _NORMALIZATION_OPTIONS), 1: ("offset", normalization)})
    stats = writer.table({0: ("offset", writer.scalars([(255.0 - m) / s for m, s in zip(mean, std)], "PrependFloat32")),
                          1: ("offset", writer.scalars([(0.0 - m) / s for m, s in zip(mean, std)], "PrependFloat32"))})
    image_size = writer.table({0: ("int32", width), 1: ("int32", height)})
    image = writer.table({0: ("int8", _RGB), 1: ("offset", image_size)})
    image_tensor = writer.tensor(
        "image", f"RGB image of {width}x{height} pixels; a float input is (pixel - mean) / std per channel.",
        writer.content(_IMAGE_PROPERTIES, image, None), [process_unit], stats)

    box_properties = writer.table({0: ("offset", writer.scalars(_BOX_ORDER, "PrependUint32")),
                                   1: ("int8", _BOUNDARIES)})
    labels = writer.table({0: ("offset", writer.builder.CreateString(LABELS_FILE)),
                           1: ("offset", writer.builder.CreateString("Class names by class index.")),
                           2: ("int8", _TENSOR_VALUE_LABELS)})
    outputs = [
        writer.tensor(OUTPUT_NAMES[0], "Boxes [ymin, xmin, ymax, xmax] as fractions of the image.",
                      writer.content(_BOUNDING_BOX_PROPERTIES, box_properties, 2)),
        writer.tensor(OUTPUT_NAMES[1], "Class index of each box; the labels file names them.",
                      writer.content(_FEATURE_PROPERTIES, writer.table({}), 2), associated_files=[labels]),
        writer.tensor(OUTPUT_NAMES[2], "Score of each box.", writer.content(_FEATURE_PROPERTIES, writer.table({}), 2)),
        writer.tensor(OUTPUT_NAMES[3], "Number of boxes found.",
                      writer.content(_FEATURE_PROPERTIES, writer.table({}), None)),
    ]
    subgraph = writer.table({2: ("offset", writer.offsets([image_tensor])), 3: ("offset", writer.offsets(outputs))})
    root = writer.table({0: ("offset", writer.builder.CreateString(metadata.name)),
                         1: ("offset", writer.builder.CreateString(metadata.description)),
                         2: ("offset", writer.builder.CreateString(metadata.version)),
                         3: ("offset", writer.offsets([subgraph])),
                         7: ("offset", writer.builder.CreateString(MIN_PARSER_VERSION))})
    writer.builder.Finish(root, file_identifier=FILE_IDENTIFIER)
    return bytes(writer.builder.Output())


def with_labels_zip(model: bytes, labels: Sequence[str]) -> bytes:
    """The model with a zip of the labels file appended, offsets counted from the model's start."""
    archive = io.BytesIO(model)
    archive.seek(0, io.SEEK_END)
    with zipfile.ZipFile(archive, "a", zipfile.ZIP_STORED) as packed:  # "a" on a non-zip appends one
        entry = zipfile.ZipInfo(LABELS_FILE, date_time=_ZIP_DATE)
        entry.external_attr = 0o644 << 16
        packed.writestr(entry, "".join(label + "\n" for label in labels))
    return archive.getvalue()


def _field(table: flatbuffers_table.Table, slot: int) -> int:
    """The absolute position of a table's field `slot`, or 0 when it is absent."""
    offset = table.Offset(4 + 2 * slot)
    return table.Pos + offset if offset else 0


def _child(table: flatbuffers_table.Table, slot: int) -> Optional[flatbuffers_table.Table]:
    position = _field(table, slot)
    return flatbuffers_table.Table(table.Bytes, table.Indirect(position)) if position else None


def _vector(table: flatbuffers_table.Table, slot: int) -> list[int]:
    """The positions of the 4-byte elements of a table's vector field `slot`; IndexError past the buffer's end."""
    position = _field(table, slot)
    if not position:
        return []
    start, length = table.Vector(position - table.Pos), table.VectorLen(position - table.Pos)
    if start + 4 * length > len(table.Bytes):  # a damaged length would make a list of up to 2^32 positions
        raise IndexError(f"a vector of {length} elements at {start} ends past the buffer's {len(table.Bytes)} bytes")
    return [start + 4 * index for index in range(length)]


def _root(data: bytes) -> flatbuffers_table.Table:
    return flatbuffers_table.Table(data, flatbuffers.encode.Get(flatbuffers.packer.uoffset, data, 0))


def _text(table: flatbuffers_table.Table, slot: int) -> str:
    position = _field(table, slot)
    return table.String(position).decode() if position else ""


def embedded_buffer(content: bytes, path: str = "model") -> Optional[bytes]:
    """The TFLITE_METADATA buffer of the .tflite `content` (read from `path`, named in errors), or None."""
    model = flatbuffer_model.load(content, path)  # checked: every metadata entry names an existing buffer
    for entry in model.metadata or []:
        if flatbuffer_model.tensor_name(entry) == METADATA_NAME:
            data = model.buffers[entry.buffer].data
            return b"" if data is None else bytes(data)
    return None


def _expansion_limit(compressed: int) -> int:
    """How many bytes a packed file of `compressed` bytes may expand to."""
    return min(MAX_PACKED_FILE_BYTES, max(RATIO_FREE_BYTES, MAX_COMPRESSION_RATIO * compressed))


def _check_expansion(path: str, info: zipfile.ZipInfo, size: int, what: str) -> None:
    if size > _expansion_limit(info.compress_size):
        raise InputError(f"{path}: its packed {info.filename} {what} {size} bytes from {info.compress_size} "
                         f"compressed; a packed file may have at most {MAX_PACKED_FILE_BYTES} bytes and, beyond "
                         f"{RATIO_FREE_BYTES}, {MAX_COMPRESSION_RATIO}x its compressed size: a zip bomb?")


def _bounded_read(path: str, packed: zipfile.ZipFile, name: str) -> bytes:
    """The packed file `name`, refused as soon as it declares or expands past its limit."""
    info = packed.getinfo(name)
    if info.compress_type not in _READABLE_COMPRESSION or info.flag_bits & _ENCRYPTED:
        raise InputError(f"{path}: its packed {name} is encrypted or compressed with method {info.compress_type}; "
                         f"labels are read stored ({zipfile.ZIP_STORED}) or deflated ({zipfile.ZIP_DEFLATED})")
    _check_expansion(path, info, info.file_size, "declares")
    # zipfile stops at the declared size (its CRC check then fails): counting what comes out bounds
    # the read without relying on that.
    chunks, size = [], 0
    with packed.open(info) as member:
        while chunk := member.read(_READ_CHUNK_BYTES):
            size += len(chunk)
            _check_expansion(path, info, size, "expands to at least")
            chunks.append(chunk)
    return b"".join(chunks)


def _packed_labels(path: str, content: bytes) -> tuple[str, ...]:
    """The labels file zipped onto the model `content` (read from `path`)."""
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as packed:
            count = len(packed.infolist())
            if count > MAX_PACKED_FILES:
                raise InputError(f"{path}: {count} files are packed with it, more than the {MAX_PACKED_FILES} "
                                 "a model's metadata may have: a zip bomb?")
            return tuple(_bounded_read(path, packed, LABELS_FILE).decode().splitlines())
    except _DAMAGED_ZIP_ERRORS as error:
        raise InputError(f"{path}: its metadata names {LABELS_FILE}, which is not packed with it intact: "
                         f"{error}") from None


def read(path: str) -> Optional[DetectorMetadata]:
    """The detection metadata embedded in the model at `path`, or None when it carries none."""
    try:
        with open(path, "rb") as model_file:
            content = model_file.read()
    except OSError as error:
        raise InputError(f"{path}: cannot read the model: {error.strerror}") from None
    data = embedded_buffer(content, path)
    if data is None:
        return None
    if data[4:8] != FILE_IDENTIFIER:
        raise InputError(f"{path}: {METADATA_NAME} is not a metadata flatbuffer ({FILE_IDENTIFIER.decode()})")
    try:
        root = _root(data)
        subgraph = flatbuffers_table.Table(data, root.Indirect(_vector(root, 3)[0]))
        image = flatbuffers_table.Table(data, subgraph.Indirect(_vector(subgraph, 2)[0]))
        units = [flatbuffers_table.Table(data, image.Indirect(position)) for position in _vector(image, 4)]
        normalizations = [_child(unit, 1) for unit in units if _field(unit, 0) and flatbuffers.encode.Get(
            flatbuffers.packer.uint8, data, _field(unit, 0)) == _NORMALIZATION_OPTIONS]
        floats = [tuple(float(flatbuffers.encode.Get(flatbuffers.packer.float32, data, position))
                        for position in _vector(normalization, slot))
                  for normalization in normalizations[:1] if normalization for slot in (0, 1)]
        names = _text(root, 0), _text(root, 1), _text(root, 2)
    except _DAMAGED_METADATA_ERRORS as error:
        raise InputError(f"{path}: its {METADATA_NAME} is damaged ({type(error).__name__}: {error})") from None
    if not floats:
        raise InputError(f"{path}: its metadata has no NormalizationOptions for the input image")
    mean, std = architecture.checked_normalization(*floats, f"{path}: its metadata's NormalizationOptions")
    return DetectorMetadata(*names, mean, std, _packed_labels(path, content))
