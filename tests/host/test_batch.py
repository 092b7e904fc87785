"""The batch's bookkeeping without a server: records, resume, order, report, progress."""

from __future__ import annotations

import io
import json
import os
import signal
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from relight_testing.batch_stand_in import INFO, png_bytes

from relight_inpaint.host import batch, comfy_server, png_record, rendering


def manifest_line(line: int, **options: object) -> str:
    return json.dumps({"image": f"photo{line}.png", "mask": "mask.png", **options})


@pytest.fixture
def jobs(tmp_path: Path) -> list[batch.BatchJob]:
    (tmp_path / "mask.png").write_bytes(png_bytes(99))
    for line in range(1, 4):
        (tmp_path / f"photo{line}.png").write_bytes(png_bytes(line))
    lines = [manifest_line(line, steps=2) for line in range(1, 4)]
    made, bad = batch.prepare_batch(lines, tmp_path, tmp_path / "out")
    assert not bad
    batch.load_jobs(made, INFO)
    return made


def finish_all(out_dir: Path, jobs: list[batch.BatchJob]) -> batch.BatchRun:
    run = batch.BatchRun(out_dir, jobs, {}, INFO)
    for job in run.skip_done(jobs):
        run.finish(job, batch.Outcome(batch.DONE, "server-a", 1.5, png_bytes(job.line)))
    return run


def test_the_text_chunk_reads_back_and_leaves_the_pixels_alone(tmp_path: Path) -> None:
    original = png_bytes(3)
    path = tmp_path / "x.png"
    path.write_bytes(png_record.add_text_chunk(original, "relight-inpaint", '{"key": "k"}'))

    assert png_record.read_text_chunk(path, "relight-inpaint") == '{"key": "k"}'
    with Image.open(path) as marked, Image.open(io.BytesIO(original)) as plain:
        assert marked.info["relight-inpaint"] == '{"key": "k"}'
        assert np.array_equal(np.asarray(marked), np.asarray(plain))
    assert png_record.read_text_chunk(path, "other") is None
    (tmp_path / "plain.png").write_bytes(original)
    assert png_record.read_text_chunk(tmp_path / "plain.png", "relight-inpaint") is None
    (tmp_path / "junk.png").write_bytes(b"not a png")
    assert png_record.read_text_chunk(tmp_path / "junk.png", "relight-inpaint") is None
    with pytest.raises(png_record.NotPng):
        png_record.add_text_chunk(b"GIF89a...", "k", "v")


def test_priority_first_then_manifest_order(jobs: list[batch.BatchJob]) -> None:
    jobs[2].priority = 5
    jobs[0].priority = -1
    assert [job.line for job in batch.run_order(jobs)] == [3, 2, 1]


def test_each_output_and_the_job_record_say_what_made_it(
    tmp_path: Path, jobs: list[batch.BatchJob]
) -> None:
    finish_all(tmp_path / "out", jobs)

    lines = (tmp_path / "out" / batch.JOB_RECORD_NAME).read_text().splitlines()
    assert [json.loads(line)["out"] for line in lines] == ["photo1.png", "photo2.png", "photo3.png"]
    first = json.loads(lines[0])
    assert first["server"] == "server-a" and first["seconds"] == 1.5
    record = json.loads(png_record.read_text_chunk(jobs[0].out, batch.RECORD_KEYWORD))
    assert record["key"] == first["key"] == jobs[0].key
    assert record["model"] == {"name": "relight_default.safetensors", "sha256": "ab" * 32}
    assert record["pack"] == "1.0" and record["options"] == {"steps": 2}
    assert record["inputs"]["image"] == rendering.sha256(jobs[0].item.image.read_bytes())
    assert record["inputs"]["mask"] == rendering.sha256(jobs[0].item.mask.read_bytes())


def test_a_rerun_skips_what_is_done_and_redoes_what_changed(
    tmp_path: Path, jobs: list[batch.BatchJob]
) -> None:
    out_dir = tmp_path / "out"
    finish_all(out_dir, jobs)
    assert batch.BatchRun(out_dir, jobs, {}, INFO).skip_done(jobs) == []

    jobs[0].text = manifest_line(1, steps=3)  # another option
    jobs[1].out.write_bytes(png_bytes(50))  # replaced by a file that does not say what made it
    (tmp_path / "mask3.png").write_bytes(png_bytes(98))  # another mask
    jobs[2].text = json.dumps({"image": "photo3.png", "mask": "mask3.png", "steps": 2})
    todo = batch.BatchRun(out_dir, jobs, {}, INFO).skip_done(jobs)
    assert [job.line for job in todo] == [1, 2, 3]


def test_another_model_or_pack_version_redoes_everything(
    tmp_path: Path, jobs: list[batch.BatchJob]
) -> None:
    finish_all(tmp_path / "out", jobs)
    for info in (
        {**INFO, "pack_version": "1.1"},
        {**INFO, "models": {"relight_default.safetensors": "cd" * 32}},
    ):
        assert len(batch.BatchRun(tmp_path / "out", jobs, {}, info).skip_done(jobs)) == 3


def test_an_output_without_its_record_line_or_a_torn_line_is_redone(
    tmp_path: Path, jobs: list[batch.BatchJob]
) -> None:
    out_dir = tmp_path / "out"
    finish_all(out_dir, jobs)
    record = out_dir / batch.JOB_RECORD_NAME
    lines = record.read_text().splitlines()
    record.write_text(lines[0] + "\n" + lines[2][: len(lines[2]) // 2])  # crash mid-line
    todo = batch.BatchRun(out_dir, jobs, {}, INFO).skip_done(jobs)
    assert [job.line for job in todo] == [2, 3]


def test_servers_that_differ_are_refused_by_name() -> None:
    other = {**INFO, "models": {"relight_default.safetensors": "cd" * 32}}
    with pytest.raises(comfy_server.ServerError, match="server-a .*server-b"):
        batch.agreed_info({"server-a": INFO, "server-b": other})
    assert batch.agreed_info({"server-a": INFO, "server-b": dict(INFO)}) == INFO


def test_ctrl_c_waits_until_the_output_and_its_line_are_written() -> None:
    finished = []
    with pytest.raises(KeyboardInterrupt):
        with batch.interrupts_deferred():
            os.kill(os.getpid(), signal.SIGINT)
            finished.append("output")
            finished.append("record line")
    assert finished == ["output", "record line"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_the_report_has_every_item_with_its_status(
    tmp_path: Path, jobs: list[batch.BatchJob]
) -> None:
    out_dir = tmp_path / "out"
    run = batch.BatchRun(out_dir, jobs, {7: "line 7: not valid JSON"}, INFO)
    run.finish(jobs[0], batch.Outcome(batch.DONE, "server-a", 2.0, png_bytes()))
    run.server_lost(jobs[1], batch.Outcome(batch.SERVER_LOST, "server-b", 0.5, reason="gone"))
    run.finish(jobs[1], batch.Outcome(batch.FAILED, "server-a", 0.2, reason="node 6: bad"))

    counts = run.close(interrupted=True)

    report = [json.loads(line) for line in (out_dir / batch.REPORT_NAME).read_text().splitlines()]
    assert [(entry["line"], entry["status"]) for entry in report] == [
        (1, "done"),
        (2, "failed"),
        (3, "cancelled"),
        (7, "failed"),
    ]
    assert report[0]["server"] == "server-a" and report[0]["seconds"] == 2.0
    assert report[1]["reason"] == "node 6: bad"
    assert report[1]["lost_on"] == [{"server": "server-b", "reason": "gone"}]
    assert counts == {"done": 1, "failed": 2, "cancelled": 1}


def test_the_bar_shows_done_failed_rate_and_time_left() -> None:
    stream = io.StringIO()
    progress = batch.Progress(4, file=stream, disable=False)
    progress.item_ended(True)
    progress.item_ended(False)
    progress.close()
    text = stream.getvalue().split("\r")[-1]
    assert "2/4" in text and "done 1, failed 1" in text
    assert "image/s" in text and "<" in text  # rate, and elapsed<remaining


def test_an_item_on_a_server_that_is_gone_is_a_lost_server_not_a_failed_item(
    jobs: list[batch.BatchJob],
) -> None:
    url = f"http://127.0.0.1:{comfy_server.free_port()}"
    outcome = batch.render_item(url, "gone", {}, jobs[0].inputs, comfy_server.new_id())
    assert outcome.status == batch.SERVER_LOST and outcome.png is None
    assert "gone stopped answering" in outcome.reason


def test_several_servers_without_ray_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    from relight_inpaint.host import cli

    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now fails, as when not installed
    monkeypatch.delitem(sys.modules, "relight_inpaint.host.cluster", raising=False)
    monkeypatch.setattr(cli, "check_server", lambda url: None)
    monkeypatch.setattr(cli, "stop_on_signals", lambda: None)
    manifest = tmp_path / "batch.jsonl"
    manifest.write_text("")
    servers = ["--server", "http://a:8188", "--server", "http://b:8188"]

    status = cli.main(["batch", str(manifest), "--out-dir", str(tmp_path / "out"), *servers])

    assert status == 2
    error = capsys.readouterr().err
    assert "--server" in error and "Ray" in error and "requirements-cluster.txt" in error


def test_the_nodes_never_import_ray() -> None:
    root = Path(batch.__file__).resolve().parents[1]
    for package in ("nodes", "conditioning", "model_loader", "sampling"):
        for source in (root / package).rglob("*.py"):
            text = source.read_text()
            assert "import ray" not in text and "from ray" not in text, source


def test_two_lines_cannot_write_the_same_output(tmp_path: Path) -> None:
    (tmp_path / "mask.png").write_bytes(png_bytes(99))
    (tmp_path / "a.png").write_bytes(png_bytes(1))
    lines = [
        json.dumps({"image": "a.png", "mask": "mask.png", "out": "same.png"}),
        json.dumps({"image": "a.png", "mask": "mask.png", "out": "sub/../same.png"}),
        json.dumps({"image": "a.png", "mask": "mask.png"}),
        json.dumps({"image": "a.png", "mask": "mask.png", "out": "a.png"}),
    ]
    jobs, bad = batch.prepare_batch(lines, tmp_path, tmp_path / "out")
    # a named output wins over a default name: line 3 falls back to a_3.png
    assert [job.out.name for job in jobs] == ["same.png", "a_3.png", "a.png"]
    assert sorted(bad) == [2] and "already the output of line 1" in bad[2]


def test_a_priority_too_large_for_a_number_is_a_bad_line(tmp_path: Path) -> None:
    (tmp_path / "mask.png").write_bytes(png_bytes(99))
    (tmp_path / "a.png").write_bytes(png_bytes(1))
    line = '{"image": "a.png", "mask": "mask.png", "priority": ' + "9" * 400 + "}"
    jobs, bad = batch.prepare_batch([line], tmp_path, tmp_path / "out")
    assert jobs == [] and "priority: expected a number" in bad[1]


def test_an_interrupt_is_not_lost_when_the_deferred_block_fails() -> None:
    with pytest.raises(KeyboardInterrupt):
        with batch.interrupts_deferred():
            os.kill(os.getpid(), signal.SIGINT)
            raise OSError("disk full")
