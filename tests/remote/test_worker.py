"""A BuildGrid test worker that runs each leased action in a root holding only its inputs and the platform.

Not for production (use buildbox or Buildbarn there): remote_execution_test
runs two of these beside a BuildGrid server on 127.0.0.1. Each action runs
under bubblewrap with no network and no capabilities, a fresh /tmp, its
input root as working folder, exactly the action's environment, and read-only
what the platform promises: /usr (the system) plus the `--image` mounts, which
stand in for the container image that the action's `container-image` property
names. The host's home, virtualenvs and workspaces are not there. Its output
paths, outputs and time are bounded as action_sandbox.py says: a refused path
fails the action (INVALID_ARGUMENT or FAILED_PRECONDITION, naming it), and an
action out of time is killed (DEADLINE_EXCEEDED).

  test_worker.py --server=127.0.0.1:PORT --container_image=docker://NAME:TAG \
      --image=HOST_DIR:SANDBOX_DIR ... --work_root=DIR
"""

import argparse
import io
import os
import shutil
import signal
import tempfile
import traceback

import grpc
from buildgrid._protos.build.bazel.remote.execution.v2 import remote_execution_pb2 as re_pb2
from buildgrid._protos.google.devtools.remoteworkers.v1test2 import bots_pb2, bots_pb2_grpc, worker_pb2
from buildgrid._protos.google.rpc import code_pb2, status_pb2
from buildgrid.server.client.cas import download, upload
from buildgrid.server.exceptions import BgdError
from google.protobuf.message import DecodeError

import action_sandbox

EXEC_ROOT = "/execroot"  # where the input root appears in the sandbox
POLL_SECONDS = 20
KILLED_EXIT_CODE = 128 + signal.SIGKILL  # as a shell reports a killed command
# What running a leased action can fail with besides a refusal: a CAS call (gRPC errors, and the ones
# BuildGrid's retrier turns them into: its BgdError kinds, ConnectionError and TimeoutError, which are
# OSErrors, NotImplementedError), a blob that is no message of its type, the input root's files, bwrap.
ACTION_FAILURES = (grpc.RpcError, BgdError, OSError, NotImplementedError, DecodeError)


def sandbox_argv(input_root: str, command: re_pb2.Command, mounts: list[tuple[str, str]]) -> list[str]:
    argv = ["bwrap", "--unshare-all", "--die-with-parent", "--new-session", "--clearenv", "--cap-drop", "ALL",
            "--ro-bind", "/usr", "/usr", "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
    for link in ("bin", "lib", "lib64", "sbin"):
        if os.path.islink("/" + link):  # merged /usr: /bin -> usr/bin
            argv += ["--symlink", os.readlink("/" + link), "/" + link]
    for host, sandbox in mounts:
        argv += ["--ro-bind", host, sandbox]
    argv += ["--bind", input_root, EXEC_ROOT, "--chdir", os.path.join(EXEC_ROOT, command.working_directory)]
    for variable in command.environment_variables:
        argv += ["--setenv", variable.name, variable.value]
    return argv + ["--"] + list(command.arguments)


def platform_error(command: re_pb2.Command, action: re_pb2.Action, image: str) -> str:
    platform = action.platform if action.platform.properties else command.platform
    wanted = {prop.name: prop.value for prop in platform.properties}.get("container-image")
    if wanted != image:
        return f"test_worker: this worker runs {image}, the action asks for container-image={wanted}\n"
    return ""


def finish(channel: grpc.Channel, result: re_pb2.ActionResult, stdout: bytes, stderr: bytes,
           code: int = code_pb2.OK, message: str = "") -> tuple[re_pb2.ActionResult, status_pb2.Status]:
    """`result` with its logs in the CAS, and the status of the execution (a refusal's message also in stderr)."""
    if message:
        stderr += f"test_worker: {message}\n".encode()
    with upload(channel, instance="") as uploader:
        result.stdout_digest.CopyFrom(uploader.put_blob(io.BytesIO(stdout)))
        result.stderr_digest.CopyFrom(uploader.put_blob(io.BytesIO(stderr)))
    return result, status_pb2.Status(code=code, message=f"test_worker: {message}" if message else "")


def add_outputs(channel: grpc.Channel, command: re_pb2.Command, input_root: str, result: re_pb2.ActionResult) -> None:
    """Uploads the outputs into `result`: regular files, folders (whose symlinks stay symlinks) and symlinks."""
    working = command.working_directory
    with upload(channel, instance="") as uploader:
        for paths, folder in ((command.output_files, False), (command.output_directories, True)):
            for path in paths:
                kind = action_sandbox.returned_as(input_root, working, path, folder)
                full = os.path.join(input_root, working, path)
                if kind == "symlink":
                    symlinks = result.output_directory_symlinks if folder else result.output_file_symlinks
                    symlinks.add(path=path, target=os.readlink(full))
                elif kind == "file":
                    result.output_files.add(path=path, digest=uploader.upload_file(full, queue=False),
                                            is_executable=os.access(full, os.X_OK))
                elif kind == "folder":
                    result.output_directories.add(path=path, tree_digest=uploader.upload_tree(full, queue=False))


def run_in(channel: grpc.Channel, action: re_pb2.Action, command: re_pb2.Command, image: str,
           mounts: list[tuple[str, str]], input_root: str) -> tuple[re_pb2.ActionResult, status_pb2.Status]:
    outputs = list(command.output_files) + list(command.output_directories)
    try:
        action_sandbox.check_paths(command.working_directory, outputs)
        with download(channel, instance="") as downloader:
            downloader.download_directory(action.input_root_digest, input_root)
        action_sandbox.make_output_folders(input_root, command.working_directory, outputs)
    except action_sandbox.Refused as refusal:
        return finish(channel, re_pb2.ActionResult(exit_code=1), b"", b"", code_pb2.INVALID_ARGUMENT, str(refusal))
    error = platform_error(command, action, image)
    if error:
        return finish(channel, re_pb2.ActionResult(exit_code=1), b"", error.encode())
    seconds = action_sandbox.timeout_seconds(action.timeout)
    exit_code, stdout, stderr = action_sandbox.run_with_timeout(sandbox_argv(input_root, command, mounts), seconds)
    if exit_code is None:
        return finish(channel, re_pb2.ActionResult(exit_code=KILLED_EXIT_CODE), stdout, stderr,
                      code_pb2.DEADLINE_EXCEEDED, f"the action ran out of its {seconds:g} s and was killed")
    result = re_pb2.ActionResult(exit_code=exit_code)
    try:
        add_outputs(channel, command, input_root, result)
    except action_sandbox.Refused as refusal:
        return finish(channel, re_pb2.ActionResult(exit_code=1), stdout, stderr, code_pb2.FAILED_PRECONDITION,
                      str(refusal))
    return finish(channel, result, stdout, stderr)


def execute(channel: grpc.Channel, action: re_pb2.Action, image: str, mounts: list[tuple[str, str]],
            work_root: str) -> tuple[re_pb2.ActionResult, status_pb2.Status]:
    with download(channel, instance="") as downloader:
        command = downloader.get_message(action.command_digest, re_pb2.Command())
    input_root = tempfile.mkdtemp(dir=work_root)
    try:
        return run_in(channel, action, command, image, mounts, input_root)
    finally:
        shutil.rmtree(input_root, ignore_errors=True)


def leased_action(channel: grpc.Channel, lease: bots_pb2.Lease) -> re_pb2.Action:
    action = re_pb2.Action()
    if lease.payload.Is(re_pb2.Action.DESCRIPTOR):
        lease.payload.Unpack(action)
        return action
    digest = re_pb2.Digest()
    lease.payload.Unpack(digest)
    with download(channel, instance="") as downloader:
        return downloader.get_message(digest, action)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--server", required=True)
    parser.add_argument("--container_image", required=True)
    parser.add_argument("--image", action="append", default=[], help="HOST_DIR[:SANDBOX_DIR], read-only")
    parser.add_argument("--work_root", required=True)
    flags = parser.parse_args()
    mounts = [tuple(mount.split(":", 1)) if ":" in mount else (mount, mount) for mount in flags.image]
    channel = grpc.insecure_channel(flags.server, options=[("grpc.max_receive_message_length", -1),
                                                           ("grpc.max_send_message_length", -1)])
    bots = bots_pb2_grpc.BotsStub(channel)
    device = worker_pb2.Device(handle="sandbox", properties=[worker_pb2.Device.Property(key="OSFamily", value="linux")])
    session = bots.CreateBotSession(bots_pb2.CreateBotSessionRequest(parent="", bot_session=bots_pb2.BotSession(
        bot_id=f"test-worker-{os.getpid()}", status=bots_pb2.OK, worker=worker_pb2.Worker(devices=[device]))))
    stopping = []
    signal.signal(signal.SIGTERM, lambda signum, frame: stopping.append(signum))
    try:
        while not stopping:
            try:
                session = bots.UpdateBotSession(bots_pb2.UpdateBotSessionRequest(name=session.name, bot_session=session),
                                                timeout=POLL_SECONDS)
            except grpc.RpcError as error:
                if error.code() != grpc.StatusCode.DEADLINE_EXCEEDED:
                    raise
                continue
            for lease in session.leases:
                if lease.state in (bots_pb2.LeaseState.PENDING, bots_pb2.LeaseState.ACTIVE):
                    try:
                        result, status = execute(channel, leased_action(channel, lease), flags.container_image,
                                                 mounts, flags.work_root)
                        lease.result.Pack(result)
                        lease.status.CopyFrom(status)
                    except ACTION_FAILURES:  # fail the action, not the worker: the build reports it at once
                        lease.status.code = code_pb2.INTERNAL
                        lease.status.message = "test_worker: " + traceback.format_exc()
                    lease.state = bots_pb2.LeaseState.COMPLETED
    finally:
        # Report the leases done and that this bot is going, so the server assigns it nothing more.
        session.status = bots_pb2.BOT_TERMINATING
        bots.UpdateBotSession(bots_pb2.UpdateBotSessionRequest(name=session.name, bot_session=session), timeout=10)


if __name__ == "__main__":
    main()
