"""The Ray driver loop's rules, on stand-in actors (no Ray runtime): requeue, limits, order."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import ray
from PIL import Image

from relight_inpaint.host import batch, cluster

INFO = {"pack_version": "1.0", "models": {"relight_default.safetensors": "ab" * 32}}


def png_bytes(seed: int) -> bytes:
    buffer = io.BytesIO()
    pixels = np.random.default_rng(seed).integers(0, 255, (8, 8, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


class Ref:
    def __init__(self, make: Callable[[], object]) -> None:
        self.make = make


class Method:
    def __init__(self, call: Callable) -> None:
        self.call = call

    def remote(self, *args: object) -> Ref:
        return Ref(lambda: self.call(*args))


class FakeActor:
    """Renders with `behaviour(line)`: an Outcome status, or an exception to raise from get."""

    def __init__(self, name: str, behaviour: Callable[[int], object], log: list) -> None:
        self.name = name

        def render(options: dict, inputs: object, prompt_id: str) -> batch.Outcome:
            line = options["seed"]
            log.append((name, line))
            result = behaviour(line)
            if isinstance(result, BaseException):
                raise result
            return batch.Outcome(result, name, 0.1, png_bytes(line), "" if result else "")

        self.render = Method(render)
        self.cancel = Method(lambda prompt_id: None)


@pytest.fixture(autouse=True)
def fake_ray(monkeypatch: pytest.MonkeyPatch) -> None:
    def wait(refs: list, num_returns: int = 1, timeout: float | None = None) -> tuple:
        return refs[:num_returns], refs[num_returns:]

    def get(ref: Ref) -> object:
        return ref.make()

    monkeypatch.setattr(cluster.ray, "wait", wait)
    monkeypatch.setattr(cluster.ray, "get", get)
    monkeypatch.setattr(cluster.ray, "kill", lambda actor: None)


def make_jobs(folder: Path, count: int) -> list[batch.BatchJob]:
    (folder / "mask.png").write_bytes(png_bytes(99))
    lines = []
    for line in range(1, count + 1):
        (folder / f"p{line}.png").write_bytes(png_bytes(line))
        lines.append(json.dumps({"image": f"p{line}.png", "mask": "mask.png", "seed": line}))
    jobs, bad = batch.prepare_batch(lines, folder, folder / "out")
    assert not bad
    return jobs


def run_on(actors: list[FakeActor], jobs: list[batch.BatchJob], out: Path) -> dict:
    servers = cluster.RayServers([], None)
    servers.workers = [cluster.Worker(actor, actor.name) for actor in actors]
    servers._actors = list(actors)  # as __enter__ leaves them
    run = batch.BatchRun(out, jobs, {}, INFO)
    servers.run(jobs, run)
    run.close()
    return run.entries


def test_an_item_whose_server_is_lost_is_rendered_once_on_another(tmp_path: Path) -> None:
    log: list = []
    jobs = make_jobs(tmp_path, 5)
    dying = FakeActor("a", lambda line: batch.SERVER_LOST if line == 1 else batch.DONE, log)
    healthy = FakeActor("b", lambda line: batch.DONE, log)

    entries = run_on([dying, healthy], jobs, tmp_path / "out")

    assert all(entry["status"] == "done" for entry in entries.values())
    assert entries[1]["server"] == "b" and entries[1]["lost_on"][0]["server"] == "a"
    assert ("a", 2) not in log  # the lost server's actor gets nothing more
    assert sorted(line for _, line in log) == [1, 1, 2, 3, 4, 5]


def test_a_dead_actor_counts_as_a_lost_server(tmp_path: Path) -> None:
    log: list = []
    jobs = make_jobs(tmp_path, 3)
    dead = FakeActor("a", lambda line: ray.exceptions.ActorDiedError(), log)
    healthy = FakeActor("b", lambda line: batch.DONE, log)

    entries = run_on([dead, healthy], jobs, tmp_path / "out")

    assert [entry["status"] for entry in entries.values()] == ["done"] * 3
    assert "actor was lost" in entries[1]["lost_on"][0]["reason"]


def test_an_item_that_brings_servers_down_fails_before_it_takes_them_all(tmp_path: Path) -> None:
    log: list = []
    jobs = make_jobs(tmp_path, 4)

    def poison(line: int) -> str:
        return batch.SERVER_LOST if line == 1 else batch.DONE

    actors = [FakeActor(name, poison, log) for name in ("a", "b", "c")]
    entries = run_on(actors, jobs, tmp_path / "out")

    assert entries[1]["status"] == "failed" and len(entries[1]["lost_on"]) == cluster.MAX_LOSSES
    assert "not tried again" in entries[1]["reason"]
    assert [entries[line]["status"] for line in (2, 3, 4)] == ["done"] * 3
    assert [server for server, line in log if line == 1] == ["a", "b"]  # c never got it
    assert entries[4]["server"] == "c"


def test_when_every_server_is_lost_the_rest_fail_with_the_reason(tmp_path: Path) -> None:
    log: list = []
    jobs = make_jobs(tmp_path, 3)
    actors = [FakeActor(name, lambda line: batch.SERVER_LOST, log) for name in ("a",)]

    entries = run_on(actors, jobs, tmp_path / "out")

    assert [entry["status"] for entry in entries.values()] == ["failed"] * 3
    assert entries[3]["reason"] == "every server was lost"


def test_items_go_out_in_priority_then_manifest_order(tmp_path: Path) -> None:
    log: list = []
    jobs = make_jobs(tmp_path, 4)
    jobs[2].priority = 2
    jobs[3].priority = 1
    run_on([FakeActor("a", lambda line: batch.DONE, log)], batch.run_order(jobs), tmp_path / "o")
    assert [line for _, line in log] == [3, 4, 1, 2]


def test_a_cluster_address_nothing_answers_at_is_refused_without_starting_ray(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    from relight_inpaint.host import cli, comfy_server

    calls: list[str] = []

    def never(name: str) -> Callable:
        return lambda *args, **kwargs: calls.append(name)  # any Ray call would start a runtime

    monkeypatch.setattr(cli, "stop_on_signals", lambda: None)
    for name in ("init", "wait", "get", "kill", "shutdown"):
        monkeypatch.setattr(cluster.ray, name, never(name))
    make_jobs(tmp_path, 1)
    manifest = tmp_path / "batch.jsonl"
    manifest.write_text('{"image": "p1.png", "mask": "mask.png"}\n')
    address = f"127.0.0.1:{comfy_server.free_port()}"

    status = cli.main(
        ["batch", str(manifest), "--out-dir", str(tmp_path / "o"), "--cluster", address]
    )

    assert status == 1
    assert f"cannot reach the Ray cluster at {address}" in capsys.readouterr().err
    assert calls == []
