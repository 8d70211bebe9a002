"""//demo:serve serves its allowlist only, to 127.0.0.1:PORT and localhost:PORT only, and drops idle clients.

Runs demo/serve.py as `bazel run` would, from a fake runfiles tree in the
test's tmpdir: the page and the MediaPipe package are symlinks into a fake
source tree and a fake external repository, which holds symlinks out of the
package, a folder and a file that is not in its filegroup. Requests go over
raw sockets, so `//`, `..`, NUL bytes and backslashes reach the server as
sent. DEMO_SERVE_PY names another serve.py to test (default: this
workspace's).
"""

import collections
import concurrent.futures
import json
import os
import re
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from typing import Optional

from absl.testing import absltest

import testing

MEDIAPIPE_REPOSITORY = testing.starlark_constants()["MEDIAPIPE_TASKS_VISION_REPOSITORY"]
SECRET = b"outside the package: never served"
IDLE_TIMEOUT = 10  # DemoHandler.timeout
REQUEST_DEADLINE = 20  # DemoHandler.request_seconds
MAX_CONNECTIONS = 32  # DemoServer.max_connections
STANDARD_LIMIT = 65536  # the standard library's longest request line and header line

Answer = collections.namedtuple("Answer", "status head body")


def workspace_file(path: str) -> str:
    """A file of this workspace: from the runfiles under Bazel, else beside this test."""
    if "TEST_SRCDIR" in os.environ:
        return os.path.join(os.environ["TEST_SRCDIR"], os.environ["TEST_WORKSPACE"], path)
    return os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), path)


def write(path: str, content: bytes) -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as out:
        out.write(content)
    return path


def read(path: str) -> bytes:
    with open(path, "rb") as content:
        return content.read()


def link(target: str, path: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    os.symlink(target, path)


def fake_runfiles(tmp: str, serve_py: str, with_mediapipe: bool = True) -> str:
    """A runfiles tree like `bazel run //demo:serve`'s, with hostile entries in the package; returns its root."""
    runfiles = os.path.join(tmp, "runfiles")
    source = os.path.join(tmp, "source", "demo")
    link(serve_py, os.path.join(runfiles, "rules_ssd_tflite", "demo", "serve.py"))
    for name, content in (("index.html", b"<!doctype html><title>fake page</title>"),
                          ("demo.js", b"// fake demo.js\n")):
        link(write(os.path.join(source, name), content), os.path.join(runfiles, "rules_ssd_tflite", "demo", name))
    if not with_mediapipe:
        return runfiles
    secret = write(os.path.join(tmp, "secret.txt"), SECRET)
    write(os.path.join(tmp, "secret_folder", "secret.txt"), SECRET)
    repository = os.path.join(tmp, "external", MEDIAPIPE_REPOSITORY)
    write(os.path.join(repository, "vision_bundle.mjs"), b"export const bundle = 1;\n")
    write(os.path.join(repository, "package.json"), b'{"note": "in the package, not in its filegroup"}')
    write(os.path.join(repository, "wasm", "vision_wasm_internal.js"), b"// fake wasm loader\n")
    write(os.path.join(repository, "wasm", "vision_wasm_internal.wasm"), b"\0asm\1\0\0\0" + os.urandom(100_000))
    write(os.path.join(repository, "wasm", "folder", "inner.wasm"), b"\0asm in a folder")
    os.symlink("vision_wasm_internal.wasm", os.path.join(repository, "wasm", "alias.wasm"))
    os.symlink(os.path.relpath(secret, os.path.join(repository, "wasm")), os.path.join(repository, "wasm", "up.wasm"))
    os.symlink(secret, os.path.join(repository, "wasm", "absolute.wasm"))
    os.symlink(os.path.join(tmp, "secret_folder"), os.path.join(repository, "wasm", "outside_folder"))
    # Bazel's runfiles tree: real folders, each file a symlink to its path in the external repository.
    package = os.path.join(runfiles, MEDIAPIPE_REPOSITORY)
    link(os.path.join(repository, "vision_bundle.mjs"), os.path.join(package, "vision_bundle.mjs"))
    for name in os.listdir(os.path.join(repository, "wasm")):
        link(os.path.join(repository, "wasm", name), os.path.join(package, "wasm", name))
    return runfiles


def serve_command(serve_py: str, *flags: str) -> list[str]:
    """`serve_py` on a free port, with the MediaPipe package of its runfiles tree, as //demo:serve's args give it."""
    runfiles = os.path.dirname(os.path.dirname(os.path.dirname(serve_py)))
    bundle = os.path.join(runfiles, MEDIAPIPE_REPOSITORY, "vision_bundle.mjs")
    return [sys.executable, serve_py, "--port=0", f"--mediapipe_bundle={bundle}", *flags]


def start_server(serve_py: str, log: str, *flags: str) -> tuple[subprocess.Popen, int]:
    """Runs `serve_py` on a free port, logging to `log`; returns the process and its port."""
    with open(log, "wb") as log_file:
        server = subprocess.Popen(serve_command(serve_py, *flags),
                                  stdout=subprocess.PIPE, stderr=log_file, text=True)
    address = re.search(r"http://127\.0\.0\.1:(\d+)/", server.stdout.readline())
    if not address:
        server.kill()
        raise RuntimeError(f"{serve_py} printed no address: {read(log).decode()}")
    return server, int(address.group(1))


def stop_server(server: subprocess.Popen) -> None:
    server.terminate()
    server.wait(10)
    server.stdout.close()


def exchange(port: int, request: bytes, timeout: float = 10) -> bytes:
    """Sends `request` as is and returns all the server answers until it closes the connection."""
    answer = b""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as client:
        try:
            client.sendall(request)
            while chunk := client.recv(65536):
                answer += chunk
        except ConnectionResetError:  # closed while the test was still sending
            pass
    return answer


def parse(answer: bytes) -> Answer:
    """Status, head and body of an HTTP/1.x answer."""
    head, _, body = answer.partition(b"\r\n\r\n")
    return Answer(int(head.split(b" ", 2)[1]), head.decode("latin-1"), body)


def header(answer: Answer, name: str) -> Optional[str]:
    """The value of header `name` of `answer`, if it has one."""
    found = re.search(rf"^{name}: (.*)$", answer.head, re.IGNORECASE | re.MULTILINE)
    return found.group(1).strip() if found else None


class DemoServerTest(absltest.TestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.tmp = tempfile.mkdtemp(dir=absltest.TEST_TMPDIR.value)
        cls.addClassCleanup(shutil.rmtree, cls.tmp)
        serve_py = os.path.abspath(os.environ.get("DEMO_SERVE_PY") or workspace_file("demo/serve.py"))
        cls.runfiles = fake_runfiles(cls.tmp, serve_py)
        cls.serve_py = os.path.join(cls.runfiles, "rules_ssd_tflite", "demo", "serve.py")
        outputs = os.path.join(cls.tmp, "bazel-out")
        write(os.path.join(outputs, "model.tflite"), b"TFL3" + os.urandom(300_000))
        write(os.path.join(outputs, "model_contract.json"),
              json.dumps({"input": {"name": "image", "dtype": "uint8"}, "inference_type": "uint8"}).encode())
        write(os.path.join(outputs, "photo.png"), b"\x89PNG fake photo")
        os.symlink(outputs, os.path.join(cls.tmp, "bazel-bin"))
        cls.model = os.path.join(cls.tmp, "bazel-bin", "model.tflite")
        cls.image = os.path.join(cls.tmp, "bazel-bin", "photo.png")
        cls.log = os.path.join(cls.tmp, "serve.log")
        cls.server, cls.port = start_server(cls.serve_py, cls.log, f"--model={cls.model}", f"--image={cls.image}")
        cls.addClassCleanup(stop_server, cls.server)

    def ask(self, target: str, method: str = "GET", version: str = "HTTP/1.1",
            headers: Optional[list[str]] = None) -> Answer:
        """The answer to `method target version`, with `headers` (default: the right Host), sent as is."""
        lines = [f"{method} {target} {version}"]
        lines += [f"Host: 127.0.0.1:{self.port}"] if headers is None else headers
        return parse(exchange(self.port, ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")))

    def assert_not_served(self, answer: Answer, status: int, *secrets: bytes) -> None:
        self.assertEqual(answer.status, status, answer.head)
        for secret in (SECRET, b"root:x:", b"PATH=", *secrets):
            self.assertNotIn(secret, answer.body)

    def served_files(self) -> dict[str, str]:
        package = os.path.join(self.runfiles, MEDIAPIPE_REPOSITORY)
        page = os.path.join(self.runfiles, "rules_ssd_tflite", "demo")
        return {
            "/": os.path.join(page, "index.html"),
            "/demo.js": os.path.join(page, "demo.js"),
            "/model.tflite": self.model,
            "/image": self.image,
            "/mediapipe/vision_bundle.mjs": os.path.join(package, "vision_bundle.mjs"),
            "/mediapipe/wasm/vision_wasm_internal.js": os.path.join(package, "wasm", "vision_wasm_internal.js"),
            "/mediapipe/wasm/vision_wasm_internal.wasm": os.path.join(package, "wasm", "vision_wasm_internal.wasm"),
            "/mediapipe/wasm/alias.wasm": os.path.join(package, "wasm", "vision_wasm_internal.wasm"),
        }

    def test_serves_the_allowed_files_byte_for_byte(self):
        for path, file in self.served_files().items():
            for host in (f"127.0.0.1:{self.port}", f"localhost:{self.port}", f"LocalHost:{self.port}"):
                with self.subTest(path=path, host=host):
                    answer = self.ask(path, headers=[f"Host: {host}"])
                    self.assertEqual(answer.status, 200, answer.head)
                    self.assertEqual(answer.body, read(file))
                    self.assertEqual(header(answer, "Content-Length"), str(len(answer.body)))

    def test_javascript_modules_are_javascript(self):
        self.assertEqual(header(self.ask("/mediapipe/vision_bundle.mjs"), "Content-Type"), "text/javascript")
        self.assertEqual(header(self.ask("/demo.js"), "Content-Type"), "text/javascript")

    def test_config_names_the_model_and_its_contract(self):
        answer = self.ask("/config.json")
        self.assertEqual(answer.status, 200, answer.head)
        self.assertEqual(json.loads(answer.body), {"name": "model", "input": {"name": "image", "dtype": "uint8"},
                                                   "inference_type": "uint8", "image": "/image"})

    def test_query_strings_are_ignored(self):
        for target, path in (("/demo.js?v=1", "/demo.js"), ("/?threshold=0", "/"),
                             ("/mediapipe/vision_bundle.mjs?/../../../secret.txt", "/mediapipe/vision_bundle.mjs")):
            with self.subTest(target=target):
                self.assertEqual(self.ask(target).body, read(self.served_files()[path]))

    def test_head_sends_the_headers_only(self):
        answer = self.ask("/model.tflite", method="HEAD")
        self.assertEqual(answer.status, 200, answer.head)
        self.assertEqual(header(answer, "Content-Length"), str(os.path.getsize(self.model)))
        self.assertEqual(answer.body, b"")

    def test_paths_outside_the_allowlist_are_404(self):
        secret = os.path.join(self.tmp, "secret.txt")
        long_path = "/mediapipe/" + "a/" * 20_000
        for target in [
            "/mediapipe//etc/passwd",
            "/mediapipe//proc/self/environ",
            "/mediapipe/" + secret,
            "/mediapipe/../../etc/passwd",
            "/mediapipe/../../secret.txt",
            "/mediapipe/../../../../../../../../etc/passwd",
            "/mediapipe/wasm/../../../secret.txt",
            "/mediapipe/wasm/../../x",
            "/mediapipe/%2e%2e/%2e%2e/secret.txt",
            "/mediapipe/%2E%2E%2F%2E%2E%2Fsecret.txt",
            "/mediapipe/..%2f..%2fsecret.txt",
            "/mediapipe/%2fetc%2fpasswd",
            "/mediapipe/%2F" + secret.lstrip("/").replace("/", "%2F"),
            "/mediapipe/..%5c..%5csecret.txt",
            "/mediapipe/..\\..\\secret.txt",
            "/mediapipe\\..\\..\\secret.txt",
            "/mediapipe/wasm\\..\\..\\..\\secret.txt",
            "/mediapipe/vision_bundle.mjs\0",
            "/mediapipe/vision_bundle.mjs\0/../../../secret.txt",
            "/mediapipe/vision_bundle.mjs%00",
            "/mediapipe/\0" + secret,
            "/mediapipe/wasm/up.wasm",
            "/mediapipe/wasm/absolute.wasm",
            "/mediapipe/wasm/outside_folder/secret.txt",
            "/mediapipe/wasm/outside_folder",
            "/mediapipe/wasm/folder",
            "/mediapipe/wasm/folder/inner.wasm",
            "/mediapipe/package.json",
            "/mediapipe",
            "/mediapipe/",
            "/mediapipe/wasm",
            "/mediapipe/wasm/",
            "/mediapipe/./vision_bundle.mjs",
            "/mediapipe/wasm//vision_wasm_internal.js",
            "/serve.py",
            "/demo/serve.py",
            "/..",
            "/../secret.txt",
            "/%2e%2e/secret.txt",
            f"http://127.0.0.1:{self.port}/mediapipe//etc/passwd",
            "*",
            long_path,
        ]:
            with self.subTest(target=target[:100]):
                self.assert_not_served(self.ask(target), 404)

    def test_other_hosts_are_403(self):
        model = read(self.model)
        other_port = self.port + 1 if self.port < 65535 else self.port - 1
        for headers in [
            [f"Host: evil.example:{self.port}"],
            [f"Host: 127.0.0.1:{other_port}"],
            [f"Host: localhost:{other_port}"],
            ["Host: 127.0.0.1"],
            ["Host: localhost"],
            ["Host: evil.example"],
            [f"Host: 127.0.0.1:{self.port}.evil.example"],
            [f"Host: 127.0.0.2:{self.port}"],
            [f"Host: 0.0.0.0:{self.port}"],
            [f"Host: [::1]:{self.port}"],
            ["Host: "],
            [],
            [f"Host: evil.example:{self.port}", f"Host: 127.0.0.1:{self.port}"],
            [f"Host: 127.0.0.1:{self.port}", f"Host: evil.example:{self.port}"],
        ]:
            for target in ("/", "/model.tflite", "/config.json", "/mediapipe//etc/passwd"):
                with self.subTest(headers=headers, target=target):
                    self.assert_not_served(self.ask(target, headers=headers), 403, model, b'"name"')

    def test_http_1_0_needs_the_host_too(self):
        self.assertEqual(self.ask("/demo.js", version="HTTP/1.0").status, 200)
        self.assert_not_served(self.ask("/model.tflite", version="HTTP/1.0", headers=[]), 403, read(self.model))

    def test_http_0_9_gets_no_file(self):
        # An HTTP/0.9 request has no headers, so no Host: 403, as a body without status line.
        answer = exchange(self.port, b"GET /\r\n\r\n")
        self.assertNotIn(read(self.served_files()["/"]), answer)

    def test_only_get_and_head(self):
        model = read(self.model)
        for method in ("POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT", "PROPFIND"):
            with self.subTest(method=method):
                self.assert_not_served(self.ask("/model.tflite", method=method), 501, model)
        answer = parse(exchange(self.port, f"POST /model.tflite HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
                                           "Content-Length: 5\r\n\r\nx=../".encode()))
        self.assert_not_served(answer, 501, model)

    def test_request_line_and_headers_are_bounded(self):
        self.assert_not_served(self.ask("/" + "a" * STANDARD_LIMIT), 414)
        self.assert_not_served(self.ask("/", headers=[f"Host: 127.0.0.1:{self.port}",
                                                      "X-Long: " + "a" * STANDARD_LIMIT]), 431)
        self.assert_not_served(self.ask("/", headers=[f"Host: 127.0.0.1:{self.port}"] +
                                        [f"X-Many-{number}: 1" for number in range(101)]), 431)

    def test_idle_connections_are_closed(self):
        start = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor() as pool:
            answers = pool.map(lambda sent: exchange(self.port, sent, timeout=IDLE_TIMEOUT + 20),
                               (b"", b"GET / HTTP/1.1\r\nHost: 127.0.0.1"))
            self.assertEqual(list(answers), [b"", b""])
        self.assertLess(time.monotonic() - start, IDLE_TIMEOUT + 5)

    def test_trickling_clients_are_cut_off_at_the_request_deadline(self):
        """A byte every few seconds keeps each read alive, not the request."""
        start, closed = time.monotonic(), False
        with socket.create_connection(("127.0.0.1", self.port)) as trickle:
            trickle.sendall(b"GET / HTTP/1.1\r\n")
            while not closed and time.monotonic() - start < REQUEST_DEADLINE + 2 * IDLE_TIMEOUT:
                time.sleep(IDLE_TIMEOUT / 2)
                try:
                    trickle.sendall(b"X")
                    readable, _, _ = select.select([trickle], [], [], 0)
                    closed = bool(readable) and trickle.recv(1) == b""
                except OSError:  # reset by the server
                    closed = True
        self.assertTrue(closed, "the trickling connection is still open")
        self.assertLess(time.monotonic() - start, REQUEST_DEADLINE + IDLE_TIMEOUT)

    def test_connections_beyond_the_cap_are_closed_not_queued(self):
        held = [socket.create_connection(("127.0.0.1", self.port)) for _ in range(MAX_CONNECTIONS)]
        try:
            time.sleep(0.5)  # the server takes them all in
            with socket.create_connection(("127.0.0.1", self.port), timeout=5) as extra:
                extra.sendall(f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n\r\n".encode())
                self.assertEqual(extra.recv(100), b"")
        finally:
            for connection in held:
                connection.close()
        time.sleep(0.5)
        self.assertEqual(self.ask("/").status, 200)  # slots come back

    def test_control_characters_are_escaped_in_the_log(self):
        self.assertEqual(self.ask("/\x1b[2J\x1b]0;pwned\x07").status, 404)
        log = read(self.log)
        self.assertIn(rb"/\x1b[2J\x1b]0;pwned\x07", log)
        self.assertNotIn(b"\x1b", log)

    def test_start_up_errors_name_the_flag_or_file(self):
        missing = os.path.join(self.tmp, "missing.tflite")
        no_mediapipe = fake_runfiles(os.path.join(self.tmp, "no_mediapipe"), os.path.realpath(self.serve_py),
                                     with_mediapipe=False)
        for serve_py, flags, error in [
            (self.serve_py, [f"--model={missing}"], f"serve: error: --model={missing}: no such file"),
            (self.serve_py, [f"--model={self.tmp}"], f"serve: error: --model={self.tmp}: no such file"),
            (self.serve_py, [f"--model={self.model}", f"--image={missing}"],
             f"serve: error: --image={missing}: no such file"),
            (os.path.join(no_mediapipe, "rules_ssd_tflite", "demo", "serve.py"), [f"--model={self.model}"],
             os.path.join(no_mediapipe, MEDIAPIPE_REPOSITORY, "vision_bundle.mjs")),
        ]:
            with self.subTest(flags=flags, serve_py=serve_py):
                run = subprocess.run(serve_command(serve_py, *flags), capture_output=True, text=True, timeout=30)
                self.assertNotEqual(run.returncode, 0)
                self.assertEqual(len(run.stderr.splitlines()), 1, run.stderr)
                self.assertIn(error, run.stderr)


@absltest.skipUnless("TEST_SRCDIR" in os.environ, "needs the runfiles of //demo:serve (bazel test)")
class PinnedPackageTest(absltest.TestCase):
    """The real runfiles: every file of the pinned package's filegroup is served."""

    def test_serves_the_pinned_package(self):
        tmp = self.create_tempdir().full_path
        model = write(os.path.join(tmp, "model.tflite"), b"TFL3")
        server, port = start_server(workspace_file("demo/serve.py"), os.path.join(tmp, "serve.log"),
                                    f"--model={model}")
        self.addCleanup(stop_server, server)
        package = os.path.join(os.environ["TEST_SRCDIR"], MEDIAPIPE_REPOSITORY)
        names = ["vision_bundle.mjs"] + ["wasm/" + name for name in os.listdir(os.path.join(package, "wasm"))]
        for path, file in [("/", workspace_file("demo/index.html")), ("/demo.js", workspace_file("demo/demo.js"))] + [
                ("/mediapipe/" + name, os.path.join(package, name)) for name in names]:
            with self.subTest(path=path):
                answer = parse(exchange(port, f"GET {path} HTTP/1.1\r\nHost: localhost:{port}\r\n\r\n".encode()))
                self.assertEqual(answer.status, 200, answer.head)
                self.assertEqual(answer.body, read(file))


if __name__ == "__main__":
    absltest.main()
