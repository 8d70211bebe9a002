"""The benchmark behind dev/bench: measures and prints a markdown report.

Every comparison is measured side by side in this one run: the cold build of
//models:all before this rule graph (BASELINE, in a git worktree), without
persistent workers and with them; bazel-bin sizes; an incremental rebuild;
the quick test suite; the RSS of an exporter and a converter worker after 20
requests; which //models actions an edit to a Python module re-runs; and each
model's size with the uint8-vs-float gap.
"""

import collections
import datetime
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from typing import Optional

import testing
from ssd_tflite import agreement, detection, persistent_worker
from ssd_tflite.images import load_image

BASELINE = "065acca"  # the last commit with one rule for export and conversion, and no workers
BIN = "bazel-bin"
IMAGES = ("tests/testdata/chelsea.png", "tests/testdata/coffee.png")
EDITED_CONFIG = "models/configs/ssdlite_mobilenet_v2.pipeline.config"
WORKER_REQUESTS = 20
# Modules edited one at a time (a comment appended) to count the //models actions an edit re-runs:
# one that no model tool imports, the embedded-metadata writer, and the exporter.
EDITED_MODULES = ("agreement", "tflite_metadata", "export")


def log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def bazel(workspace: str, *args: str) -> float:
    """Runs tools/bazel in `workspace`; returns wall seconds."""
    start = time.monotonic()
    result = subprocess.run([os.path.abspath("tools/bazel"), *args], cwd=workspace, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"bench: bazel {' '.join(args)} failed in {workspace}:\n{result.stderr[-3000:]}")
    return time.monotonic() - start


def disk_usage(path: str) -> int:
    return int(subprocess.run(["du", "-sbL", path], check=True, capture_output=True, text=True).stdout.split()[0])


def cold_build(workspace: str, *options: str) -> tuple[float, int]:
    """Seconds of `bazel build //models:all` after clean and shutdown (no warm workers), and bazel-bin/models bytes."""
    bazel(workspace, "clean")
    bazel(workspace, "shutdown")
    seconds = bazel(workspace, "build", *options, "//models:all")
    return seconds, disk_usage(os.path.join(workspace, BIN, "models"))


def incremental_build() -> float:
    """Seconds to rebuild //models:all (workers warm) after editing one config."""
    with open(EDITED_CONFIG) as config:
        original = config.read()
    edited = original.replace("iou_threshold: 0.600000023842", "iou_threshold: 0.55")
    assert edited != original, f"{EDITED_CONFIG}: the bench's edit no longer applies"
    try:
        with open(EDITED_CONFIG, "w") as config:
            config.write(edited)
        return bazel(".", "build", "//models:all")
    finally:
        with open(EDITED_CONFIG, "w") as config:
            config.write(original)
        bazel(".", "build", "//models:all")


def edit_cost(module: str) -> collections.Counter:
    """Actions of //models:all, by mnemonic, that re-run after appending a comment to py/ssd_tflite/`module`.py."""
    path = f"py/ssd_tflite/{module}.py"
    with open(path) as source:
        original = source.read()
    log_path = os.path.join(tempfile.mkdtemp(), "execution_log.json")
    try:
        with open(path, "w") as source:
            source.write(original + "\n# dev/bench: an edit that changes no behaviour\n")
        bazel(".", "build", f"--execution_log_json_file={log_path}", "//models:all")
    finally:
        with open(path, "w") as source:
            source.write(original)
        bazel(".", "build", "//models:all")
    return collections.Counter(entry["mnemonic"] for entry in testing.execution_log(log_path))


def edit_costs() -> list[str]:
    """Report lines: what each of EDITED_MODULES re-runs, against all the actions of //models:all."""
    result = subprocess.run(["tools/bazel", "aquery", "--output=jsonproto", "//models:all"],
                            check=True, capture_output=True, text=True)
    mnemonics = collections.Counter(action["mnemonic"] for action in json.loads(result.stdout)["actions"]
                                    if action["mnemonic"] not in ("FileWrite", "Middleman", "SourceSymlinkManifest", "SymlinkTree"))
    lines = [f"| edited module (a comment appended) | actions of `//models:all` re-run, of {sum(mnemonics.values())} |",
             "|---|---|"]
    for module in EDITED_MODULES:
        counts = edit_cost(module)
        lines.append(f"| `py/ssd_tflite/{module}.py` | {sum(counts.values())}"
                     + "".join(f", {count} {mnemonic}" for mnemonic, count in sorted(counts.items())) + " |")
    return lines


def commands(mnemonic: str) -> dict[str, list[str]]:
    """target name -> command line of its `mnemonic` action under //models, as `bazel aquery` shows it."""
    result = subprocess.run(["tools/bazel", "aquery", "--output=jsonproto", f'mnemonic("{mnemonic}", //models:all)'],
                            check=True, capture_output=True, text=True)
    graph = json.loads(result.stdout)
    labels = {target["id"]: target["label"] for target in graph["targets"]}
    return {labels[action["targetId"]].split(":")[-1]: action["arguments"] for action in graph["actions"]}


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:")) / 1024


def worker_rss(command: list[str], output_flag: str) -> tuple[float, float]:
    """RSS (MiB) of one of our tools as a persistent worker after 1 and after WORKER_REQUESTS identical requests."""
    execroot = subprocess.run(["tools/bazel", "info", "execution_root"], check=True, capture_output=True,
                              text=True).stdout.strip()
    python, script, *flags = command
    scratch = tempfile.mkdtemp()
    flags = [f"{output_flag}={scratch}/output" if flag.startswith(output_flag + "=") else flag for flag in flags]
    worker = subprocess.Popen([python, script, "--persistent_worker"], cwd=execroot, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE)
    figures = []
    for request_id in range(1, WORKER_REQUESTS + 1):
        # As Bazel sends them: the lines of the shell-quoted params file.
        request = persistent_worker.WorkRequest(arguments=[shlex.quote(flag) for flag in flags], request_id=request_id)
        persistent_worker.write_delimited(worker.stdin, request)
        response = persistent_worker.read_delimited(worker.stdout, persistent_worker.WorkResponse)
        if response.exit_code:
            sys.exit(f"bench: worker request failed:\n{response.output}")
        if request_id in (1, WORKER_REQUESTS):
            figures.append(rss_mib(worker.pid))
    worker.stdin.close()
    worker.wait()
    return figures[0], figures[1]


def float_twins() -> dict[str, Optional[str]]:
    """Every //models model (bazel-bin/models/manifest.json) -> the float build of its checkpoint, if it is uint8."""
    with open(f"{BIN}/models/manifest.json") as manifest:
        models = json.load(manifest)["models"]
    floats = {model["zoo_repository"]: model["name"] for model in models
              if model["inference_type"] == "FLOAT" and model["zoo_repository"]}
    return {model["name"]: None if model["inference_type"] == "FLOAT" else floats.get(model["zoo_repository"])
            for model in models}


def uint8_gap(target: str, float_target: str) -> agreement.Agreement:
    """How the uint8 build's top-10 detections match the float build's on IMAGES."""
    images = [load_image(path) for path in IMAGES]
    return agreement.compare_models(detection.open_detector(f"{BIN}/models/{float_target}.tflite"),
                                    detection.open_detector(f"{BIN}/models/{target}.tflite"), images)


def main() -> None:
    arguments = sys.argv[1:]
    if arguments[:1] == ["--edits_only"]:
        write_report(edit_costs(), arguments[1:])
        return
    with tempfile.TemporaryDirectory() as scratch:
        baseline = os.path.join(scratch, "baseline")
        subprocess.run(["git", "worktree", "add", "--detach", baseline, BASELINE], check=True, capture_output=True)
        try:
            log(f"cold build of {BASELINE}")
            before = cold_build(baseline)
            bazel(baseline, "clean", "--expunge")
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", baseline], check=True)
    log("cold build without workers")
    without_workers = cold_build(".", "--spawn_strategy=sandboxed")
    log("cold build with workers")
    with_workers = cold_build(".")
    log("incremental build")
    incremental = incremental_build()
    log("test suite")
    tests = bazel(".", "test", "--nocache_test_results", "//tests/...")
    log("worker RSS")
    export_rss = worker_rss(commands("SsdExportGraph")["ssdlite_mobilenet_v2_graph"], "--output_directory")
    convert_rss = worker_rss(commands("TocoConvert")["ssdlite_mobilenet_v2_tflite"], "--output_file")
    log("edit costs")
    edits = edit_costs()
    rows = []
    for target, float_twin in float_twins().items():
        gap = uint8_gap(target, float_twin) if float_twin else ""
        rows.append(f"| `{target}` | {os.path.getsize(f'{BIN}/models/{target}.tflite') / 2**20:.1f} MiB | {gap} |")
    cores = os.cpu_count()
    with open("/proc/meminfo") as meminfo:
        memory = int(meminfo.readline().split()[1]) / 2**20
    gib = 2**30
    report = "\n".join([
        f"Measured {datetime.date.today().isoformat()} on {platform.machine()}, {cores} cores, {memory:.0f} GiB, "
        f"Python {platform.python_version()}, synthetic checkpoints, all in one `dev/bench` run.",
        "",
        "| `tools/bazel build //models:all`, cold (after `bazel clean` and `bazel shutdown`) | wall time | "
        "`bazel-bin/models` |",
        "|---|---|---|",
        f"| before ({BASELINE}: one rule per model, no workers) | {before[0]:.0f} s | {before[1] / gib:.2f} GiB |",
        f"| now, `--spawn_strategy=sandboxed` (no workers) | {without_workers[0]:.0f} s | "
        f"{without_workers[1] / gib:.2f} GiB |",
        f"| now, persistent workers (default) | {with_workers[0]:.0f} s | {with_workers[1] / gib:.2f} GiB |",
        "",
        f"Cold-build ratio, workers / no workers: {with_workers[0] / without_workers[0]:.2f}; "
        f"workers / before: {with_workers[0] / before[0]:.2f}. "
        f"`bazel-bin/models` now / before: {with_workers[1] / before[1]:.2f}.",
        "",
        f"Rebuild after editing `{EDITED_CONFIG}` (workers warm): {incremental:.0f} s. "
        f"`tools/bazel test //tests/...` with models built, `--nocache_test_results`: {tests:.0f} s.",
        "",
        f"Persistent workers, the same SSDLite request {WORKER_REQUESTS} times: the exporter's RSS "
        f"{export_rss[0]:.0f} MiB after 1 request, {export_rss[1]:.0f} MiB after {WORKER_REQUESTS}; the "
        f"converter's {convert_rss[0]:.0f} MiB, then {convert_rss[1]:.0f} MiB.",
        "",
        *edits,
        "",
        "| target | .tflite | uint8 vs float: top-10 detections on 2 photos matched, mean IoU, mean score gap |",
        "|---|---|---|",
        *rows,
    ])
    write_report(report.splitlines(), arguments)


def write_report(lines: list[str], arguments: list[str]) -> None:
    """Prints the report, and writes it to the file named by the first argument if there is one."""
    report = "\n".join(lines)
    print(report)
    if arguments:
        with open(arguments[0], "w") as out:
            out.write(report + "\n")


if __name__ == "__main__":
    main()
