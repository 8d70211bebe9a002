"""A BuildGrid test worker that runs each leased action in a root holding only its inputs and the platform.

Not for production (use buildbox or Buildbarn there): remote_execution_test
runs two of these beside a BuildGrid server on 127.0.0.1. Each action runs
under bubblewrap with no network, a fresh /tmp, its input root as working
folder, exactly the action's environment, and read-only what the platform
promises: /usr (the system) plus the `--image` mounts, which stand in for the
container image that the action's `container-image` property names. The
host's home, virtualenvs and workspaces are not there.

  test_worker.py --server=127.0.0.1:PORT --container_image=docker://NAME:TAG \
      --image=HOST_DIR:SANDBOX_DIR ... --work_root=DIR
"""

import argparse
import io
import os
import shutil
import signal
import subprocess
import tempfile
import traceback

import grpc
from buildgrid._protos.build.bazel.remote.execution.v2 import remote_execution_pb2 as re_pb2
from buildgrid._protos.google.devtools.remoteworkers.v1test2 import bots_pb2, bots_pb2_grpc, worker_pb2
from buildgrid._protos.google.rpc import code_pb2
from buildgrid.server.client.cas import download, upload

EXEC_ROOT = "/execroot"  # where the input root appears in the sandbox
POLL_SECONDS = 20


def sandbox_argv(input_root: str, command: re_pb2.Command, mounts: list[tuple[str, str]]) -> list[str]:
    argv = ["bwrap", "--unshare-all", "--die-with-parent", "--new-session", "--clearenv",
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


def execute(channel: grpc.Channel, action: re_pb2.Action, image: str, mounts: list[tuple[str, str]],
            work_root: str) -> re_pb2.ActionResult:
    result = re_pb2.ActionResult()
    with download(channel, instance="") as downloader:
        command = downloader.get_message(action.command_digest, re_pb2.Command())
    input_root = tempfile.mkdtemp(dir=work_root)
    try:
        with download(channel, instance="") as downloader:
            downloader.download_directory(action.input_root_digest, input_root)
        working = os.path.join(input_root, command.working_directory)
        for output in list(command.output_files) + list(command.output_directories):
            os.makedirs(os.path.dirname(os.path.join(working, output)), exist_ok=True)
        error = platform_error(command, action, image)
        if error:
            result.exit_code, stdout, stderr = 1, b"", error.encode()
        else:
            process = subprocess.run(sandbox_argv(input_root, command, mounts), capture_output=True, check=False)
            result.exit_code, stdout, stderr = process.returncode, process.stdout, process.stderr
        with upload(channel, instance="") as uploader:
            result.stdout_digest.CopyFrom(uploader.put_blob(io.BytesIO(stdout)))
            result.stderr_digest.CopyFrom(uploader.put_blob(io.BytesIO(stderr)))
            for path in command.output_files:
                full = os.path.join(working, path)
                if os.path.isfile(full):
                    result.output_files.add(path=path, digest=uploader.upload_file(full, queue=False),
                                            is_executable=os.access(full, os.X_OK))
            for path in command.output_directories:
                full = os.path.join(working, path)
                if os.path.isdir(full):
                    result.output_directories.add(path=path, tree_digest=uploader.upload_tree(full, queue=False))
    finally:
        shutil.rmtree(input_root, ignore_errors=True)
    return result


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
                        lease.result.Pack(execute(channel, leased_action(channel, lease), flags.container_image,
                                                  mounts, flags.work_root))
                    except Exception:  # fail the action, not the worker: the build reports it at once
                        lease.status.code = code_pb2.INTERNAL
                        lease.status.message = "test_worker: " + traceback.format_exc()
                    lease.state = bots_pb2.LeaseState.COMPLETED
    finally:
        # Report the leases done and that this bot is going, so the server assigns it nothing more.
        session.status = bots_pb2.BOT_TERMINATING
        bots.UpdateBotSession(bots_pb2.UpdateBotSessionRequest(name=session.name, bot_session=session), timeout=10)


if __name__ == "__main__":
    main()
