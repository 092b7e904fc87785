"""`relight batch`: every line of a manifest rendered, on one server or on many, resumable.

What a batch writes beside its outputs:
- each output PNG carries, in a text chunk, the record of what made it: the options, the
  SHA-256 of its input files, the model file's SHA-256 (asked of the server) and the pack's
  version;
- `relight-jobs.jsonl` gets a line per output as it is written: a rerun skips an item whose
  output is a whole PNG (CRCs, IEND, pixels that decode) whose record, in the file and in that
  job record, is the one it would make now, renders the rest, and keeps the file compacted;
- `relight-report.jsonl` is written at the end (also after Ctrl-C): one line per item, its
  status, server, seconds and reason.

Every line's output is decided before anything renders (`Outputs`: one file per line, on the
real path); each line's options and files are read only when its turn comes (`read_job`), and
a line that fails, however, fails alone. Outputs are written through host/contained.py: never
through a link inside the output folder.

The servers are a `Servers`: one ComfyUI (`OneServer`, the CLI's own loop) or several driven
through Ray (`host/cluster.py`). Both render an item with `render_item` and hand what came back
to a `BatchRun`, which writes outputs, records and the report.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import itertools
import json
import os
import signal
import stat
import sys
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Protocol

import requests
from PIL import Image
from tqdm import tqdm

from . import comfy_server as comfy
from .contained import append_inside, write_inside
from .png_record import add_text_chunk, chunks_are_whole
from .png_record import text_chunk_in as read_text_in
from .rendering import (
    Inputs,
    check_out_path,
    comfy_url,
    read_inputs,
    regular_file_bytes,
    render,
    write_atomically,
)
from .workflow import (
    FILE_KEYS,
    PRIORITY_KEY,
    BatchItem,
    ManifestError,
    OptionError,
    build_prompt,
    load_workflow,
    manifest_object,
    parse_manifest_line,
    priority_value,
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
    """One manifest line: planned (its output and place in the order) before anything
    renders, read in full (options, input files) only when its turn comes."""

    line: int
    text: str  # the manifest line, parsed in full when it runs
    manifest_dir: Path
    out: Path  # the real path, decided before anything renders
    priority: float = 0.0
    model: str | None = None  # the line's `model`, where it names one
    item: BatchItem | None = None  # once loaded
    inputs: Inputs | None = None  # once loaded; dropped again when the line is finished
    record: dict = field(default_factory=dict)
    key: str = ""


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


# --- planning: every line's output and place, before anything renders -----------------------


MAX_LINE_BYTES = 1 << 20  # a manifest line longer than this is refused (a line, not a file)


def manifest_lines(option: str, path: Path) -> Iterator[str]:
    """The manifest's lines, split on \\n only (a U+2028 or U+0085 inside a JSON string is
    part of its line), read as they are needed. A line past MAX_LINE_BYTES comes back cut
    short (it then fails alone as invalid JSON, naming its line)."""
    try:
        file = open(path, "rb")  # noqa: SIM115 - closed by the generator
    except FileNotFoundError:
        raise OptionError(option, f"no such file: {path}") from None
    except (OSError, ValueError) as error:
        raise OptionError(option, f"cannot read {path}: {error}") from None
    with file:
        while raw := file.readline(MAX_LINE_BYTES):
            if not raw.endswith(b"\n") and len(raw) == MAX_LINE_BYTES:
                while (rest := file.readline(MAX_LINE_BYTES)) and not rest.endswith(b"\n"):
                    pass  # skip the rest of an over-long line
            yield raw.decode("utf-8", errors="replace")


def prepare_batch(
    lines: Iterable[str], manifest_dir: Path, out_dir: Path, allow_outside: bool = False
) -> tuple[list[BatchJob], dict[int, str]]:
    """Plan every line: its output file (one per line, on the real path), its priority and
    model. Only JSON is parsed here: options and input files are read when a line runs.
    Returns the jobs and the bad lines' reasons by line."""
    outputs = Outputs(out_dir, allow_outside)
    planned: list[tuple[int, str, dict]] = []
    failures: dict[int, str] = {}
    for line_number, text in enumerate(lines, start=1):
        try:
            entry = plan_entry(text, line_number)
            if entry is not None:
                outputs.claim_named(entry, line_number)
                planned.append((line_number, text, entry))
        except ManifestError as error:
            failures[line_number] = str(error)
    jobs = []
    for line_number, text, entry in planned:
        out = outputs.real_path(entry, line_number)
        model = entry.get("model")
        priority = float(entry.get(PRIORITY_KEY, 0))
        jobs.append(BatchJob(line_number, text, manifest_dir, out, priority, model))
    return jobs, failures


def plan_entry(text: str, line_number: int) -> dict | None:
    """What planning needs of a line (None for a blank or comment line): a JSON object with
    an image, maybe an out, a priority; no NUL in any file name."""
    entry = manifest_object(text, line_number)
    if entry is None:
        return None
    for key in FILE_KEYS:
        value = entry.get(key)
        if key in entry and (not isinstance(value, str) or not value):
            raise ManifestError(line_number, f"{key}: expected a file path")
        if isinstance(value, str) and "\0" in value:
            raise ManifestError(line_number, f"{key}: a NUL character in the name {value!r}")
    if "image" not in entry:
        raise ManifestError(line_number, "image: required, a file path")
    try:
        entry[PRIORITY_KEY] = priority_value(entry.get(PRIORITY_KEY, 0))
    except OptionError as error:
        raise ManifestError(line_number, str(error)) from None
    if not isinstance(entry.get("model", ""), str):
        entry.pop("model")  # refused, naming it, when the line runs
    return entry


class Outputs:
    """Which line writes which file: decided on the real path (so `alias/x.png` with `alias ->
    .` is x.png), named outputs first in manifest order, then default names (`<image
    stem>.png`, else `<stem>_<line>.png`, else `<stem>_<line>_2.png`, ...) among the names
    still free. A manifest is data, often from someone else: its `out` stays inside --out-dir
    unless the user opted in (allow_outside)."""

    def __init__(self, out_dir: Path, allow_outside: bool) -> None:
        self.real_dir = os.path.realpath(out_dir)
        self.allow_outside = allow_outside
        self.taken: dict[str, int] = {}  # real path: the line that writes it
        self.named: dict[int, str] = {}

    def claim_named(self, entry: dict, line_number: int) -> None:
        if "out" not in entry:
            return
        written = entry["out"]
        out = self.resolve(os.path.expanduser(written))
        if not self.allow_outside and not self.inside(out):
            raise ManifestError(
                line_number,
                f"out: {written} is outside --out-dir {self.real_dir}; keep outputs inside it, "
                f"or pass --{OUTSIDE_OK} to allow this",
            )
        if not out.lower().endswith(".png"):
            raise ManifestError(line_number, f"out: must be a .png file (got {written})")
        if out in self.taken:
            earlier = self.taken[out]
            raise ManifestError(
                line_number, f"out: {written} is already the output of line {earlier}"
            )
        self.taken[out] = line_number
        self.named[line_number] = out

    def real_path(self, entry: dict, line_number: int) -> Path:
        if "out" in entry:
            return Path(self.named[line_number])
        stem = Path(entry["image"]).stem or "image"
        more = (f"{stem}_{line_number}_{n}.png" for n in range(2, len(self.taken) + 3))
        for name in itertools.chain([f"{stem}.png", f"{stem}_{line_number}.png"], more):
            out = self.resolve(name)
            if out not in self.taken and self.inside(out):
                self.taken[out] = line_number
                return Path(out)
        raise AssertionError("unreachable: more candidates than names taken")

    def inside(self, real: str) -> bool:
        return real.startswith(self.real_dir.rstrip(os.sep) + os.sep)

    def resolve(self, relative: str) -> str:
        """The real path of `relative` under the output folder: links that exist now are
        followed, `..` applied after them, as the file system would. A plain name that is
        no link there (the usual case) needs one lstat, not a walk of the whole path."""
        joined = os.path.join(self.real_dir, relative)
        if os.sep not in relative and relative not in (".", ".."):
            try:
                if not stat.S_ISLNK(os.lstat(joined).st_mode):
                    return joined
            except FileNotFoundError:
                return joined
            except OSError:
                pass
        return os.path.realpath(joined)


def read_job(job: BatchJob) -> None:
    """Parse the line in full, read and check its input files (once: an item put back after
    its server was lost keeps them). Raises ManifestError naming the line and the input."""
    if job.inputs is not None:
        return
    item = parse_manifest_line(job.text, job.line, job.manifest_dir)
    if item is None:  # pragma: no cover - planning kept only lines with content
        raise ManifestError(job.line, "empty line")
    try:
        check_out_path("out", job.out)
        inputs = read_inputs(item.image, item.mask, item.maps)
        maps = {key: name for key, (_, name) in inputs.maps.items()}
        build_prompt(item.options, inputs.image_name, inputs.mask_name, maps=maps)
    except OptionError as error:
        raise ManifestError(job.line, str(error)) from None
    job.item, job.inputs = item, inputs


def run_order(jobs: list[BatchJob]) -> list[BatchJob]:
    """Higher priority first; among equals, manifest order."""
    return sorted(jobs, key=lambda job: (-job.priority, job.line))


def job_models(jobs: list[BatchJob]) -> dict[int, str]:
    """Each job's model file name, by line: its own `model` option or the workflow's."""
    default = default_model()
    return {job.line: job.model or default for job in jobs}


def default_model() -> str:
    return str(workflow_defaults(load_workflow())["model"])


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


def attach_record(job: BatchJob, info: dict) -> None:
    """What makes the loaded job's output, and its key (a hash of it)."""
    model = str(job.item.options.get("model") or default_model())
    job.record = {
        "pack": info["pack_version"],
        "model": {"name": model, "sha256": info["models"].get(model)},
        "inputs": job.inputs.sources,
        "options": job.item.options,
    }
    canonical = json.dumps(job.record, sort_keys=True, separators=(",", ":"))
    job.key = hashlib.sha256(canonical.encode()).hexdigest()[:32]


def load_jobs(jobs: list[BatchJob], info: dict) -> None:
    """Read every job and fill in its record now (tests and benchmarks; a batch reads each
    when its turn comes)."""
    for job in jobs:
        read_job(job)
        attach_record(job, info)


def chunk_text(job: BatchJob) -> str:
    return json.dumps({"key": job.key, **job.record}, sort_keys=True, ensure_ascii=True)


def output_is_whole(path: Path) -> bytes | None:
    """The output's bytes when it is a regular file (not a link) that is a whole PNG, CRCs and
    IEND included, whose pixels decode; None otherwise."""
    try:
        data = regular_file_bytes(path, follow_links=False)
    except (OSError, ValueError):
        return None
    if not chunks_are_whole(data):
        return None
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
    except Exception:  # noqa: BLE001 - whatever Pillow raises, the file is not trusted
        return None
    return data


class JobRecord:
    """relight-jobs.jsonl: a line per output written, each in one write (a line torn by a crash
    is ignored when read); for one output path, the last line wins. Read once at the start and
    written back compacted (one line per output) when it held more, so reruns never grow it."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = Path(os.path.realpath(out_dir))
        self.path = self.out_dir / JOB_RECORD_NAME
        self.lines: dict[str, str] = {}  # output name: its last record line
        self.keys: dict[str, str] = {}
        self.stale = 0  # lines in the file that a later line for the same output overrides
        self._read()

    def _read(self) -> None:
        try:
            with open(self.path, "rb") as file:
                raw_lines = file.read().split(b"\n")
        except (FileNotFoundError, NotADirectoryError):
            return
        for raw in raw_lines:
            with contextlib.suppress(ValueError, TypeError, KeyError, AttributeError):
                entry = json.loads(raw)
                self.keys[str(entry["out"])] = str(entry["key"])
                self.lines[str(entry["out"])] = raw.decode()
        if len(self.lines) < len(raw_lines) - 1 or raw_lines[-1]:
            self.compact()

    def compact(self) -> None:
        """Rewrite the file with one line per output (atomically: a crash leaves the old)."""
        text = "".join(line + "\n" for line in self.lines.values())
        write_inside(self.out_dir, Path(JOB_RECORD_NAME), text.encode())
        self.stale = 0

    def name(self, out: Path) -> str:
        return str(out.relative_to(self.out_dir)) if out.is_relative_to(self.out_dir) else str(out)

    def is_done(self, job: BatchJob) -> bool:
        """The record says this output is this job's, and the output is a whole PNG whose own
        record is exactly the one this job would write."""
        if self.keys.get(self.name(job.out)) != job.key:
            return False
        data = output_is_whole(job.out)
        return data is not None and read_text_in(data, RECORD_KEYWORD) == chunk_text(job)

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
        line = json.dumps(entry, sort_keys=True)
        # after the output's own fsync: never a line without it
        append_inside(self.out_dir, JOB_RECORD_NAME, (line + "\n").encode())
        self.stale += entry["out"] in self.lines
        self.keys[entry["out"]] = job.key
        self.lines[entry["out"]] = line


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
        self.done = self.failed = self.skipped = 0
        self._show()

    def item_ended(self, ok: bool) -> None:
        if ok:
            self.done += 1
        else:
            self.failed += 1
        self._show()
        self.bar.update(1)

    def item_skipped(self) -> None:
        self.skipped += 1
        self._show()
        self.bar.update(1)

    def note(self, text: str) -> None:
        self.bar.write(text, file=self.file)

    def step(self, line: int) -> Callable[[int, int], None]:
        def show(value: int, total: int) -> None:
            self.bar.set_postfix_str(self._counts() + f", line {line}: step {value}/{total}")

        return show

    def _counts(self) -> str:
        skipped = f", skipped {self.skipped}" if self.skipped else ""
        return f"done {self.done}, failed {self.failed}{skipped}"

    def _show(self) -> None:
        self.bar.set_postfix_str(self._counts(), refresh=False)

    def close(self) -> None:
        self.bar.close()


class BatchRun:
    """The outputs, the job record and the report of one `relight batch` call."""

    def __init__(
        self,
        out_dir: Path,
        jobs: list[BatchJob],
        bad_lines: dict[int, str],
        info: dict | None = None,
    ) -> None:
        self.out_dir = out_dir
        self.record = JobRecord(out_dir)
        self.info = info or {}  # what the servers run: set by run_batch before any line loads
        self.entries: dict[int, dict] = {
            line: {"line": line, "status": FAILED, "reason": reason}
            for line, reason in bad_lines.items()
        }
        for job in jobs:
            self.entries[job.line] = {"line": job.line, "out": str(job.out), "status": NOT_RUN}
        self.progress: Progress | None = None

    def next_job(self, queue: deque[BatchJob]) -> BatchJob | None:
        """The next job from the queue to render, loaded; lines that fail to load are reported
        failed, outputs done by an earlier run skipped, on the way. None once it is empty."""
        while queue:
            job = queue.popleft()
            if self.ready(job):
                return job
        return None

    def ready(self, job: BatchJob) -> bool:
        """Read the job and fill in its record; False (and reported) when it failed to read
        or an earlier run did it."""
        if not self.read(job):
            return False
        attach_record(job, self.info)
        if not self.record.is_done(job):
            return True
        self.entries[job.line].update(status=SKIPPED, reason="done by an earlier run")
        job.inputs = None
        if self.progress:
            self.progress.item_skipped()
        return False

    def read(self, job: BatchJob) -> bool:
        """read_job, a failure reported as the line's (whatever it is: one line must not end
        the batch)."""
        try:
            read_job(job)
        except ManifestError as error:
            self.finish(job, Outcome(FAILED, "", 0.0, reason=str(error)))
            return False
        except Exception as error:  # noqa: BLE001
            reason = f"line {job.line}: {type(error).__name__}: {error}"
            self.finish(job, Outcome(FAILED, "", 0.0, reason=reason))
            return False
        self.entries[job.line]["image"] = str(job.item.image)
        return True

    def first_readable(self, queue: deque[BatchJob]) -> bool:
        """Read jobs from the front of the queue until one reads (put back at the front):
        no server is started for a batch whose every line fails."""
        while queue:
            job = queue.popleft()
            if self.read(job):
                queue.appendleft(job)
                return True
        return False

    def skip_done(self, jobs: list[BatchJob]) -> list[BatchJob]:
        """The jobs still to render, in run order, loaded (tests; a batch takes them one by
        one with next_job)."""
        queue = deque(run_order(jobs))
        todo = []
        while (job := self.next_job(queue)) is not None:
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
                    self.write_output(job.out, png)
                    self.record.add(job, outcome)
            except (OptionError, OSError, ValueError) as error:
                outcome = Outcome(FAILED, outcome.server, outcome.seconds, reason=str(error))
        entry["status"] = outcome.status
        if outcome.reason:
            entry["reason"] = outcome.reason
        if outcome.status != DONE:
            self._say(
                outcome.reason
                if outcome.reason.startswith("line ")
                else f"line {job.line}: {outcome.reason}"
            )
        if self.progress:
            self.progress.item_ended(outcome.status == DONE)
        job.inputs = None  # memory stays flat however long the manifest

    def write_output(self, out: Path, png: bytes) -> None:
        """Inside the output folder, through no link (host/contained.py); outside it (the
        user allowed that) as the path says."""
        if out.is_relative_to(self.record.out_dir):
            write_inside(self.record.out_dir, out.relative_to(self.record.out_dir), png)
        else:
            write_atomically("out", out, png)

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
        if self.record.stale:
            with contextlib.suppress(OSError):
                self.record.compact()
        with contextlib.suppress(OSError):
            write_inside(self.record.out_dir, Path(REPORT_NAME), "\n".join(lines).encode())
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
        queue = deque(jobs)
        while (job := run.next_job(queue)) is not None:
            outcome = render_item(
                self.url,
                self.url,
                job.item.options,
                job.inputs,
                comfy.new_id(),
                progress.step(job.line),
            )
            if outcome.status == SERVER_LOST:
                run.give_up([job, *queue], outcome.reason)
                return
            run.finish(job, outcome)


def run_batch(servers: Servers, jobs: list[BatchJob], run: BatchRun) -> None:
    """Ask the servers what they run, then render every line in run order: each is read when
    its turn comes, and skipped when an earlier run did it (see JobRecord.is_done)."""
    queue = deque(run_order(jobs))
    if not run.first_readable(queue):
        return
    with servers:
        run.info = agreed_info(servers.infos(model_names(jobs)))
        servers.run(list(queue), run)
