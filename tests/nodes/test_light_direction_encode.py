import pytest
import torch

from relight_inpaint.nodes.light_direction_encode import LightDirectionEncode

DEFAULTS = {
    "direction_from": "angles",
    "azimuth": 0.0,
    "elevation": 0.0,
    "x": 0.0,
    "y": 0.0,
    "z": 1.0,
    "intensity": 1.0,
    "ambient": 0.15,
    "color": "#ffffff",
}


def encode(**changes):
    return LightDirectionEncode.execute(**{**DEFAULTS, **changes}).result


@pytest.mark.parametrize(
    ("changes", "direction"),
    [
        ({"azimuth": 0.0}, (1, 0, 0)),
        ({"azimuth": 90.0}, (0, 1, 0)),
        ({"azimuth": 180.0}, (-1, 0, 0)),
        ({"elevation": 90.0}, (0, 0, 1)),
        ({"direction_from": "vector", "x": 0.0, "y": -0.5, "z": 0.0}, (0, -1, 0)),
        ({"direction_from": "left"}, (-1, 0, 0)),
        ({"direction_from": "top"}, (0, 1, 0)),
    ],
)
def test_direction_follows_the_documented_camera_frame(changes, direction):
    light, _ = encode(**changes)
    assert torch.allclose(
        light.direction[0], torch.tensor(direction, dtype=torch.float32), atol=1e-6
    )


def test_preview_shows_sphere_and_light_map_side_by_side():
    _, preview = encode(azimuth=0.0, elevation=20.0)
    assert preview.shape == (1, 256, 512, 3)
    gradient = preview[0, :, 256:]
    assert gradient[:, -1].mean() > gradient[:, 0].mean()  # light from the right


def test_append_to_builds_a_batch_of_lights():
    first, _ = encode(azimuth=0.0)
    both, preview = encode(azimuth=180.0, append_to=first)
    assert both.batch_size == 2 and preview.shape[0] == 2
    assert both.direction[0, 0] > 0.99 and both.direction[1, 0] < -0.99


def test_intensity_ambient_and_colour_are_carried():
    light, _ = encode(intensity=2.0, ambient=0.3, color="#ff8000")
    assert light.intensity.item() == 2.0 and light.ambient.item() == pytest.approx(0.3)
    assert torch.allclose(light.color[0], torch.tensor([1.0, 128 / 255, 0.0]))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"direction_from": "vector", "x": 0.0, "y": 0.0, "z": 0.0}, "^light vector"),
        ({"elevation": 95.0}, "^elevation"),
        ({"color": "purple-ish"}, "^color"),
        ({"direction_from": "sideways"}, "^direction_from"),
    ],
)
def test_bad_input_names_the_input(changes, message):
    with pytest.raises(ValueError, match=message):
        encode(**changes)


def test_color_is_the_hosts_picker_where_it_has_one(monkeypatch):
    from comfy_api.v0_0_2 import io

    from relight_inpaint.nodes import light_direction_encode

    host_has_color = hasattr(io, "Color")  # 0.3.75: no (text, the page adds a picker)
    kind = io.Color.Input if host_has_color else io.String.Input
    assert isinstance(light_direction_encode.color_input(), kind)
    monkeypatch.delattr(io, "Color", raising=False)
    assert isinstance(light_direction_encode.color_input(), io.String.Input)

    class Color:
        class Input:
            def __init__(self, id, default, tooltip):
                self.id, self.default = id, default

    monkeypatch.setattr(io, "Color", Color, raising=False)
    chosen = light_direction_encode.color_input()
    assert isinstance(chosen, Color.Input) and chosen.default == "#ffffff"
