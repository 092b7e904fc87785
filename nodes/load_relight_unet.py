"""LoadRelightUNet: the pack's own relight model, or IC-Light offsets added onto an SD1.5 MODEL."""

from __future__ import annotations

from comfy_api.v0_0_2 import io

from ..model_loader.errors import WeightFormatError
from ..model_loader.iclight import apply_iclight, detect_layout, is_iclight
from ..model_loader.relight_format import load_tensors, read_config, require_finite_weights
from ..model_loader.relight_model import load_relight_model
from .common import CATEGORY, model_file_names, model_file_path


class LoadRelightUNet(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="LoadRelightUNet",
            display_name="Load Relight UNet",
            category=CATEGORY,
            description=(
                "Loads a lighting-aware inpainting model. A file in the pack's own format gives "
                "its MODEL and pixel-space VAE. IC-Light offsets (fc, fcon, fbc; diffusers or LDM "
                "keys) are applied onto the connected SD1.5 MODEL, whose VAE passes through."
            ),
            inputs=[
                io.Combo.Input(
                    "model_name",
                    options=model_file_names(),
                    tooltip="A .safetensors file from models/relight (the pack's bundled model "
                    "is listed there) or models/diffusion_models.",
                ),
                io.Model.Input(
                    "model",
                    optional=True,
                    tooltip="IC-Light only: the SD1.5 MODEL the offsets are added to (from a "
                    "checkpoint loader). Ignored for the pack's own models.",
                ),
                io.Vae.Input(
                    "vae",
                    optional=True,
                    tooltip="IC-Light only: the SD1.5 checkpoint's VAE, passed through. "
                    "Ignored for the pack's own models (they bring a pixel-space VAE).",
                ),
            ],
            outputs=[
                io.Model.Output(tooltip="The relight model, for RelightInpaintSampler."),
                io.Vae.Output(tooltip="The VAE that goes with it."),
            ],
        )

    @classmethod
    def validate_inputs(cls, model_name) -> bool | str:
        """Checked when the prompt is queued, so a missing or broken file is a prompt error
        that names it rather than a failure after the rest of the graph has run. Only the
        file's header is read."""
        if not isinstance(model_name, str):
            return f"model_name: expected a model file name, got {model_name!r}"
        try:
            read_config(model_file_path(model_name))
        except (ValueError, OSError) as error:
            return str(error)
        return True

    @classmethod
    def execute(cls, model_name: str, model=None, vae=None) -> io.NodeOutput:
        path = model_file_path(model_name)
        loaded = load_relight_model(path)
        if loaded is not None:
            return io.NodeOutput(*loaded)
        state_dict = load_tensors(path)
        require_finite_weights(state_dict)
        if not is_iclight(state_dict):
            detect_layout(state_dict)  # raises: neither IC-Light nor the pack's format
            raise WeightFormatError(
                f"model_name: {model_name} has UNet keys but its conv_in does not take the "
                "8 or 12 channels of IC-Light"
            )
        if model is None:
            raise ValueError(
                "model: IC-Light weights are offsets onto an SD1.5 UNet: connect the MODEL "
                "of an SD1.5 checkpoint loader"
            )
        if vae is None:
            raise ValueError("vae: IC-Light needs the SD1.5 checkpoint's VAE: connect it")
        patched, _variant = apply_iclight(model, state_dict)
        return io.NodeOutput(patched, vae)
