"""Runs a `.tflite` model with LiteRT in a child process with bounded memory, time and output.

LiteRT trusts model files: a damaged or hostile one can make it crash, loop
or allocate without bound. So every run of a model is in a child process
with bounded memory, time and output, on the real inputs (up to
INPUTS_PER_CHILD to a child), never once on zeros to stand for them: a
model's memory can depend on its input's values (measured: a model with the
detect.tflite contract whose FILL is sized by the largest pixel peaks at
1063 MiB on zeros, 1832 MiB on a white image), even though our models' runs
peak the same on zeros and on photos (within 0.1 MiB: 58 MiB for SSD
MobileNet v2 quantized to 626 MiB for ResNet50 FPN float). A child that
fails, crashes or runs out of time is an InputError naming the model.
"""

import os
import resource
import signal
import subprocess
import sys
import tempfile
from typing import Sequence

import numpy as np

from ssd_tflite.errors import InputError

# What one run may take. Our largest model, ResNet50 FPN float, peaks at 626 MiB and takes 2 to 5 s here.
MEMORY_BYTES = 16 << 30  # address space
SECONDS = 600
# Inputs one child runs (loading LiteRT and the model once): 16 ResNet50 FPN runs take under 90 s.
INPUTS_PER_CHILD = 16
# The four outputs of D detections take 24 D + 4 bytes: 244 for D = 10, 2.4 KB for D = 100.
OUTPUT_BYTES = 1 << 20
_CHILD = """import sys
import numpy as np
from ai_edge_litert.interpreter import Interpreter
model, work, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
interpreter = Interpreter(model_path=model)
interpreter.allocate_tensors()
for index in range(count):
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], np.load(f"{work}/input{index}.npy"))
    interpreter.invoke()
    outputs = [interpreter.get_tensor(output["index"]) for output in interpreter.get_output_details()]
    np.savez(f"{work}/outputs{index}.npz", *outputs, allow_pickle=False)
"""


def _limit_child() -> None:
    for kind, bound in ((resource.RLIMIT_AS, MEMORY_BYTES), (resource.RLIMIT_FSIZE, OUTPUT_BYTES)):
        _, hard = resource.getrlimit(kind)
        if hard != resource.RLIM_INFINITY:  # a process may only lower its hard limit
            bound = min(bound, hard)
        resource.setrlimit(kind, (bound, bound))


def _failure(run: subprocess.CompletedProcess) -> str:
    """Why a run of LiteRT failed, from its exit status and last line of errors."""
    if run.returncode < 0:
        return f"LiteRT crashed on it ({signal.Signals(-run.returncode).name})"
    last_line = (run.stderr.strip().splitlines() or ["no message"])[-1].rstrip(".")
    return (f"LiteRT failed on it, run with at most {MEMORY_BYTES / (1 << 30):g} GiB of memory and "
            f"{OUTPUT_BYTES} bytes of outputs: {last_line}")


def run_model(model_path: str, tensors: Sequence[np.ndarray]) -> list[list[np.ndarray]]:
    """The model's outputs for each input tensor (at most INPUTS_PER_CHILD), from LiteRT in one child process."""
    with tempfile.TemporaryDirectory(prefix="detect.") as work:
        for index, tensor in enumerate(tensors):
            np.save(os.path.join(work, f"input{index}.npy"), tensor)
        try:
            # -B: no .pyc files, which the output size limit could cut short.
            run = subprocess.run([sys.executable, "-B", "-c", _CHILD, model_path, work, str(len(tensors))],
                                 capture_output=True, text=True, preexec_fn=_limit_child, timeout=SECONDS)
        except subprocess.TimeoutExpired:
            raise InputError(f"{model_path}: LiteRT did not finish running it on {len(tensors)} image(s) within "
                             f"{SECONDS} s (a detect.tflite takes seconds an image). Is the file complete and a "
                             "TFLite detection model?") from None
        if run.returncode:
            raise InputError(f"{model_path}: {_failure(run)}. Is the file complete and a TFLite detection model?")
        results = []
        for index in range(len(tensors)):
            with np.load(os.path.join(work, f"outputs{index}.npz")) as outputs:
                results.append([outputs[f"arr_{output}"] for output in range(len(outputs.files))])
        return results
