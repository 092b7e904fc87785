"""`relight batch`: every line of a manifest rendered, on one server or on many, resumable.

What a batch writes beside its outputs:
- each output PNG carries, in a text chunk, the record of what made it: the options, the
  SHA-256 of its input files, the model file's SHA-256 (asked of the server) and the pack's
  version;
- `relight-jobs.jsonl` gets a line per output as it is written: a rerun skips an item whose
  output exists and whose record, in the file and in that job record, is the one it would make
  now, and renders the rest;
- `relight-report.jsonl` is written at the end (also after Ctrl-C): one line per item, its
  status, server, seconds and reason.

The servers are a `Servers`: one ComfyUI (`OneServer`, the CLI's own loop) or several driven
through Ray (`host/cluster.py`). Both render an item with `render_item` and hand what came back
to a `BatchRun`, which writes outputs, records and the report.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Protocol

import requests
from tqdm import tqdm

from . import comfy_server as comfy
from .png_record import add_text_chunk, read_text_chunk
from .rendering import (
    Inputs,
    check_out_path,
    comfy_url,
    read_inputs,
    render,
    write_atomically,
)
from .workflow import (
    BatchItem,
    ManifestError,
    OptionError,
    build_prompt,
    load_workflow,
    parse_manifest_line,
    workflow_defaults,
)

JOB_RECORD_NAME = "relight-jobs.jsonl"
REPORT_NAME = "relight-report.jsonl"
RECORD_KEYWORD = "relight-inpaint"  # the PNG text chunk
OUTSIDE_OK = "allow-outside-out-dir"  # the batch option that lets a manifest write elsewhere
DONE, FAILED, SKIPPED, CANCELLED, NOT_RUN = "done", "failed", "skipped", "cancelled", "not run"
SERVER_LOST = "server lost"  # the item goes back to the queue, for another server


@dataclass
class BatchJob:
    item: BatchItem
    inputs: Inputs
    out: Path
    record: dict = field(default_factory=dict)  # filled once the servers said what they run
    key: str = ""

    @property
    def line(self) -> int:
        return self.item.line_number


@dataclass
class Outcome:
    """What rendering one item on one server came to."""

    status: str  # DONE, FAILED or SERVER_LOST
    server: str
    seconds: float
    png: bytes | None = None
    reason: str = ""


class Servers(Protocol):
    """Where a batch's items are rendered (a context manager that starts or reaches them)."""

    def __enter__(self) -> Servers: ...
    def __exit__(self, *exc_info: object) -> None: ...
    def infos(self, model_names: list[str]) -> dict[str, dict]: ...
    def run(self, jobs: list[BatchJob], run: BatchRun) -> None: ...


# --- preparing ------------------------------------------------------------------------------


def prepare_batch(
    lines: list[str], manifest_dir: Path, out_dir: Path, allow_outside: bool = False
) -> tuple[list[BatchJob], dict[int, str]]:
    """Parse and check every line; returns the jobs and the bad lines' reasons by line."""
    jobs: list[BatchJob] = []
    failures: dict[int, str] = {}
    taken: set[Path] = set()
    for line_number, line in enumerate(lines, start=1):
        try:
            item = parse_manifest_line(line, line_number, manifest_dir)
            if item is None:
                continue
            job = batch_job(item, out_dir, taken, allow_outside)
        except ManifestError as error:
            failures[line_number] = str(error)
            continue
        taken.add(output_key(job.out))
        jobs.append(job)
    return jobs, failures


def batch_job(
    item: BatchItem, out_dir: Path, taken: set[Path], allow_outside: bool = False
) -> BatchJob:
    try:
        out = check_out_path("out", batch_out_path(item, out_dir, taken, allow_outside))
        inputs = read_inputs(item.image, item.mask, item.maps)
        maps = {key: name for key, (_, name) in inputs.maps.items()}
        build_prompt(item.options, inputs.image_name, inputs.mask_name, maps=maps)
    except OptionError as error:
        raise ManifestError(item.line_number, str(error)) from None
    return BatchJob(item, inputs, out)


def batch_out_path(
    item: BatchItem, out_dir: Path, taken: set[Path], allow_outside: bool = False
) -> Path:
    """`out` under the output folder, or <image stem>.png (<stem>_<line>.png if taken). A
    manifest is data, often from someone else: its `out` stays inside --out-dir ("../x.png",
    absolute paths and links out are refused) unless the user opted in (allow_outside)."""
    if item.out is not None:
        out = out_dir / item.out
        if not allow_outside and not out.resolve().is_relative_to(out_dir.resolve()):
            raise OptionError(
                "out",
                f"{item.out} is outside --out-dir {out_dir}; keep outputs inside it, or pass "
                f"--{OUTSIDE_OK} to allow this",
            )
        if output_key(out) in taken:
            raise OptionError("out", f"{item.out} is already the output of an earlier line")
        return out
    default = out_dir / f"{item.image.stem}.png"
    if output_key(default) not in taken:
        return default
    return out_dir / f"{item.image.stem}_{item.line_number}.png"


def output_key(path: Path) -> Path:
    """The path as `taken` holds it: absolute, `..` and `.` resolved on paper (no disk access,
    so 10,000 lines stay quick)."""
    return Path(os.path.normpath(path.absolute()))


def run_order(jobs: list[BatchJob]) -> list[BatchJob]:
    """Higher priority first; among equals, manifest order."""
    return sorted(jobs, key=lambda job: (-job.item.priority, job.line))


def job_models(jobs: list[BatchJob]) -> dict[int, str]:
    """Each job's model file name, by line: its own `model` option or the workflow's."""
    default = str(workflow_defaults(load_workflow())["model"])
    return {job.line: str(job.item.options.get("model", default)) for job in jobs}


def model_names(jobs: list[BatchJob]) -> list[str]:
    return sorted(set(job_models(jobs).values()))


# --- records: what made an output -----------------------------------------------------------


def agreed_info(infos: dict[str, dict]) -> dict:
    """The pack version and model hashes every server reported; servers that differ would
    make outputs that differ by server, so they are refused, naming the two that differ."""
    (first_server, first), *others = infos.items()
    for server, info in others:
        for what in ("pack_version", "models"):
            if info.get(what) != first.get(what):
                raise comfy.ServerError(
                    f"the servers differ in {what.replace('_', ' ')}: {first_server} has "
                    f"{first.get(what)}, {server} has {info.get(what)}; give them the same "
                    "Relight Inpaint pack and models"
                )
    return first


def attach_records(jobs: list[BatchJob], info: dict) -> None:
    models = job_models(jobs)
    for job in jobs:
        model = models[job.line]
        job.record = {
            "pack": info["pack_version"],
            "model": {"name": model, "sha256": info["models"].get(model)},
            "inputs": job.inputs.sources,
            "options": job.item.options,
        }
        canonical = json.dumps(job.record, sort_keys=True, separators=(",", ":"))
        job.key = hashlib.sha256(canonical.encode()).hexdigest()[:32]


def chunk_text(job: BatchJob) -> str:
    return json.dumps({"key": job.key, **job.record}, sort_keys=True, ensure_ascii=True)


def chunk_key(path: Path) -> str | None:
    text = read_text_chunk(path, RECORD_KEYWORD)
    if text is None:
        return None
    try:
        return json.loads(text).get("key")
    except (ValueError, AttributeError):
        return None


class JobRecord:
    """relight-jobs.jsonl: a line per output written, each in one write (a line torn by a crash
    is ignored when read); for one output path, the last line wins."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        self.path = out_dir / JOB_RECORD_NAME
        self.keys = self._read()

    def _read(self) -> dict[str, str]:
        try:
            lines = self.path.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return {}
        keys = {}
        for line in lines:
            with contextlib.suppress(ValueError, TypeError, KeyError, AttributeError):
                entry = json.loads(line)
                keys[str(entry["out"])] = str(entry["key"])
        return keys

    def name(self, out: Path) -> str:
        absolute = out.absolute()
        base = self.out_dir.absolute()
        return str(absolute.relative_to(base)) if absolute.is_relative_to(base) else str(absolute)

    def is_done(self, job: BatchJob) -> bool:
        """The output exists, and both its text chunk and this record say it is this job's."""
        return (
            self.keys.get(self.name(job.out)) == job.key
            and job.out.is_file()
            and chunk_key(job.out) == job.key
        )

    def add(self, job: BatchJob, outcome: Outcome) -> None:
        entry = {
            "out": self.name(job.out),
            "key": job.key,
            "line": job.line,
            "server": outcome.server,
            "seconds": round(outcome.seconds, 3),
            "finished": now(),
            "record": job.record,
        }
        self.out_dir.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as file:
            file.write(json.dumps(entry, sort_keys=True) + "\n")
            file.flush()
            os.fsync(file.fileno())  # after the output's own fsync: never a line without it
        self.keys[entry["out"]] = job.key


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@contextlib.contextmanager
def interrupts_deferred() -> Iterator[None]:
    """Ctrl-C (and SIGTERM/SIGHUP) wait until the block is over, then interrupt: an output and
    its record line are written both or neither. Main thread only, like Python's handlers."""
    caught: list[int] = []

    def remember(signum: int, frame: object) -> None:
        caught.append(signum)

    held = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {signum: signal.signal(signum, remember) for signum in held}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if caught:  # even when the block failed: the interrupt must not be lost
            raise KeyboardInterrupt


# --- running --------------------------------------------------------------------------------


def render_item(
    url: str,
    server: str,
    options: dict,
    inputs: Inputs,
    prompt_id: str,
    on_progress: Callable | None = None,
) -> Outcome:
    """Render one item; never raises for the item's or the server's failure, says which."""
    started = time.monotonic()

    def outcome(status: str, png: bytes | None = None, reason: str = "") -> Outcome:
        return Outcome(status, server, time.monotonic() - started, png, reason)

    try:
        return outcome(DONE, render(url, options, inputs, on_progress, prompt_id))
    except (comfy.PromptError, OptionError) as error:
        return outcome(FAILED, reason=str(error))
    except (requests.RequestException, comfy.ServerError) as error:
        if comfy.answers(url):
            return outcome(FAILED, reason=f"ComfyUI: {error}")
        return outcome(SERVER_LOST, reason=f"{server} stopped answering ({type(error).__name__})")


class Progress:
    """One bar over the items to render: done / failed, rate and time left; item errors are
    printed above it as they happen."""

    def __init__(self, total: int, file: object = None, disable: bool | None = None) -> None:
        self.file = file or sys.stderr
        self.bar = tqdm(
            total=total, unit="image", file=self.file, disable=disable, dynamic_ncols=True
        )
        self.done = self.failed = 0
        self._show()

    def item_ended(self, ok: bool) -> None:
        if ok:
            self.done += 1
        else:
            self.failed += 1
        self._show()
        self.bar.update(1)

    def note(self, text: str) -> None:
        self.bar.write(text, file=self.file)

    def step(self, line: int) -> Callable[[int, int], None]:
        def show(value: int, total: int) -> None:
            self.bar.set_postfix_str(self._counts() + f", line {line}: step {value}/{total}")

        return show

    def _counts(self) -> str:
        return f"done {self.done}, failed {self.failed}"

    def _show(self) -> None:
        self.bar.set_postfix_str(self._counts(), refresh=False)

    def close(self) -> None:
        self.bar.close()


class BatchRun:
    """The outputs, the job record and the report of one `relight batch` call."""

    def __init__(self, out_dir: Path, jobs: list[BatchJob], bad_lines: dict[int, str]) -> None:
        self.out_dir = out_dir
        self.record = JobRecord(out_dir)
        self.entries: dict[int, dict] = {
            line: {"line": line, "status": FAILED, "reason": reason}
            for line, reason in bad_lines.items()
        }
        for job in jobs:
            self.entries[job.line] = {
                "line": job.line,
                "image": str(job.item.image),
                "out": str(job.out),
                "status": NOT_RUN,
            }
        self.progress: Progress | None = None

    def skip_done(self, jobs: list[BatchJob]) -> list[BatchJob]:
        """The jobs still to render, in run order; the others are reported skipped."""
        todo = []
        for job in run_order(jobs):
            if self.record.is_done(job):
                self.entries[job.line].update(status=SKIPPED, reason="done by an earlier run")
            else:
                todo.append(job)
        return todo

    def start(self, total: int) -> Progress:
        self.progress = Progress(total)
        return self.progress

    def finish(self, job: BatchJob, outcome: Outcome) -> None:
        """Write a finished item's output and record line (both, or neither on Ctrl-C)."""
        entry = self.entries[job.line]
        entry.update(server=outcome.server, seconds=round(outcome.seconds, 3))
        if outcome.status == DONE:
            try:
                with interrupts_deferred():
                    png = add_text_chunk(outcome.png, RECORD_KEYWORD, chunk_text(job))
                    write_atomically("out", job.out, png)
                    self.record.add(job, outcome)
            except (OptionError, OSError, ValueError) as error:
                outcome = Outcome(FAILED, outcome.server, outcome.seconds, reason=str(error))
        entry["status"] = outcome.status
        if outcome.reason:
            entry["reason"] = outcome.reason
        if outcome.status != DONE:
            self._say(f"line {job.line}: {outcome.reason}")
        if self.progress:
            self.progress.item_ended(outcome.status == DONE)

    def server_lost(self, job: BatchJob, outcome: Outcome) -> int:
        """The item's server went away mid-item: noted; returns how many it has lost."""
        attempts = self.entries[job.line].setdefault("lost_on", [])
        attempts.append({"server": outcome.server, "reason": outcome.reason})
        self._say(f"line {job.line}: {outcome.reason}; rendering it again on another server")
        return len(attempts)

    def give_up(self, jobs: list[BatchJob], reason: str) -> None:
        for job in jobs:
            self.finish(job, Outcome(FAILED, "", 0.0, reason=reason))

    def _say(self, text: str) -> None:
        message = f"relight: {text}"
        if self.progress:
            self.progress.note(message)
        else:
            tqdm.write(message, file=sys.stderr)

    def close(self, interrupted: bool = False) -> dict[str, int]:
        """Write the report; items never finished are `cancelled` (Ctrl-C) or `not run`."""
        if self.progress:
            self.progress.close()
        for entry in self.entries.values():
            if interrupted and entry["status"] == NOT_RUN:
                entry["status"] = CANCELLED
        lines = [json.dumps(self.entries[line], sort_keys=True) for line in sorted(self.entries)]
        with contextlib.suppress(OptionError):
            write_atomically("out-dir", self.out_dir / REPORT_NAME, "\n".join(lines).encode())
        return dict(Counter(entry["status"] for entry in self.entries.values()))


class OneServer:
    """The CLI's own loop: items one after another on one ComfyUI (given, or started here)."""

    def __init__(self, url: str | None) -> None:
        self._context = comfy_url(url)
        self.url = ""

    def __enter__(self) -> OneServer:
        self.url = self._context.__enter__()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._context.__exit__(*exc_info)

    def infos(self, model_names: list[str]) -> dict[str, dict]:
        return {self.url: comfy.cli_info(self.url, model_names)}

    def run(self, jobs: list[BatchJob], run: BatchRun) -> None:
        progress = run.start(len(jobs))
        for index, job in enumerate(jobs):
            outcome = render_item(
                self.url,
                self.url,
                job.item.options,
                job.inputs,
                comfy.new_id(),
                progress.step(job.line),
            )
            if outcome.status == SERVER_LOST:
                run.give_up(jobs[index:], outcome.reason)
                return
            run.finish(job, outcome)


def run_batch(servers: Servers, jobs: list[BatchJob], run: BatchRun) -> None:
    """Ask the servers what they run, skip what is done, render the rest."""
    if not jobs:
        return
    with servers:
        info = agreed_info(servers.infos(model_names(jobs)))
        attach_records(jobs, info)
        todo = run.skip_done(jobs)
        skipped = len(jobs) - len(todo)
        if skipped:
            tqdm.write(
                f"relight: {skipped} of {len(jobs)} already done (per {JOB_RECORD_NAME})",
                file=sys.stderr,
            )
        if todo:
            servers.run(todo, run)
