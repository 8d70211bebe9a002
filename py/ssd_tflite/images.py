"""Images for a detector: reading a photo file as RGB, and resizing and normalizing its pixels."""

import warnings
from typing import BinaryIO, Sequence

import numpy as np
from PIL import Image, UnidentifiedImageError

from ssd_tflite.errors import InputError

# What photos and screenshots come as, and what browsers (the demo page) decode too. Not Pillow's
# other formats: PostScript would run Ghostscript, and TIFF, JPEG 2000, PSD, ICO, ... bring
# decoders that no photo needs.
IMAGE_FORMATS = ("JPEG", "PNG", "BMP", "GIF", "WEBP")
# What Pillow raises for a damaged file: truncation is an OSError, an oversized PNG text chunk a
# ValueError, a broken chunk a SyntaxError, a missing frame an EOFError.
_DECODING_ERRORS = (OSError, ValueError, SyntaxError, EOFError)
_BOMB_ERRORS = (Image.DecompressionBombError, Image.DecompressionBombWarning)


def _decoded(stream: BinaryIO) -> Image.Image:
    """The image in `stream` as RGB. Pillow's decompression-bomb warning (above Image.MAX_IMAGE_PIXELS,
    89.5 megapixels: beyond 50-megapixel phone photos, 268 MB as RGB) is an error here."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with Image.open(stream, formats=IMAGE_FORMATS) as image:
            return image.convert("RGB")


def load_image(path: str) -> Image.Image:
    """The image file at `path` (JPEG, PNG, BMP, GIF or WebP) as RGB; InputError if it is anything else."""
    try:
        stream = open(path, "rb")
    except FileNotFoundError:
        raise InputError(f"{path}: no such image file") from None
    except OSError as error:
        raise InputError(f"{path}: cannot read the image: {error.strerror}") from None
    with stream:
        try:
            return _decoded(stream)
        except UnidentifiedImageError:
            raise InputError(f"{path}: not an image in a format we read ({', '.join(IMAGE_FORMATS)}); "
                             "convert it to one") from None
        except _BOMB_ERRORS as error:
            raise InputError(f"{path}: too large to be a photo for a detector ({error}); scale it down") from None
        except _DECODING_ERRORS as error:
            raise InputError(f"{path}: a damaged image ({type(error).__name__}: {error})") from None


def resized_pixels(image: Image.Image, height: int, width: int) -> np.ndarray:
    """The image resized (bilinear) to height x width, as float32 RGB pixels [H, W, 3]."""
    return np.asarray(image.resize((width, height), Image.BILINEAR), np.float32)


def normalized_pixels(image: Image.Image, height: int, width: int, mean: Sequence[float],
                      std: Sequence[float]) -> np.ndarray:
    """(pixel - mean) / std per RGB channel of the resized image, float32 [H, W, 3]."""
    pixels = resized_pixels(image, height, width)
    return ((pixels - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)).astype(np.float32)
