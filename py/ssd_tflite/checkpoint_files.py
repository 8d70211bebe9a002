"""Writing a checkpoint folder laid out as a model-zoo tarball's, all or nothing."""

import os
import tempfile
from typing import Optional

import numpy as np
import tensorflow as tf

from ssd_tflite import atomic_files
from ssd_tflite.errors import InternalError

# As tools/private/constants.bzl names them for the rules (synthetic_ssd_checkpoint declares these files).
PREFIX = "model.ckpt"
INDEX_FILE = PREFIX + ".index"
DATA_SHARD = PREFIX + ".data-00000-of-00001"  # the one shard write_checkpoint writes
STATE_FILE = "checkpoint"
CONFIG_FILE = "pipeline.config"


def write_checkpoint(prefix: str, values: dict[str, np.ndarray]) -> None:
    """Writes a TF2-readable V2 checkpoint (`prefix.index`, `prefix.data-00000-of-00001`)."""
    names = sorted(values)
    tf.raw_ops.SaveV2(prefix=prefix, tensor_names=names, shape_and_slices=[""] * len(names),
                      tensors=[tf.constant(values[name]) for name in names])


def write_directory(directory: str, values: dict[str, np.ndarray], pipeline_config_path: str,
                    config_text: Optional[str] = None) -> None:
    """`model.ckpt.{index,data-00000-of-00001}`, `checkpoint` and `pipeline.config` in `directory`.

    The config is `config_text` if given, else a byte copy of the file at `pipeline_config_path`.
    """
    with tempfile.TemporaryDirectory() as staging:
        write_checkpoint(os.path.join(staging, PREFIX), values)
        files = {}
        for name in sorted(os.listdir(staging)):
            with open(os.path.join(staging, name), "rb") as staged:
                files[name] = staged.read()
    if sorted(files) != [DATA_SHARD, INDEX_FILE]:
        raise InternalError(f"SaveV2 wrote {sorted(files)}, not the {DATA_SHARD} and {INDEX_FILE} of the zoo's layout")
    files[STATE_FILE] = f'model_checkpoint_path: "{PREFIX}"\nall_model_checkpoint_paths: "{PREFIX}"\n'.encode()
    if config_text is None:
        with open(pipeline_config_path, "rb") as config:
            files[CONFIG_FILE] = config.read()
    else:
        files[CONFIG_FILE] = config_text.encode()
    atomic_files.write_files(directory, files)
