"""`relight batch` over two ComfyUI servers on 127.0.0.1 through a local Ray runtime.

The session's server and a second one with a base directory of its own (two servers sharing
one would share their input and output folders). Items are tiny photos on the CPU.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import requests
from PIL import Image
from relight_testing.cli_runs import cli_files, run_cli, start_cli

from relight_inpaint.host.batch import JOB_RECORD_NAME, REPORT_NAME
from relight_inpaint.host.comfy_server import Server, answers, make_base_dir, start_server

pytestmark = pytest.mark.needs_pack_nodes
EXACT_MASK = {"grow": 0, "feather": 0, "cast_shadow": "off"}  # outside the mask: the photo


def own_server(folder: Path) -> Server:
    return start_server(base_dir=make_base_dir(folder / "base"), log_path=folder / "server.log")


@pytest.fixture(scope="module")
def second_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with own_server(tmp_path_factory.mktemp("second_server")) as server:
        yield server


@pytest.fixture
def victim_server(tmp_path: Path) -> Iterator[Server]:
    with own_server(tmp_path / "victim") as server:
        yield server


def write_batch(folder: Path, items: list[dict], size: int = 64) -> Path:
    """Distinct photos (item i: seed i), one shared mask, and the manifest."""
    folder.mkdir(parents=True, exist_ok=True)
    mask = np.zeros((size, size), np.uint8)
    mask[size // 4 : 3 * size // 4, size // 4 : 3 * size // 4] = 255
    Image.fromarray(mask, "L").save(folder / "mask.png")
    lines = []
    for index, options in enumerate(items):
        rng = np.random.default_rng(index)
        ramp = np.linspace(0, 200, size, dtype=np.float32)
        pixels = ramp[None, :, None] + rng.integers(0, 55, (size, size, 3))
        Image.fromarray(pixels.astype(np.uint8), "RGB").save(folder / f"photo{index:02d}.png")
        files = {"image": f"photo{index:02d}.png", "mask": "mask.png"}
        lines.append(json.dumps({**files, **EXACT_MASK, **options}))
    manifest = folder / "batch.jsonl"
    manifest.write_text("\n".join(lines) + "\n")
    return manifest


def assert_output_is_its_photo_relit(folder: Path, out_dir: Path, index: int) -> None:
    """Same size, and outside the mask the very pixels of its own photo (not another item's)."""
    photo = np.asarray(Image.open(folder / f"photo{index:02d}.png").convert("RGB"))
    keep = np.asarray(Image.open(folder / "mask.png")) == 0
    out = np.asarray(Image.open(out_dir / f"photo{index:02d}.png").convert("RGB"))
    assert out.shape == photo.shape
    assert np.array_equal(out[keep], photo[keep]), f"item {index}: pixels outside the mask"


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def left_on(*servers: Server) -> set[Path]:
    return set().union(*(cli_files(server.base_dir) for server in servers))


def queue(server: Server) -> dict:
    return requests.get(f"{server.url}/queue", timeout=10).json()


def wait_for(condition, timeout: float, what: str, process: subprocess.Popen | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        if process is not None and process.poll() is not None:
            raise AssertionError(f"the batch ended before {what}: {process.stderr.read()}")
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def server_args(*servers: Server) -> list[str]:
    return [arg for server in servers for arg in ("--server", server.url)]


def start_batch(tmp_path: Path, items: int, *servers: Server) -> tuple[subprocess.Popen, Path]:
    """A batch of `items` 128 px photos (12 steps) in the background, over these servers."""
    manifest = write_batch(tmp_path / "in", [{"steps": 12} for _ in range(items)], size=128)
    out_dir = tmp_path / "out"
    args = ["batch", str(manifest), "--out-dir", str(out_dir), *server_args(*servers)]
    return start_cli(*args), out_dir


def test_twenty_items_over_two_servers_each_output_right_and_nothing_left_on_them(
    comfy_server: Server, second_server: Server, tmp_path: Path
) -> None:
    manifest = write_batch(tmp_path / "in", [{"steps": 2, "seed": i} for i in range(20)])
    out_dir = tmp_path / "out"
    left_before = left_on(comfy_server, second_server)

    result = run_cli(
        "batch", str(manifest), "--out-dir", str(out_dir), *server_args(comfy_server, second_server)
    )

    assert result.returncode == 0, result.stderr
    for index in range(20):
        assert_output_is_its_photo_relit(tmp_path / "in", out_dir, index)
    report = read_jsonl(out_dir / REPORT_NAME)
    assert [entry["status"] for entry in report] == ["done"] * 20
    assert {entry["server"] for entry in report} == {comfy_server.url, second_server.url}
    record = read_jsonl(out_dir / JOB_RECORD_NAME)
    assert sorted(entry["out"] for entry in record) == [f"photo{i:02d}.png" for i in range(20)]
    assert not list(out_dir.glob(".*.part"))
    assert left_on(comfy_server, second_server) == left_before
    assert "20 written, 0 failed" in result.stderr


def test_a_server_killed_mid_item_its_item_and_the_rest_finish_on_the_other(
    comfy_server: Server, victim_server: Server, tmp_path: Path
) -> None:
    batch, out_dir = start_batch(tmp_path, 20, victim_server, comfy_server)

    wait_for(lambda: queue(victim_server)["queue_running"], 180, "an item on the victim", batch)
    os.killpg(victim_server.process.pid, signal.SIGKILL)
    _, stderr = batch.communicate(timeout=300)

    assert batch.returncode == 0, stderr
    report = read_jsonl(out_dir / REPORT_NAME)
    assert [entry["status"] for entry in report] == ["done"] * 20
    lost = [entry for entry in report if entry.get("lost_on")]
    assert len(lost) == 1 and lost[0]["lost_on"][0]["server"] == victim_server.url
    assert lost[0]["server"] == comfy_server.url
    assert "rendering it again on another server" in stderr
    record = read_jsonl(out_dir / JOB_RECORD_NAME)  # exactly one success line per item
    assert sorted(entry["out"] for entry in record) == [f"photo{i:02d}.png" for i in range(20)]
    assert sorted(path.name for path in out_dir.iterdir()) == sorted(
        [f"photo{i:02d}.png" for i in range(20)] + [JOB_RECORD_NAME, REPORT_NAME]
    )
    for index in range(20):
        assert_output_is_its_photo_relit(tmp_path / "in", out_dir, index)


def parent(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return 0


def descends_from(pid: int, ancestor: int) -> bool:
    while pid > 1:
        if pid == ancestor:
            return True
        pid = parent(pid)
    return False


def rendering_actors(batch: subprocess.Popen) -> list[int]:
    """This batch's actor processes while they render (Ray names a worker process after the
    method it runs; the batch's local Ray runtime is its child)."""
    found = subprocess.run(
        ["pgrep", "-f", "ray::ServerActor.render"], capture_output=True, text=True
    )
    return [int(pid) for pid in found.stdout.split() if descends_from(int(pid), batch.pid)]


def test_an_actor_killed_mid_item_its_item_goes_to_the_other_server(
    comfy_server: Server, second_server: Server, tmp_path: Path
) -> None:
    batch, out_dir = start_batch(tmp_path, 8, comfy_server, second_server)

    wait_for(lambda: len(rendering_actors(batch)) == 2, 180, "both actors rendering", batch)
    os.kill(rendering_actors(batch)[0], signal.SIGKILL)
    _, stderr = batch.communicate(timeout=300)

    assert batch.returncode == 0, stderr
    report = read_jsonl(out_dir / REPORT_NAME)
    assert [entry["status"] for entry in report] == ["done"] * 8
    lost = [entry for entry in report if entry.get("lost_on")]
    assert len(lost) == 1 and "actor was lost" in lost[0]["lost_on"][0]["reason"]
    assert lost[0]["server"] != lost[0]["lost_on"][0]["server"]
    assert len(read_jsonl(out_dir / JOB_RECORD_NAME)) == 8
    for index in range(8):
        assert_output_is_its_photo_relit(tmp_path / "in", out_dir, index)


def latest_status(server: Server) -> dict:
    history = requests.get(f"{server.url}/history", params={"max_items": 1}, timeout=10).json()
    return next(iter(history.values()))["status"]


def test_ctrl_c_interrupts_every_server_and_a_rerun_does_only_the_missing_items(
    comfy_server: Server, second_server: Server, tmp_path: Path
) -> None:
    long = [{"steps": 400} for _ in range(2)]  # still running when Ctrl-C comes
    short = [{"steps": 2, "priority": 1} for _ in range(4)]  # later lines, but they run first
    manifest = write_batch(tmp_path / "in", long + short, size=128)
    out_dir = tmp_path / "out"
    args = ["batch", str(manifest), "--out-dir", str(out_dir)]
    servers = server_args(comfy_server, second_server)
    left_before = left_on(comfy_server, second_server)
    batch = start_cli(*args, *servers)

    def both_busy_after_the_short_ones() -> bool:
        record = out_dir / JOB_RECORD_NAME
        done = len(read_jsonl(record)) if record.exists() else 0
        return done == 4 and all(queue(s)["queue_running"] for s in (comfy_server, second_server))

    wait_for(both_busy_after_the_short_ones, 180, "the long items to run", batch)
    batch.send_signal(signal.SIGINT)
    _, stderr = batch.communicate(timeout=60)

    assert batch.returncode == 130, stderr
    assert "batch interrupted: 4 written, 2 not done" in stderr
    for server in (comfy_server, second_server):
        wait_for(lambda s=server: not queue(s)["queue_running"], 5, "the servers to stop")
        assert not queue(server)["queue_pending"]
        assert "execution_interrupted" in json.dumps(latest_status(server))
    assert left_on(comfy_server, second_server) == left_before  # cleaned up too
    assert sorted(path.name for path in out_dir.glob("*.png")) == [
        f"photo{i:02d}.png" for i in range(2, 6)
    ]
    assert not list(out_dir.glob(".*"))  # no half-written file
    report = read_jsonl(out_dir / REPORT_NAME)
    assert [entry["status"] for entry in report] == ["cancelled"] * 2 + ["done"] * 4
    written = {
        path.name: (path.read_bytes(), path.stat().st_mtime_ns) for path in out_dir.glob("*.png")
    }

    quick = write_batch(tmp_path / "in", [{"steps": 2} for _ in range(2)] + short, size=128)
    rerun = run_cli("batch", str(quick), "--out-dir", str(out_dir), *servers)

    assert rerun.returncode == 0, rerun.stderr
    report = read_jsonl(out_dir / REPORT_NAME)
    assert [entry["status"] for entry in report] == ["done"] * 2 + ["skipped"] * 4
    for name, (data, mtime) in written.items():
        assert (out_dir / name).read_bytes() == data
        assert (out_dir / name).stat().st_mtime_ns == mtime
    assert len(read_jsonl(out_dir / JOB_RECORD_NAME)) == 6
    for index in range(6):
        assert_output_is_its_photo_relit(tmp_path / "in", out_dir, index)


def test_cluster_local_starts_its_own_server_and_stops_it_after(tmp_path: Path) -> None:
    manifest = write_batch(tmp_path / "in", [{"steps": 2} for _ in range(2)])
    out_dir = tmp_path / "out"

    result = run_cli("batch", str(manifest), "--out-dir", str(out_dir), "--cluster", "local")

    assert result.returncode == 0, result.stderr
    report = read_jsonl(out_dir / REPORT_NAME)
    assert [entry["status"] for entry in report] == ["done", "done"]
    port = int(report[0]["server"].rsplit(":", 1)[1])  # "<host>:<port>" of the server it started
    left = subprocess.run(["pgrep", "-f", f"main.py .*--port {port} "], capture_output=True)
    assert not left.stdout, "the batch's own server outlived the batch"
    assert not answers(f"http://127.0.0.1:{port}")
    for index in range(2):
        assert_output_is_its_photo_relit(tmp_path / "in", out_dir, index)
