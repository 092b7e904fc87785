"""ComfyUI's progress bar for the pack's slow loops (lighting/progress's ticks): the nodes and
the sampler make one here, the torch code only calls it."""

from __future__ import annotations

from collections.abc import Callable


def progress_ticker(total: int) -> Callable[[], None]:
    """A tick for a node's slow work: ComfyUI's progress bar on the node (shown while it runs,
    `total` ticks in all), and Cancel honoured at every tick."""
    import comfy.model_management
    import comfy.utils

    bar = comfy.utils.ProgressBar(total)

    def tick() -> None:
        comfy.model_management.throw_exception_if_processing_interrupted()
        bar.update(1)

    return tick
