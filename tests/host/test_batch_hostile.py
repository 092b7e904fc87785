"""`relight batch` against a hostile manifest or a careless disk (issue 25), through the CLI on a
stand-in server: one line, one output; nothing written outside --out-dir; every line fails
alone, named; a rerun trusts only whole outputs; the manifest is read as it runs."""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image
from relight_testing.batch_stand_in import StandIn, install_stand_in, png_bytes

from relight_inpaint.conditioning import checks
from relight_inpaint.host import batch, cli, png_record, rendering

HANG_GUARD_S = 60  # generous: only a hang trips it


def chunk(kind: bytes, data: bytes) -> bytes:
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))


def bomb_png(width: int = 50_000, height: int = 50_000) -> bytes:
    """A PNG whose header claims a huge image (the pixels are never there)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return png_record.SIGNATURE + chunk(b"IHDR", header) + chunk(b"IEND", b"")


@pytest.fixture
def stand_in(monkeypatch: pytest.MonkeyPatch) -> StandIn:
    return install_stand_in(monkeypatch)


@contextlib.contextmanager
def hang_guard(seconds: float = HANG_GUARD_S) -> Iterator[None]:
    def interrupt(signum: int, frame: object) -> None:
        raise TimeoutError(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, interrupt)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "m.png").write_bytes(png_bytes(99))
    for name in ("a", "b", "small"):
        (tmp_path / f"{name}.png").write_bytes(png_bytes(len(name)))
    return tmp_path


def line(image: str = "a.png", **fields: object) -> str:
    return json.dumps({"image": image, "mask": "m.png", **fields})


def run_batch(folder: Path, lines: list[str], *extra: str, raw: bytes | None = None) -> int:
    manifest = folder / "batch.jsonl"
    manifest.write_bytes(raw if raw is not None else ("\n".join(lines) + "\n").encode())
    with hang_guard():
        return cli.main(["batch", str(manifest), "--out-dir", str(folder / "out"), *extra])


def report(folder: Path) -> dict[int, dict]:
    text = (folder / "out" / batch.REPORT_NAME).read_text()
    return {entry["line"]: entry for entry in map(json.loads, text.splitlines())}


def outputs(folder: Path) -> list[str]:
    out = folder / "out"
    return sorted(str(path.relative_to(out)) for path in out.rglob("*.png") if path.is_file())


def record_lines(folder: Path) -> list[dict]:
    text = (folder / "out" / batch.JOB_RECORD_NAME).read_text()
    return [json.loads(text_line) for text_line in text.splitlines()]


# --- 1. one line, one output, decided on the real path ----------------------------------------


def test_a_fallback_name_never_takes_a_named_output(folder: Path, stand_in: StandIn) -> None:
    """Mutation caught: the fallback <stem>_<line>.png not checked against names taken."""
    lines = [line("b.png", seed=1), line("small.png", out="b_3.png", seed=2), line("b.png", seed=3)]

    assert run_batch(folder, lines) == 0
    assert outputs(folder) == ["b.png", "b_3.png", "b_3_2.png"]
    assert run_batch(folder, lines) == 0  # a rerun finds all three done
    assert stand_in.rendered == [1, 2, 3]
    assert {entry["status"] for entry in report(folder).values()} == {"skipped"}
    assert len(record_lines(folder)) == 3


def test_a_link_alias_of_a_named_output_is_the_same_output(folder: Path, stand_in: StandIn) -> None:
    """Mutation caught: the duplicate check on the path as written (os.path.normpath)."""
    (folder / "out").mkdir()
    (folder / "out" / "alias").symlink_to(".")
    lines = [line(out="x.png"), line("b.png", out="alias/x.png")]

    assert run_batch(folder, lines) == 1
    entries = report(folder)
    assert entries[1]["status"] == "done" and entries[2]["status"] == "failed"
    assert "alias/x.png is already the output of line 1" in entries[2]["reason"]
    assert run_batch(folder, lines) == 1 and len(stand_in.rendered) == 1


# --- 2. the write re-checks containment --------------------------------------------------------


def test_a_folder_made_a_link_after_planning_is_not_written_through(
    folder: Path, stand_in: StandIn
) -> None:
    """Mutation caught: the output written by path (following links), as before."""
    elsewhere = folder / "elsewhere"
    elsewhere.mkdir()
    stand_in.before(2, lambda: (folder / "out" / "late").symlink_to(elsewhere))
    lines = [line(out="first.png"), line("b.png", out="late/victim.png")]

    assert run_batch(folder, lines) == 1
    assert list(elsewhere.iterdir()) == []
    entry = report(folder)[2]
    assert entry["status"] == "failed" and "late is a link" in entry["reason"]
    assert report(folder)[1]["status"] == "done"


# --- 3, 4. every line fails alone, named -------------------------------------------------------


def test_bad_lines_each_fail_alone_and_the_batch_goes_on(folder: Path, stand_in: StandIn) -> None:
    """Mutations caught: the pack's size check from the header removed (Pillow's bomb error, not
    this message), the regular-file check removed (/dev/null read as an empty file: another
    message; a FIFO hangs: the guard trips), the NUL check removed (ValueError mid-batch)."""
    (folder / "bomb.png").write_bytes(bomb_png())
    (folder / "broken.png").write_bytes(png_bytes(5)[:60])
    os.mkfifo(folder / "fifo.png")
    lines = [
        line("bomb.png", seed=1),
        line(mask="fifo.png", seed=2),
        line("/dev/null", seed=3),
        line(out="x\u0000.png", seed=4),
        line("broken.png", seed=5),
        line("b.png", seed=6),
    ]

    assert run_batch(folder, lines) == 1
    entries = report(folder)
    assert "header says 50000x50000 px" in entries[1]["reason"]
    assert "the limit is 16384 px a side" in entries[1]["reason"]
    assert "fifo.png is a FIFO (named pipe); expected a regular file" in entries[2]["reason"]
    assert "/dev/null is a character device; expected a regular file" in entries[3]["reason"]
    assert "out: a NUL character in the name" in entries[4]["reason"]
    assert "broken.png: not a readable image" in entries[5]["reason"]
    assert [entries[n]["status"] for n in range(1, 7)] == ["failed"] * 5 + ["done"]
    assert stand_in.rendered == [6]


def test_relight_run_refuses_a_bomb_sized_mask_from_its_header(
    folder: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Mutation caught: the header check removed (DecompressionBombError's traceback)."""
    monkeypatch.setattr(cli, "stop_on_signals", lambda: None)
    monkeypatch.setattr(cli, "run_one", lambda *args: pytest.fail("rendered a bomb"))
    (folder / "bomb.png").write_bytes(bomb_png())
    args = ["run", "--image", str(folder / "a.png"), "--mask", str(folder / "bomb.png")]

    assert cli.main([*args, "--out", str(folder / "o.png")]) == 2
    assert "--mask: " in (error := capsys.readouterr().err)
    assert "header says 50000x50000 px" in error


def test_the_command_lines_size_limit_is_the_packs() -> None:
    assert (rendering.MAX_SIDE, rendering.MAX_MEGAPIXELS) == (
        checks.MAX_SIDE,
        checks.MAX_MEGAPIXELS,
    )


# --- 5. a rerun trusts only whole outputs whose record matches ---------------------------------


def damage(path: Path, how: str) -> None:
    data = bytearray(path.read_bytes())
    text_at = data.index(b"tEXtrelight-inpaint")
    idat_at = data.index(b"IDAT")
    if how == "cut after the record":
        length = struct.unpack(">I", data[text_at - 4 : text_at])[0]
        del data[text_at + 4 + length + 4 + 10 :]
    elif how == "bad CRC in the record":
        length = struct.unpack(">I", data[text_at - 4 : text_at])[0]
        data[text_at + 4 + length] ^= 0xFF
    elif how == "garbage over the pixels, CRC made to match":
        length = struct.unpack(">I", data[idat_at - 4 : idat_at])[0]
        data[idat_at + 4 : idat_at + 4 + length] = b"\x55" * length
        crc = zlib.crc32(bytes(data[idat_at : idat_at + 4 + length]))
        data[idat_at + 4 + length : idat_at + 8 + length] = struct.pack(">I", crc)
    elif how == "bytes after IEND":
        data += b"tail"
    path.write_bytes(bytes(data))


DAMAGES = [
    "cut after the record",
    "bad CRC in the record",
    "garbage over the pixels, CRC made to match",
    "bytes after IEND",
]


def test_a_rerun_renders_again_every_damaged_output_and_keeps_one_record_line_each(
    folder: Path, stand_in: StandIn
) -> None:
    """Mutations caught: is_done trusting the chunk's key alone (all four skipped); the
    pixels not decoded (the garbage one skipped); the record file not compacted (it grows)."""
    lines = [line(out=f"{n}.png", seed=n) for n in range(1, 6)]
    assert run_batch(folder, lines) == 0
    for number, how in enumerate(DAMAGES, start=1):
        damage(folder / "out" / f"{number}.png", how)

    assert run_batch(folder, lines) == 0
    assert stand_in.rendered == [1, 2, 3, 4, 5, 1, 2, 3, 4]
    assert report(folder)[5]["status"] == "skipped"
    assert sorted(entry["out"] for entry in record_lines(folder)) == [
        f"{n}.png" for n in range(1, 6)
    ]
    for number in range(1, 6):
        assert batch.output_is_whole(folder / "out" / f"{number}.png") is not None


def test_an_output_whose_record_is_not_this_jobs_is_rendered_again(
    folder: Path, stand_in: StandIn
) -> None:
    """Mutation caught: comparing only the key (a forged chunk keeping the key)."""
    assert run_batch(folder, [line(out="x.png", seed=1)]) == 0
    out = folder / "out" / "x.png"
    text = png_record.read_text_chunk(out, batch.RECORD_KEYWORD)
    forged = json.dumps({**json.loads(text), "options": {"seed": 7}}, sort_keys=True)
    with Image.open(out) as image:
        plain = io.BytesIO()
        image.save(plain, format="PNG")
    out.write_bytes(png_record.add_text_chunk(plain.getvalue(), batch.RECORD_KEYWORD, forged))

    assert run_batch(folder, [line(out="x.png", seed=1)]) == 0
    assert stand_in.rendered == [1, 1]


def test_a_record_file_that_grew_is_compacted(folder: Path, stand_in: StandIn) -> None:
    """Mutation caught: JobRecord not compacting (the duplicated lines stay)."""
    lines = [line(out=f"{n}.png", seed=n) for n in range(1, 3)]
    assert run_batch(folder, lines) == 0
    record = folder / "out" / batch.JOB_RECORD_NAME
    record.write_text(record.read_text() * 3 + '{"torn": ')

    assert run_batch(folder, lines) == 0
    assert stand_in.rendered == [1, 2]
    assert [entry["out"] for entry in record_lines(folder)] == ["1.png", "2.png"]


# --- 6, 7. the manifest is read as it runs, split on \n only -----------------------------------


def test_a_lines_inputs_are_read_when_the_line_runs(folder: Path, stand_in: StandIn) -> None:
    """Mutation caught: every line's inputs read before the first render (line 2's photo,
    made while line 1 renders, would be missing)."""
    stand_in.before(1, lambda: (folder / "later.png").write_bytes(png_bytes(7)))
    lines = [line(seed=1), line("later.png", seed=2)]

    assert run_batch(folder, lines) == 0
    assert stand_in.rendered == [1, 2]


def test_line_breaks_inside_json_strings_do_not_split_a_line(
    folder: Path, stand_in: StandIn
) -> None:
    """Mutation caught: str.splitlines (U+2028 / U+0085 split a line: 4 lines read as 6)."""
    for name in ("a\u2028b.png", "c\u0085d.png"):
        (folder / name).write_bytes(png_bytes(3))
    entries = [
        {"image": "a\u2028b.png", "mask": "m.png", "seed": 1},
        {"image": "c\u0085d.png", "mask": "m.png", "seed": 2},
        {"image": "b.png", "mask": "m.png", "seed": 3},
        {"image": "b.png", "mask": "m.png", "steps": 0},
    ]
    raw = "\n".join(json.dumps(entry, ensure_ascii=False) for entry in entries).encode()

    assert run_batch(folder, [], raw=raw) == 1
    assert sorted(report(folder)) == [1, 2, 3, 4]
    assert "line 4: steps" in report(folder)[4]["reason"]
    assert stand_in.rendered == [1, 2, 3]


def test_an_endless_line_fails_alone(folder: Path, stand_in: StandIn) -> None:
    """Mutation caught: the rest of an over-long line not skipped (it would be read as more
    lines, and the lines after it numbered wrong)."""
    raw = line(seed=1) + "\n" + "x" * (batch.MAX_LINE_BYTES * 2) + "\n" + line("b.png", seed=3)
    assert run_batch(folder, [], raw=raw.encode()) == 1
    entries = report(folder)
    assert sorted(entries) == [1, 2, 3] and entries[2]["status"] == "failed"
    assert stand_in.rendered == [1, 3]
