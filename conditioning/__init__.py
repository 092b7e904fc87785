"""Pure torch math of the pack: light vectors and maps, masks, compositing. No ComfyUI imports."""
