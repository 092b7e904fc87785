"""Host tooling: start ComfyUI with the pack, and the `relight` command line that drives it."""
