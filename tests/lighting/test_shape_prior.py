"""The learned shape prior: where it applies, what it returns, and that the shipped network
beats the silhouette's dome on figurines it was not trained on."""

from __future__ import annotations

import pytest
import safetensors.torch
import torch

from relight_inpaint.lighting import shape_prior
from relight_inpaint.lighting import subject as subject_module
from relight_inpaint.lighting.subject import (
    LEARNED_NOTE,
    SILHOUETTE_NOTE,
    estimated_geometry,
    uses_learned_prior,
)
from relight_inpaint.model_loader.shape_net import ShapeNet, load_shape_net, save_shape_net
from relight_inpaint.training.shape_prior import figurine_batch, median_angle

from .test_shape_from_shading import notched
from .test_subject import disc

HELD_OUT_SEED = 777  # training draws from seed 0, its own held-out set from 123


def test_the_shipped_prior_beats_the_dome_on_unseen_figurines():
    net = shape_prior.shape_net()
    assert net is not None, f"{shape_prior.MODEL_PATH} is missing"
    x, truth, mask = figurine_batch(24, torch.Generator().manual_seed(HELD_OUT_SEED))
    with torch.no_grad():
        learned = median_angle(net(x), truth, mask)
    dome = median_angle(x[:, 1:4], truth, mask)
    assert learned < dome - 1.5, (learned, dome)


def test_learned_normals_are_unit_on_the_subject_and_flat_off_it():
    """An untrained network is the dome of the subject's box: on a disc, the centre faces the
    viewer and the left rim turns left."""
    region = disc(96, 30.0)[0]
    image = torch.where(region[..., None], 0.6, 0.1).expand(-1, -1, 3)
    normals = shape_prior.learned_normals(image, region, ShapeNet().eval())
    assert normals.shape == (96, 96, 3)
    assert torch.allclose(normals[region].norm(dim=-1), torch.ones(int(region.sum())), atol=1e-4)
    assert bool((normals[~region] == torch.tensor([0.0, 0.0, 1.0])).all())
    assert float(normals[48, 48, 2]) > 0.95 and float(normals[48, 20, 0]) < -0.5
    assert shape_prior.learned_normals(image, torch.zeros_like(region), ShapeNet()) is None


def test_only_a_figurine_starts_from_the_prior(monkeypatch):
    """A silhouette that is not convex starts from the learned prior (said in the notes); a
    convex one keeps its dome; without the file every object keeps the silhouette's prior."""
    ball, figure = disc(), notched(disc())
    assert uses_learned_prior(torch.cat([ball, figure])) == [False, True]
    image = lambda region: torch.where(region[..., None], 0.6, 0.05).expand(-1, -1, -1, 3)  # noqa: E731
    assert LEARNED_NOTE in estimated_geometry(image(figure), figure, faces=False).notes
    assert SILHOUETTE_NOTE in estimated_geometry(image(ball), ball, faces=False).notes
    monkeypatch.setattr(subject_module, "shape_net", lambda: None)
    assert uses_learned_prior(figure) == [False]
    assert SILHOUETTE_NOTE in estimated_geometry(image(figure), figure, faces=False).notes


def test_a_shape_prior_file_round_trips_and_another_file_is_refused(tmp_path):
    net = ShapeNet()
    torch.nn.init.normal_(net.out.weight, std=0.1)
    path = tmp_path / "prior.safetensors"
    save_shape_net(net, path, {"steps": 1})
    again = load_shape_net(path)
    x = torch.rand(1, 5, 32, 32)
    with torch.no_grad():
        assert torch.allclose(net.eval()(x), again(x), atol=2e-2)
    other = tmp_path / "other.safetensors"
    safetensors.torch.save_file({"w": torch.zeros(1)}, str(other))
    with pytest.raises(ValueError, match="other.safetensors"):
        load_shape_net(other)
    assert shape_prior.shape_net(other) is None  # unreadable: the silhouette is used
