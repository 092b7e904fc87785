"""Select by Clicks node: a MASK from clicks, combined with a painted mask, errors named."""

from __future__ import annotations

import json

import pytest
import torch

from relight_inpaint.nodes.select_by_clicks import SelectByClicks


def photo() -> tuple[torch.Tensor, torch.Tensor]:
    image = torch.full((1, 64, 80, 3), 0.2)
    image[:, :, :, 2] = 0.5
    yy, xx = torch.meshgrid(torch.arange(64), torch.arange(80), indexing="ij")
    disk = ((yy - 32) ** 2 + (xx - 30) ** 2) < 15**2
    image[0][disk] = torch.tensor([0.9, 0.6, 0.2])
    return image, disk


def clicks(*points) -> str:
    return json.dumps({"points": [list(p) for p in points]})


def test_clicks_give_a_mask_of_the_object_and_a_preview():
    image, disk = photo()
    mask, preview = SelectByClicks.execute(image, clicks((30, 32, 1))).result
    assert mask.shape == (1, 64, 80) and preview.shape == (1, 64, 80, 3)
    assert float((mask[0].bool() == disk).float().mean()) > 0.97


def test_painted_mask_is_added_or_ignored():
    image, disk = photo()
    painted = torch.zeros(1, 64, 80)
    painted[:, 2:8, 70:78] = 1.0
    added = SelectByClicks.execute(image, clicks((30, 32, 1)), painted, "add").result[0]
    assert added[0, 4, 74] == 1 and added[0, 32, 30] == 1
    ignored = SelectByClicks.execute(image, clicks((30, 32, 1)), painted, "ignore").result[0]
    assert ignored[0, 4, 74] == 0
    alone = SelectByClicks.execute(image, "", painted, "add").result[0]
    assert torch.equal(alone, painted)


def test_painted_mask_refined_to_the_edges():
    image, disk = photo()
    rough = torch.zeros(1, 64, 80)
    rough[:, 12:54, 10:52] = 1.0
    refined = SelectByClicks.execute(image, "", rough, "refine").result[0]
    assert float((refined[0].bool() == disk).float().mean()) > 0.97


def test_load_images_empty_mask_of_another_size_means_nothing_painted():
    """Load Image gives a 64 x 64 empty MASK for a photo without alpha: not an error."""
    image, disk = photo()
    mask, _ = SelectByClicks.execute(image, clicks((30, 32, 1)), torch.zeros(1, 64, 64)).result
    assert mask.shape == (1, 64, 80) and float((mask[0].bool() == disk).float().mean()) > 0.97
    painted = torch.zeros(1, 32, 40)
    painted[:, 2:4, 35:39] = 1.0
    added = SelectByClicks.execute(image, "", painted, "add").result[0]
    assert added.shape == (1, 64, 80) and added[0, 5, 74] > 0.5  # scaled to the photo


def test_a_batch_gets_one_mask_per_image():
    image, _ = photo()
    mask, _ = SelectByClicks.execute(image.repeat(2, 1, 1, 1), clicks((30, 32, 1))).result
    assert mask.shape == (2, 64, 80) and torch.equal(mask[0], mask[1])


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"points": "{oops"}, "^points: points: not valid JSON"),
        ({"points": "", "mask": torch.zeros(3, 64, 80)}, "^mask: batch of 3"),
        ({"points": "", "painted": "merge"}, "^painted: expected one of"),
    ],
)
def test_bad_inputs_are_named(kwargs: dict, words: str):
    image, _ = photo()
    with pytest.raises(ValueError, match=words):
        SelectByClicks.execute(image, **kwargs)


def test_bad_points_are_a_queue_time_error():
    assert SelectByClicks.validate_inputs(points='{"box": 3}').startswith("points: box")
    assert SelectByClicks.validate_inputs(points=clicks((1, 2, 1))) is True


def test_clicks_made_on_another_photos_shape_are_refused_naming_points():
    image, _ = photo()  # 80 x 64
    text = json.dumps({"points": [[30, 32, 1]], "size": [64, 64]})
    with pytest.raises(ValueError, match="^points: made on a 64 x 64 picture, but the image is"):
        SelectByClicks.execute(image, text)
    same_shape = json.dumps({"points": [[60, 64, 1]], "size": [160, 128]})  # rescaled: fine
    mask = SelectByClicks.execute(image, same_shape).result[0]
    assert mask[0, 32, 30] == 1


def test_a_24_mp_photo_gives_a_full_size_mask():
    image = torch.full((1, 4000, 6000, 3), 0.2)
    image[0, 1000:3000, 2000:4000] = torch.tensor([0.9, 0.6, 0.2])
    mask = SelectByClicks.execute(image, clicks((3000, 2000, 1))).result[0]
    assert mask.shape == (1, 4000, 6000)
    assert mask[0, 1010:2990, 2010:3990].min() == 1 and mask[0, :900].max() == 0


@pytest.fixture
def input_folder(tmp_path):
    import folder_paths

    before = folder_paths.get_input_directory()
    folder_paths.set_input_directory(str(tmp_path))
    yield tmp_path
    folder_paths.set_input_directory(before)


def save_photo(folder, name: str, size: tuple[int, int], alpha: bool = False) -> dict:
    """An orange ellipse on blue; with `alpha`, its top-left tenth painted (alpha 0)."""
    from PIL import Image, ImageDraw

    width, height = size
    picture = Image.new("RGB", size, (50, 50, 130))
    ImageDraw.Draw(picture).ellipse(
        (width * 0.2, height * 0.2, width * 0.6, height * 0.8), fill=(230, 150, 50)
    )
    if alpha:
        opacity = Image.new("L", size, 255)
        opacity.paste(0, (0, 0, width // 10, height // 10))
        picture.putalpha(opacity)
    picture.save(folder / name)
    return {"filename": name, "subfolder": "", "type": "input"}


def preview(body: dict):
    import io

    import numpy as np
    from PIL import Image

    from relight_inpaint.nodes.select_by_clicks import preview_mask

    png, size = preview_mask(body)
    return np.asarray(Image.open(io.BytesIO(png))) > 127, size


def test_the_route_selects_on_the_nodes_photo(input_folder):
    ref = save_photo(input_folder, "cup.png", (200, 160))
    points = json.dumps({"points": [[80, 80, 1]], "size": [200, 160]})
    mask, size = preview({"image": ref, "points": points})
    assert size == (200, 160) and mask.shape == (160, 200)
    assert mask[80, 80] and not mask[5, 190] and 0.15 < mask.mean() < 0.4


def test_the_route_adds_or_refines_a_painted_mask(input_folder):
    ref = save_photo(input_folder, "painted.png", (200, 160), alpha=True)
    points = json.dumps({"points": [[80, 80, 1]]})
    added, _ = preview({"image": ref, "points": points, "painted": "add"})
    ignored, _ = preview({"image": ref, "points": points, "painted": None})
    assert added[5, 5] and not ignored[5, 5] and added[80, 80]


def test_the_route_works_a_24_mp_photo_on_a_smaller_copy(input_folder):
    from PIL import Image

    Image.new("RGB", (6000, 4000), (40, 40, 120)).save(input_folder / "big.jpg", quality=80)
    ref = {"filename": "big.jpg", "subfolder": "", "type": "input"}
    mask, size = preview(
        {"image": ref, "points": json.dumps({"points": [[3000, 2000, 1]], "size": [6000, 4000]})}
    )
    assert max(size) <= 1024 and mask.shape == (size[1], size[0])


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"points": ""}, "^image: expected"),
        ({"image": {"filename": "cup.png", "type": "models"}, "points": ""}, "^image: type"),
        ({"image": {"filename": "../../etc/passwd"}, "points": ""}, "^image: no such input"),
        ({"image": {"filename": "gone.png"}, "points": ""}, "^image: no such input"),
        ({"image": {"filename": "cup.png"}, "points": "{"}, "^points: points: not valid JSON"),
        ({"image": {"filename": "cup.png"}, "points": 3}, "^points: expected"),
        ({"image": {"filename": "cup.png"}, "points": "", "painted": "x"}, "^painted: expected"),
        ([1, 2], "^expected"),
    ],
)
def test_bad_route_requests_name_the_input(input_folder, body, words):
    from relight_inpaint.nodes.select_by_clicks import BadRequest, preview_mask

    save_photo(input_folder, "cup.png", (40, 30))
    with pytest.raises(BadRequest, match=words):
        preview_mask(body)
