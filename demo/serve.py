"""Serves a detect.tflite to run in the browser with MediaPipe Tasks Vision, on 127.0.0.1 only.

  bazel run //demo:serve -- --model=bazel-bin/models/ssd_mobilenet_v1_quant_tflite.tflite [--image=photo.jpg]

Open the printed address: choose or drop a photo (or use the webcam), and
the page runs the model with MediaPipe's ObjectDetector (WebAssembly, served
from here, nothing from the internet) and draws what it finds. The model
needs TFLite Model Metadata, which ssd_tflite_model embeds.

For scripts and tests: `--image` is run on page load, `?threshold=0` lowers
the score threshold (default 0.3), and the page writes its detections as JSON
(label, score, box in image pixels) into the element with id `detections`,
and the addresses it fetched into `requests`. Only the Python standard
library is used, so any Python runs it.
"""

import argparse
import http.server
import json
import mimetypes
import os
import sys
from typing import Optional

PAGE_FILES = {"/": "index.html", "/demo.js": "demo.js"}
MEDIAPIPE_PREFIX = "/mediapipe/"
MEDIAPIPE_REPOSITORY = "rules_ssd_tflite_mediapipe_tasks_vision"


def runfiles_root() -> str:
    """The runfiles tree: `<root>/<this repository>/demo/serve.py`."""
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def user_path(path: str) -> str:
    """A path as the user typed it: relative to where `bazel run` was invoked."""
    return os.path.join(os.environ.get("BUILD_WORKING_DIRECTORY", ""), path)


def model_contract(model: str) -> dict:
    """Name and input contract of the model, from the `<name>_metadata.json` the rule writes beside it."""
    contract = {"name": os.path.splitext(os.path.basename(model))[0]}
    sidecar = os.path.splitext(model)[0] + "_metadata.json"
    if os.path.exists(sidecar):
        with open(sidecar) as metadata_file:
            metadata = json.load(metadata_file)
        contract["input"] = metadata.get("input")
        contract["inference_type"] = metadata.get("inference_type")
    return contract


class DemoHandler(http.server.BaseHTTPRequestHandler):
    files: dict[str, str] = {}  # request path -> file
    mediapipe_root = ""
    config = b""

    def log_message(self, format: str, *args) -> None:  # noqa: A002 (the base class's name)
        sys.stderr.write("demo: " + format % args + "\n")

    def do_GET(self) -> None:  # noqa: N802 (the base class's name)
        path = self.path.split("?", 1)[0]
        if path == "/config.json":
            return self.send(self.config, "application/json")
        file = self.files.get(path)
        if file is None and path.startswith(MEDIAPIPE_PREFIX):
            relative = os.path.normpath(path[len(MEDIAPIPE_PREFIX):])
            if not relative.startswith(".."):
                file = os.path.join(self.mediapipe_root, relative)
        if file is None or not os.path.isfile(file):
            return self.send_error(404)
        with open(file, "rb") as content:
            body = content.read()
        kind = "text/javascript" if file.endswith((".js", ".mjs")) else mimetypes.guess_type(file)[0]
        self.send(body, kind or "application/octet-stream")

    def send(self, body: bytes, content_type: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)


def serve(model: str, image: Optional[str], port: int) -> None:
    for path, what in ((model, "--model"), (image, "--image")):
        if path and not os.path.isfile(path):
            sys.exit(f"serve: error: {what}={path}: no such file")
    here = os.path.dirname(os.path.abspath(__file__))
    DemoHandler.files = {path: os.path.join(here, name) for path, name in PAGE_FILES.items()}
    DemoHandler.files["/model.tflite"] = model
    if image:
        DemoHandler.files["/image"] = image
    DemoHandler.mediapipe_root = os.path.join(runfiles_root(), MEDIAPIPE_REPOSITORY)
    DemoHandler.config = json.dumps(dict(model_contract(model), image="/image" if image else None)).encode()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), DemoHandler)
    print(f"Serving {model} at http://127.0.0.1:{server.server_port}/ (Ctrl-C to stop)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="A detect.tflite with TFLite Model Metadata.")
    parser.add_argument("--image", help="A photo to run on page load.")
    parser.add_argument("--port", type=int, default=0, help="Port on 127.0.0.1 (default: a free one, printed).")
    args = parser.parse_args()
    serve(user_path(args.model), user_path(args.image) if args.image else None, args.port)


if __name__ == "__main__":
    main()
