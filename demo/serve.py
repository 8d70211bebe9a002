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

It serves an allowlist made at start-up, each entry a real path (symlinks
resolved): the page, /config.json, the model, the image and the pinned
MediaPipe package's bundle and `wasm/*`, which must stay inside the package.
Any other path is 404, any method but GET and HEAD 501, and any Host but
127.0.0.1:PORT or localhost:PORT 403 (DNS rebinding).
"""

import argparse
import http.server
import io
import json
import mimetypes
import os
import shutil
import socket
import sys
import threading
from http import HTTPStatus
from typing import BinaryIO, Optional

PAGE_FILES = {"/": "index.html", "/demo.js": "demo.js"}
MEDIAPIPE_PREFIX = "/mediapipe/"
# As tools/private/constants.bzl names them (//tests:constants_test checks): this file imports nothing of ours.
MEDIAPIPE_BUNDLE = "vision_bundle.mjs"
CONTRACT_SUFFIX = "_contract.json"  # the model contract ssd_tflite_model writes beside `<name>.tflite`
# Logged request lines come from the client: their control characters are written escaped.
CONTROL_CHARACTERS = {code: f"\\x{code:02x}" for code in (*range(0x20), *range(0x7F, 0xA0))}


def user_path(path: str) -> str:
    """A path as the user typed it: relative to where `bazel run` was invoked."""
    return os.path.join(os.environ.get("BUILD_WORKING_DIRECTORY", ""), path)


def model_contract(model: str) -> dict:
    """Name and input of the model, from the model contract (`<name>_contract.json`) the rule writes beside it."""
    contract = {"name": os.path.splitext(os.path.basename(model))[0]}
    path = os.path.splitext(model)[0] + CONTRACT_SUFFIX
    if os.path.exists(path):
        with open(path) as contract_file:
            written = json.load(contract_file)
        contract["input"] = written.get("input")
        contract["inference_type"] = written.get("inference_type")
    return contract


def user_file(path: str, flag: str) -> str:
    """The real path of the file the user named with `flag`; exits if it is no regular file."""
    real = os.path.realpath(path)
    if not os.path.isfile(real):
        sys.exit(f"serve: error: {flag}={path}: no such file")
    return real


def package_files(folder: str, required: list[str], optional: list[str]) -> dict[str, str]:
    """Name -> real path of the names (relative to `folder`) that are regular files inside the package.

    The package's root is the real folder of `required[0]`, its main file:
    under `bazel run` each file is a symlink from the runfiles tree into the
    source tree or the external repository, so `folder` is not the root.
    An optional name that is no regular file, or whose real path leaves the
    root, is left out; a required one ends the program.
    """
    root = os.path.dirname(os.path.realpath(os.path.join(folder, required[0])))
    files = {}
    for name in required + optional:
        real = os.path.realpath(os.path.join(folder, name))
        if os.path.isfile(real) and os.path.commonpath([root, real]) == root:
            files[name] = real
        elif name in required:
            sys.exit(f"serve: error: {os.path.join(folder, name)}: no such file inside {root}")
    return files


def mediapipe_files(root: str) -> dict[str, str]:
    """The pinned MediaPipe package's files as its filegroup lists them: the bundle and `wasm/*`."""
    wasm = os.path.join(root, "wasm")
    names = sorted(os.listdir(wasm)) if os.path.isdir(wasm) else []
    return package_files(root, [MEDIAPIPE_BUNDLE], [f"wasm/{name}" for name in names])


def allowlist(page_folder: str, mediapipe_root: str, model: str, image: Optional[str]) -> dict[str, str]:
    """Request path -> real file, for all that is served: the model, the image, the page and MediaPipe."""
    files = {"/model.tflite": user_file(model, "--model")}
    if image:
        files["/image"] = user_file(image, "--image")
    page = package_files(page_folder, list(PAGE_FILES.values()), [])
    files.update({path: page[name] for path, name in PAGE_FILES.items()})
    files.update({MEDIAPIPE_PREFIX + name: real for name, real in mediapipe_files(mediapipe_root).items()})
    return files


def content_type(file: str) -> str:
    """The Content-Type of `file`: JavaScript modules must be served as JavaScript."""
    if file.endswith((".js", ".mjs")):
        return "text/javascript"
    return mimetypes.guess_type(file)[0] or "application/octet-stream"


class DemoServer(http.server.ThreadingHTTPServer):
    """Serves `files` (request path -> real file) and `config` as /config.json on 127.0.0.1.

    Only to requests whose one Host is 127.0.0.1:PORT or localhost:PORT: a
    page whose own name an attacker rebinds to 127.0.0.1 sends that name. No
    Host is refused too, in HTTP/1.0 as well: browsers, curl, wget and
    Python's urllib send it there too, and without it nothing tells which
    name the client used.
    """

    max_connections = 32  # at once; one more is closed, not queued (a page opens a handful)

    def __init__(self, port: int, files: dict[str, str], config: bytes) -> None:
        super().__init__(("127.0.0.1", port), DemoHandler)
        self.files = files
        self.config = config
        self.hosts = {f"127.0.0.1:{self.server_port}", f"localhost:{self.server_port}"}
        self.connection_slots = threading.BoundedSemaphore(self.max_connections)

    def process_request(self, request: socket.socket, client_address: tuple) -> None:
        if not self.connection_slots.acquire(blocking=False):
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request: socket.socket, client_address: tuple) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.connection_slots.release()


class DemoHandler(http.server.BaseHTTPRequestHandler):
    """GET and HEAD of the allowlist; other methods get the standard library's 501.

    The standard library bounds the request line (64 KiB, else 414) and the
    headers (100 lines of 64 KiB, else 431).
    """

    server: DemoServer
    timeout = 10  # seconds the client may stay silent, or take to accept 64 KiB of a file
    # Seconds for a whole request, from its first byte (or the wait for it) to the response's last:
    # a client trickling a byte now and then is cut off too. A 230 MB model takes under 1 s here.
    request_seconds = 20

    def handle_one_request(self) -> None:
        deadline = threading.Timer(self.request_seconds, self.cut_off)
        deadline.start()
        try:
            super().handle_one_request()
        finally:
            deadline.cancel()

    def cut_off(self) -> None:
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:  # closed already
            pass

    def log_message(self, format: str, *args) -> None:  # noqa: A002 (the base class's name)
        sys.stderr.write("demo: " + (format % args).translate(CONTROL_CHARACTERS) + "\n")

    def do_GET(self) -> None:  # noqa: N802 (the base class's name)
        self.respond(send_body=True)

    def do_HEAD(self) -> None:  # noqa: N802 (the base class's name)
        self.respond(send_body=False)

    def respond(self, send_body: bool) -> None:
        hosts = self.headers.get_all("Host", [])
        if len(hosts) != 1 or hosts[0].strip().lower() not in self.server.hosts:
            return self.send_error(HTTPStatus.FORBIDDEN, "Host must be " + " or ".join(sorted(self.server.hosts)))
        path = self.path.split("?", 1)[0]
        if path == "/config.json":
            config = self.server.config
            return self.send(io.BytesIO(config), len(config), "application/json", send_body)
        file = self.server.files.get(path)
        if file is None:
            return self.send_error(HTTPStatus.NOT_FOUND)
        try:
            content = open(file, "rb")
        except OSError:  # gone since start-up
            return self.send_error(HTTPStatus.NOT_FOUND)
        with content:
            self.send(content, os.fstat(content.fileno()).st_size, content_type(file), send_body)

    def send(self, content: BinaryIO, size: int, kind: str, send_body: bool) -> None:
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(size))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if send_body:
            shutil.copyfileobj(content, self.wfile)  # chunk by chunk: the timeout applies to each


def serve(model: str, image: Optional[str], port: int, mediapipe_bundle: str) -> None:
    page_folder = os.path.dirname(os.path.abspath(__file__))
    files = allowlist(page_folder, os.path.dirname(os.path.abspath(mediapipe_bundle)), model, image)
    config = json.dumps(dict(model_contract(model), image="/image" if image else None)).encode()
    server = DemoServer(port, files, config)
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
    # Set by //demo:serve's args ($(rootpath), which names the repository under WORKSPACE and Bzlmod alike).
    parser.add_argument("--mediapipe_bundle", required=True,
                        help=f"The pinned package's {MEDIAPIPE_BUNDLE}, relative to the runfiles (set by //demo:serve).")
    args = parser.parse_args()
    serve(user_path(args.model), user_path(args.image) if args.image else None, args.port, args.mediapipe_bundle)


if __name__ == "__main__":
    main()
