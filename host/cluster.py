"""A batch over several ComfyUI servers, through Ray (`pip install -r requirements-cluster.txt`).

Ray gives the actors, their placement on the cluster's machines and their health; this module
adds the batch's own rules on top:
- one `ServerActor` per ComfyUI server: a server it was pointed at (`--server URL`), or one it
  starts on its own machine (`--cluster` without `--server`: one per machine of the cluster);
- the driver hands an item to each idle actor in run order (priority, then manifest order), one
  at a time per server, so a cancelled batch leaves nothing queued on any server;
- an item whose server or actor died goes back to the front of the queue for another actor
  (the lost actor is dropped); when none is left, the rest fail with the reason;
- Ctrl-C interrupts the running item on every server (actors take a second call while one
  renders) and drops the queue.

Only the command line imports this module (and Ray); the nodes never do.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
from tqdm import tqdm

from . import comfy_server as comfy
from .batch import FAILED, SERVER_LOST, BatchJob, BatchRun, Outcome, render_item
from .bootstrap import REPO
from .rendering import Inputs

LOCAL = "local"  # --cluster local: a Ray runtime on this machine, for this batch only
OBJECT_STORE_BYTES = 512 * 1024**2  # a local runtime's: inputs and outputs of a few items
WAIT_S = 0.5  # the driver wakes this often, so Ctrl-C is never held up
CANCEL_WAIT_S = 15.0
CANCEL_POLL_S = 1.0
MAX_LOSSES = 2  # servers an item may bring down (or lose) before it counts as failed
STOP_WAIT_S = 30.0
HEAD_TIMEOUT_S = 5.0
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@ray.remote(num_cpus=0, max_concurrency=2, max_restarts=0)
class ServerActor:
    """One ComfyUI server: one given by URL, or one started here (stopped with the actor, even
    when Ray kills it: host/exit_with_parent.py). Two calls at once: `cancel` while `render`."""

    def __init__(self, url: str | None = None) -> None:
        self.server: comfy.Server | None = None
        self.base_dir: Path | None = None
        if url is None:
            self.base_dir = comfy.make_base_dir(Path(tempfile.mkdtemp(prefix="relight-batch-")))
            try:
                self.server = comfy.start_server(base_dir=self.base_dir, exit_with_parent=True)
            except BaseException:
                shutil.rmtree(self.base_dir, ignore_errors=True)
                raise
            url = self.server.url
            self.name = f"{socket.gethostname()}:{self.server.port}"
        else:
            self.name = url
        self.url = url

    def describe(self) -> str:
        return self.name

    def info(self, model_names: list[str]) -> dict:
        return comfy.cli_info(self.url, model_names)

    def render(self, options: dict, inputs: Inputs, prompt_id: str) -> Outcome:
        return render_item(self.url, self.name, options, inputs, prompt_id)

    def cancel(self, prompt_id: str) -> None:
        with contextlib.suppress(Exception):
            comfy.cancel_prompt(self.url, prompt_id)

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
        if self.base_dir is not None:
            shutil.rmtree(self.base_dir, ignore_errors=True)


@dataclass
class Worker:
    actor: ray.actor.ActorHandle
    name: str


@dataclass
class Running:
    worker: Worker
    job: BatchJob
    prompt_id: str


class RayServers:
    """The servers of a batch, each behind a `ServerActor` (see the module's docstring)."""

    def __init__(self, urls: list[str], address: str | None) -> None:
        self.urls = urls
        self.address = address or LOCAL
        self.workers: list[Worker] = []
        self._actors: list[ray.actor.ActorHandle] = []  # every one created, started or not

    def __enter__(self) -> RayServers:
        try:
            self._connect()
            self.workers = self._start_workers()
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Stop the servers the actors started (those still starting stop when their actor is
        killed: exit_with_parent.py), then the actors and the driver's Ray."""
        if not ray.is_initialized():  # never connected (any Ray call would start a runtime)
            return
        stops = [actor.stop.remote() for actor in self._actors]
        with contextlib.suppress(Exception):
            ray.wait(stops, num_returns=len(stops), timeout=STOP_WAIT_S)
        for actor in self._actors:
            with contextlib.suppress(Exception):
                ray.kill(actor)
        self.workers, self._actors = [], []
        ray.shutdown()

    def _connect(self) -> None:
        say(
            f"connecting to Ray at {self.address} ..."
            if self.address != LOCAL
            else "starting a local Ray runtime ..."
        )
        options: dict = {
            "job_config": ray.job_config.JobConfig(code_search_path=[str(REPO)]),
            "log_to_driver": False,
            "logging_level": "warning",
        }
        if self.address == LOCAL:  # our own runtime: its warnings are about our settings
            options.update(
                include_dashboard=False,
                object_store_memory=OBJECT_STORE_BYTES,
                logging_level="error",
            )
        check_head(self.address)
        handlers = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS}
        try:
            ray.init(address=self.address, **options)
        except (ConnectionError, ValueError, RuntimeError) as error:
            message = f"cannot reach the Ray cluster at {self.address}: {error}"
            raise comfy.ServerError(message) from None
        for signum, handler in handlers.items():  # Ray's would end the batch unreported
            if handler is not None:
                signal.signal(signum, handler)

    def _start_workers(self) -> list[Worker]:
        here = ray.get_runtime_context().get_node_id()
        if self.urls:  # the driver reached these: their actors run beside it
            self._actors = [
                ServerActor.options(scheduling_strategy=on_node(here)).remote(url)
                for url in self.urls
            ]
        else:
            say("starting a ComfyUI on each machine of the cluster ...")
            self._actors = [
                ServerActor.options(scheduling_strategy=on_node(node["NodeID"])).remote()
                for node in ray.nodes()
                if node.get("Alive")
            ]
        workers = []
        for actor in self._actors:
            try:
                workers.append(Worker(actor, ray.get(actor.describe.remote())))
            except ray.exceptions.RayError as error:
                say(f"a server could not start, going on without it: {message_line(error)}")
        if not workers:
            raise comfy.ServerError("no ComfyUI server could be started or reached")
        names = ", ".join(worker.name for worker in workers)
        say(f"{len(workers)} server{'s' if len(workers) > 1 else ''}: {names}")
        return workers

    def infos(self, model_names: list[str]) -> dict[str, dict]:
        answers = {worker.name: worker.actor.info.remote(model_names) for worker in self.workers}
        infos = {}
        for name, answer in answers.items():
            try:
                infos[name] = ray.get(answer)
            except ray.exceptions.RayError as error:  # say which server, not Ray's traceback
                raise comfy.ServerError(f"{name}: {message_line(error)}") from None
        return infos

    def run(self, jobs: list[BatchJob], run: BatchRun) -> None:
        run.start(len(jobs))
        queue = deque(jobs)
        idle = list(self.workers)
        running: dict[ray.ObjectRef, Running] = {}
        try:
            while queue or running:
                while idle and (job := run.next_job(queue)) is not None:
                    task = Running(idle.pop(0), job, comfy.new_id())
                    ref = task.worker.actor.render.remote(
                        job.item.options, job.inputs, task.prompt_id
                    )
                    running[ref] = task
                if not running:
                    run.give_up(list(queue), "every server was lost")
                    return
                ready, _ = ray.wait(list(running), num_returns=1, timeout=WAIT_S)
                for ref in ready:
                    task = running.pop(ref)
                    outcome = self._outcome(ref, task)
                    if outcome.status != SERVER_LOST:
                        run.finish(task.job, outcome)
                        idle.append(task.worker)
                        continue
                    self._drop(task.worker)
                    if run.server_lost(task.job, outcome) < MAX_LOSSES:
                        queue.appendleft(task.job)
                    else:  # an item that brings servers down must not take them all
                        reason = f"{MAX_LOSSES} servers were lost rendering it; not tried again"
                        run.finish(task.job, Outcome(FAILED, outcome.server, 0.0, reason=reason))
        except BaseException:
            self._cancel(running)
            raise

    def _outcome(self, ref: ray.ObjectRef, task: Running) -> Outcome:
        try:
            return ray.get(ref)
        except ray.exceptions.RayTaskError as error:  # raised in render: a bug, say so
            return Outcome(FAILED, task.worker.name, 0.0, reason=message_line(error))
        except ray.exceptions.RayError as error:  # the actor, its node or the result is gone
            reason = f"{task.worker.name}'s actor was lost ({message_line(error)})"
            return Outcome(SERVER_LOST, task.worker.name, 0.0, reason=reason)

    def _drop(self, worker: Worker) -> None:
        with contextlib.suppress(Exception):
            ray.kill(worker.actor)
        self.workers.remove(worker)
        self._actors.remove(worker.actor)  # nothing left to stop: its server went with it

    def _cancel(self, running: dict[ray.ObjectRef, Running]) -> None:
        """Interrupt every running item and wait (bounded) until its render returned, so its
        files are removed from the server. A cancel can land before the actor queued the
        prompt: it is sent again while the render goes on."""
        pending = dict(running)
        deadline = time.monotonic() + CANCEL_WAIT_S
        with contextlib.suppress(Exception):
            while pending and time.monotonic() < deadline:
                calls = [
                    task.worker.actor.cancel.remote(task.prompt_id) for task in pending.values()
                ]
                ray.wait(calls, num_returns=len(calls), timeout=CANCEL_POLL_S)
                done, _ = ray.wait(list(pending), num_returns=len(pending), timeout=CANCEL_POLL_S)
                for ref in done:
                    del pending[ref]


def check_head(address: str) -> None:
    """A HOST:PORT that nothing answers at is refused at once: Ray would wait a minute for it
    and then start a runtime of its own on this machine instead."""
    if address in (LOCAL, "auto") or "://" in address:
        return
    host, _, port = address.rpartition(":")
    try:
        socket.create_connection((host or "127.0.0.1", int(port)), timeout=HEAD_TIMEOUT_S).close()
    except (OSError, ValueError) as error:
        raise comfy.ServerError(
            f"cannot reach the Ray cluster at {address}: expected HOST:PORT of a running head "
            f"(`ray start --head`), auto or local ({error})"
        ) from None


def on_node(node_id: str) -> NodeAffinitySchedulingStrategy:
    return NodeAffinitySchedulingStrategy(node_id=node_id, soft=False)


def message_line(error: BaseException) -> str:
    """The error's own message: the last line of what Ray prints (a traceback before it)."""
    lines = [line for line in str(error).splitlines() if line.strip()]
    return lines[-1] if lines else type(error).__name__


def say(text: str) -> None:
    tqdm.write(f"relight: {text}", file=sys.stderr)
