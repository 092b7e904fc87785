"""Relight Inpaint: lighting-aware inpainting nodes for ComfyUI.

ComfyUI imports this file as the pack's entry point and awaits `comfy_entrypoint`. The node
modules are imported there, not at package import, so the pure-torch parts (`conditioning`,
`model_loader`) can be imported without a host.
"""

WEB_DIRECTORY = "./web"


async def comfy_entrypoint():
    from .nodes import RelightInpaintExtension

    return RelightInpaintExtension()
