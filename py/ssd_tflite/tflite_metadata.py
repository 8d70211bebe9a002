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
import zipfile
from typing import Optional, Sequence

import flatbuffers
from flatbuffers import table as flatbuffers_table

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
    position = _field(table, slot)
    if not position:
        return []
    start = table.Vector(position - table.Pos)
    return [start + 4 * index for index in range(table.VectorLen(position - table.Pos))]


# Slots of the TFLite schema's Model, Metadata and Buffer tables that lead to a metadata buffer.
_MODEL_BUFFERS, _MODEL_METADATA, _METADATA_NAME, _METADATA_BUFFER, _BUFFER_DATA = 4, 6, 0, 1, 0


def _root(data: bytes) -> flatbuffers_table.Table:
    return flatbuffers_table.Table(data, flatbuffers.encode.Get(flatbuffers.packer.uoffset, data, 0))


def _text(table: flatbuffers_table.Table, slot: int) -> str:
    position = _field(table, slot)
    return table.String(position).decode() if position else ""


def embedded_buffer(model: bytes) -> Optional[bytes]:
    """The TFLITE_METADATA buffer of a .tflite, or None."""
    root = _root(model)
    for position in _vector(root, _MODEL_METADATA):
        entry = flatbuffers_table.Table(model, root.Indirect(position))
        if _text(entry, _METADATA_NAME) == METADATA_NAME:
            slot = _field(entry, _METADATA_BUFFER)
            index = flatbuffers.encode.Get(flatbuffers.packer.uoffset, model, slot) if slot else 0
            buffer = flatbuffers_table.Table(model, root.Indirect(_vector(root, _MODEL_BUFFERS)[index]))
            data = _field(buffer, _BUFFER_DATA)
            start = buffer.Vector(data - buffer.Pos)
            return model[start:start + buffer.VectorLen(data - buffer.Pos)]
    return None


def read(path: str) -> Optional[DetectorMetadata]:
    """The detection metadata embedded in the model at `path`, or None when it carries none."""
    try:
        with open(path, "rb") as model_file:
            model = model_file.read()
        data = embedded_buffer(model)
    except OSError as error:
        raise InputError(f"{path}: cannot read the model: {error.strerror}") from None
    except Exception as error:  # a corrupt flatbuffer provokes whatever the reader trips on
        raise InputError(f"{path}: corrupt TFLite flatbuffer ({type(error).__name__}: {error})") from None
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
                  for normalization in normalizations[:1] for slot in (0, 1)]
        names = _text(root, 0), _text(root, 1), _text(root, 2)
    except Exception as error:  # damaged metadata provokes whatever the reader trips on
        raise InputError(f"{path}: its {METADATA_NAME} is damaged ({type(error).__name__}: {error})") from None
    if not floats:
        raise InputError(f"{path}: its metadata has no NormalizationOptions for the input image")
    try:
        with zipfile.ZipFile(io.BytesIO(model)) as packed:
            labels = tuple(packed.read(LABELS_FILE).decode().splitlines())
    except (zipfile.BadZipFile, KeyError, UnicodeDecodeError, OSError, EOFError) as error:
        raise InputError(f"{path}: its metadata names {LABELS_FILE}, which is not packed with it intact: "
                         f"{error}") from None
    return DetectorMetadata(*names, *floats, labels)
