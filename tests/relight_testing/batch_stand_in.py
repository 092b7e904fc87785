"""A stand-in for a batch's servers: no ComfyUI, every render a small PNG at once."""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
from PIL import Image

from relight_inpaint.host import batch

INFO = {"pack_version": "1.0", "models": {"relight_default.safetensors": "ab" * 32}}


def png_bytes(seed: int = 0, size: int = 8) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 255, (size, size, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


class StandInServers(batch.OneServer):
    """A OneServer that reaches nothing: render_item is replaced by the test."""

    def __init__(self) -> None:
        self.url = "stand-in"

    def __enter__(self) -> StandInServers:
        return self

    def __exit__(self, *exc_info: object) -> None:
        pass

    def infos(self, model_names: list[str]) -> dict[str, dict]:
        return {self.url: INFO}


class StandIn:
    """What the stand-in server rendered (each line's seed, in order), and actions to run just
    before a given render (1 = the first)."""

    def __init__(self) -> None:
        self.rendered: list[int] = []
        self.actions: dict[int, list[Callable[[], None]]] = {}

    def before(self, number: int, action: Callable[[], None]) -> None:
        self.actions.setdefault(number, []).append(action)

    def render_item(self, url, server, options, inputs, prompt_id, on_progress=None):
        self.rendered.append(int(options.get("seed", 0)))
        for action in self.actions.pop(len(self.rendered), []):
            action()
        return batch.Outcome(batch.DONE, server, 0.01, png_bytes(len(self.rendered)))

    def servers(self) -> StandInServers:
        return StandInServers()


def install_stand_in(monkeypatch: object) -> StandIn:
    """`relight batch` (cli.main) renders on a stand-in from now on; returns it."""
    from relight_inpaint.host import cli

    made = StandIn()
    monkeypatch.setattr(cli, "batch_servers", lambda urls, cluster: made.servers())
    monkeypatch.setattr(cli, "stop_on_signals", lambda: None)
    monkeypatch.delenv(cli.CALLER_CWD_ENV, raising=False)
    monkeypatch.setattr(batch, "render_item", made.render_item)
    return made
