"""Generated manifests (names, aliases through links, links out, damaged and special files)
through `relight batch` on a stand-in server (issue 25). Whatever the manifest: one file per
line done, nothing written outside --out-dir, every line reported, and a rerun skips every
line done, writes no new file and keeps one record line per output."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from relight_testing.batch_stand_in import install_stand_in, png_bytes

from relight_inpaint.host import batch, cli

IMAGES = ["a.png", "b.png", "sub/a.png", "broken.png", "missing.png", "/dev/null", "fifo.png"]
OUTS = [
    None,
    "x.png",
    "alias/x.png",
    "sub/x.png",
    "alias/sub/../x.png",
    "a.png",
    "a_2.png",
    "b_3.png",
    "../x.png",
    "link_out/x.png",
    "x\u0000.png",
    "late/y.png",
]

entries = st.lists(
    st.fixed_dictionaries(
        {"image": st.sampled_from(IMAGES), "out": st.sampled_from(OUTS)},
        optional={"seed": st.integers(0, 3)},
    ),
    min_size=1,
    max_size=8,
)


def make_folder(root: Path) -> tuple[Path, Path, Path]:
    """Inputs, an output folder with an alias of itself and a link out, and an outside
    folder that must stay empty."""
    inputs, out_dir, outside = root / "in", root / "out", root / "outside"
    for folder in (inputs / "sub", out_dir / "sub", outside):
        folder.mkdir(parents=True)
    (inputs / "m.png").write_bytes(png_bytes(9))
    for number, name in enumerate(("a.png", "b.png", "sub/a.png")):
        (inputs / name).write_bytes(png_bytes(number))
    (inputs / "broken.png").write_bytes(png_bytes(4)[:50])
    os.mkfifo(inputs / "fifo.png")
    (out_dir / "alias").symlink_to(".")
    (out_dir / "link_out").symlink_to(outside)
    return inputs, out_dir, outside


def manifest_text(generated: list[dict]) -> str:
    lines = []
    for entry in generated:
        line = {"image": entry["image"], "mask": "m.png", "steps": 2 + entry.get("seed", 0)}
        if entry["out"] is not None:
            line["out"] = entry["out"]
        lines.append(json.dumps(line))
    return "\n".join(lines) + "\n"


def files_in(folder: Path) -> list[str]:
    """Every regular file under `folder`, not following links."""
    found = []
    for parent, _, names in os.walk(folder, followlinks=False):
        found += [os.path.join(parent, name) for name in names]
    return sorted(path for path in found if not os.path.islink(path))


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(generated=entries)
def test_one_file_per_line_nothing_outside_every_line_reported(
    generated: list[dict], monkeypatch: pytest.MonkeyPatch
) -> None:
    stand_in = install_stand_in(monkeypatch)
    with tempfile.TemporaryDirectory() as temp:
        inputs, out_dir, outside = make_folder(Path(temp))
        manifest = inputs / "batch.jsonl"
        manifest.write_text(manifest_text(generated))
        args = ["batch", str(manifest), "--out-dir", str(out_dir)]
        # a folder that becomes a link to the outside while the batch runs
        stand_in.before(1, lambda: (out_dir / "late").symlink_to(outside))

        cli.main(args)

        report = read_report(out_dir)
        assert [entry["line"] for entry in report] == list(range(1, len(generated) + 1))
        done = [entry["out"] for entry in report if entry["status"] == "done"]
        assert len(set(done)) == len(done) <= len(stand_in.rendered)
        pngs = [path for path in files_in(out_dir) if path.endswith(".png")]
        assert sorted(done) == pngs
        assert files_in(outside) == []

        cli.main(args)
        rerun = read_report(out_dir)
        skipped = [entry["status"] for entry in rerun if entry.get("out") in done]
        assert skipped == ["skipped"] * len(done)
        assert [path for path in files_in(out_dir) if path.endswith(".png")] == pngs
        assert files_in(outside) == []
        record = (out_dir / batch.JOB_RECORD_NAME).read_text().splitlines() if done else []
        assert len(record) == len(done)


def read_report(out_dir: Path) -> list[dict]:
    text = (out_dir / batch.REPORT_NAME).read_text()
    return [json.loads(line) for line in text.splitlines()]
