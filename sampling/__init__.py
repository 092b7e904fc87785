"""The sampling pipeline: model inputs, spatial conditioning, masked sampling, compositing.

It drives ComfyUI's own sampling stack (comfy.sample, ProgressBar, live preview); the nodes call it.
"""
