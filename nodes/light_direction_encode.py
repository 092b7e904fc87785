"""LightDirectionEncode: where the light comes from, as a LIGHT (+ a preview of it)."""

from __future__ import annotations

from comfy_api.v0_0_2 import io

from ..lighting.light import (
    PRESET_DIRECTIONS,
    Light,
    direction_from_angles,
    make_light,
    normalize_direction,
    parse_color,
)
from ..lighting.shading import light_preview
from .common import CATEGORY, arguments, check_widgets, refuse_bad_widgets
from .common import Light as LightType

SOURCES = ["angles", "vector", *PRESET_DIRECTIONS]
FRAME = "Camera frame: x right, y up, z toward the viewer."


def light_direction(direction_from: str, azimuth, elevation, x, y, z):
    if direction_from == "angles":
        return direction_from_angles(azimuth, elevation)
    if direction_from == "vector":
        return normalize_direction(x, y, z)
    if direction_from in PRESET_DIRECTIONS:
        return normalize_direction(*PRESET_DIRECTIONS[direction_from])
    raise ValueError(f"direction_from: {direction_from!r}, expected one of {SOURCES}")


def color_input() -> io.Input:
    """The host's colour picker where it has one (newer ComfyUI: io.Color, a "#rrggbb" string);
    else text, with the pack's page widget adding a picker beside the sphere."""
    tooltip = "Light colour: #rrggbb, #rgb or r,g,b (0-255)."
    if hasattr(io, "Color"):
        return io.Color.Input("color", default="#ffffff", tooltip=tooltip)
    return io.String.Input("color", default="#ffffff", tooltip=tooltip)


class LightDirectionEncode(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="LightDirectionEncode",
            display_name="Light Direction Encode",
            category=CATEGORY,
            description=(
                "Says where the light comes from: by azimuth/elevation, by an x,y,z vector, or "
                f"by IC-Light's presets. {FRAME} Chain several through 'append_to' to give each "
                "image of a batch its own light. The preview shows a sphere shaded by it (the "
                "shading map the sampler makes from a subject's normals) beside IC-Light's "
                "light image for it (the official demo's ramp, along any direction)."
            ),
            inputs=[
                io.Combo.Input(
                    "direction_from",
                    options=SOURCES,
                    default="angles",
                    tooltip="angles: use azimuth/elevation; vector: use x, y, z; left/right/top/"
                    "bottom/front: IC-Light-style presets (light coming from that side).",
                ),
                io.Float.Input(
                    "azimuth",
                    default=135.0,
                    min=-360.0,
                    max=360.0,
                    step=1.0,
                    tooltip="Degrees in the image plane, counter-clockwise as you look at the "
                    "image: 0 = light from the right, 90 = from the top, 180 = from the left.",
                ),
                io.Float.Input(
                    "elevation",
                    default=45.0,
                    min=-90.0,
                    max=90.0,
                    step=1.0,
                    tooltip="Degrees out of the image plane: 0 = grazing (in the image plane), "
                    "90 = from the viewer (frontal), negative = from behind the subject.",
                ),
                io.Float.Input(
                    "x",
                    default=0.0,
                    min=-1.0,
                    max=1.0,
                    step=0.01,
                    tooltip=f"Vector mode: x component (right). {FRAME}",
                ),
                io.Float.Input(
                    "y",
                    default=0.0,
                    min=-1.0,
                    max=1.0,
                    step=0.01,
                    tooltip=f"Vector mode: y component (up). {FRAME}",
                ),
                io.Float.Input(
                    "z",
                    default=1.0,
                    min=-1.0,
                    max=1.0,
                    step=0.01,
                    tooltip=f"Vector mode: z component (toward the viewer). {FRAME}",
                ),
                io.Float.Input(
                    "intensity",
                    default=1.0,
                    min=0.0,
                    max=4.0,
                    step=0.05,
                    tooltip="Strength of the directional light (1 = normal).",
                ),
                io.Float.Input(
                    "ambient",
                    default=0.15,
                    min=0.0,
                    max=1.0,
                    step=0.01,
                    tooltip="Light that reaches everything, shadows included.",
                ),
                color_input(),
                LightType.Input(
                    "append_to",
                    optional=True,
                    tooltip="Optional LIGHT this one is appended to: a batch of lights, one per "
                    "image (a single light serves every image).",
                ),
            ],
            outputs=[
                LightType.Output(display_name="light", tooltip="For RelightInpaintSampler."),
                io.Image.Output(
                    display_name="preview",
                    tooltip="Left: a sphere shaded by this light. Right: IC-Light's ramp for it.",
                ),
            ],
        )

    @classmethod
    def validate_inputs(
        cls,
        direction_from=None,
        azimuth=None,
        elevation=None,
        x=None,
        y=None,
        z=None,
        intensity=None,
        ambient=None,
    ) -> bool | str:
        return check_widgets(cls, **arguments(locals()))

    @classmethod
    def execute(
        cls,
        direction_from,
        azimuth,
        elevation,
        x,
        y,
        z,
        intensity,
        ambient,
        color,
        append_to: Light | None = None,
    ) -> io.NodeOutput:
        refuse_bad_widgets(cls, **arguments(locals()))
        direction = light_direction(direction_from, azimuth, elevation, x, y, z)
        light = make_light(
            direction, intensity=intensity, ambient=ambient, color=parse_color(color)
        )
        if append_to is not None:
            light = append_to.concat(light)
        return io.NodeOutput(light, light_preview(light))
