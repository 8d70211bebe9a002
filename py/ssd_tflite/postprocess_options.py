"""The custom options of a `TFLite_Detection_PostProcess` operator: a flexbuffer map, read defensively.

The `flatbuffers.flexbuffers` reader trusts its input: damaged bytes make it
read elsewhere, fail with whatever Python raises, or walk a vector whose size
field says four billion. So only the root map's scalar entries are decoded,
the map's size bounded by the bytes it lives in, and every entry is checked
against the keys and types that TFLite's kernel reads.
"""

import math
import struct
from typing import Union

from flatbuffers import flexbuffers

from ssd_tflite.errors import OptionsError

CUSTOM_CODE = "TFLite_Detection_PostProcess"

# Keys the kernel reads, by the kind of value it reads them as.
COUNT_KEYS = ("max_detections", "max_classes_per_detection", "num_classes")  # integers >= 1
THRESHOLD_KEYS = ("nms_score_threshold", "nms_iou_threshold")  # finite numbers
SCALE_KEYS = ("y_scale", "x_scale", "h_scale", "w_scale")  # finite numbers > 0
OPTIONAL_COUNT_KEYS = ("detections_per_class",)  # integers >= 0 (TOCO files store 0)
OPTIONAL_FLAG_KEYS = ("use_regular_nms",)
INT32_MAX = 2 ** 31 - 1  # the kernel reads counts as int32
# What a damaged flexbuffer makes the reader raise: offsets and sizes past the end, unknown widths and types.
_DECODING_ERRORS = (IndexError, KeyError, TypeError, ValueError, OverflowError, AssertionError, struct.error)


class NotScalar:
    """An entry that is a string, vector, map or blob: left undecoded."""

    def __repr__(self) -> str:
        return "a non-scalar value"


Scalar = Union[bool, int, float, NotScalar]


def _scalar(value: flexbuffers.Ref) -> Scalar:
    if value.IsBool:
        return value.AsBool
    if value.IsInt:
        return value.AsInt
    if value.IsFloat:
        return value.AsFloat
    return NotScalar()


def _entries(raw: bytes) -> dict[str, Scalar]:
    root = flexbuffers.GetRoot(raw)
    if not root.IsMap:
        raise OptionsError("they are not a flexbuffer map")
    entries = root.AsMap
    if len(entries) > len(raw):
        raise OptionsError(f"their map claims {len(entries)} entries in {len(raw)} bytes")
    keys, values = entries.Keys, entries.Values
    return {keys[index].AsKey: _scalar(values[index]) for index in range(len(entries))}


def decode(raw: bytes) -> dict[str, Scalar]:
    """The root map's entries, scalars decoded; OptionsError if `raw` is no readable flexbuffer map."""
    try:
        return _entries(raw)
    except _DECODING_ERRORS as error:
        raise OptionsError(f"they are not a readable flexbuffer ({type(error).__name__}: {error})") from None


def _is_integer(value: Scalar) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Scalar) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _entry_problem(key: str, value: Scalar) -> str:
    """What is wrong with the entry `key` (present), or ''."""
    if key in COUNT_KEYS and not (_is_integer(value) and 1 <= value <= INT32_MAX):
        return f"{key} is {value!r}, not an integer from 1 to {INT32_MAX}"
    if key in OPTIONAL_COUNT_KEYS and not (_is_integer(value) and 0 <= value <= INT32_MAX):
        return f"{key} is {value!r}, not an integer from 0 to {INT32_MAX}"
    if key in THRESHOLD_KEYS and not (_is_number(value) and math.isfinite(value)):
        return f"{key} is {value!r}, not a finite number"
    if key in SCALE_KEYS and not (_is_number(value) and math.isfinite(value) and value > 0):
        return f"{key} is {value!r}, not a finite number > 0"
    if key in OPTIONAL_FLAG_KEYS and not isinstance(value, (bool, int)):
        return f"{key} is {value!r}, not a boolean"
    return ""


def problems(raw: bytes) -> list[str]:
    """Everything wrong with the options `raw`: undecodable, keys missing, values of the wrong kind."""
    try:
        options = decode(raw)
    except OptionsError as error:
        return [str(error)]
    missing = [key for key in (*COUNT_KEYS, *THRESHOLD_KEYS, *SCALE_KEYS) if key not in options]
    found = [f"{', '.join(missing)} missing"] if missing else []
    return found + [problem for key, value in options.items() if (problem := _entry_problem(key, value))]
