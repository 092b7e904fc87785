"""Progress of the light path's slow loops, told without knowing who listens: a `Tick` is
called once per unit of work (the nodes pass one that moves ComfyUI's progress bar and honours
Cancel, sampling/progress.progress_ticker); None when nobody listens."""

from __future__ import annotations

from collections.abc import Callable

Tick = Callable[[], None] | None


def advance(tick: Tick, count: int = 1) -> None:
    """Call `tick` `count` times (work done, or skipped: the bar still reaches its end)."""
    if tick is not None:
        for _ in range(count):
            tick()
