"""A model file's config metadata as a hostile file would write it (issue 25, item 9)."""

import pytest

from relight_inpaint.model_loader.relight_format import WeightFormatError, config_from_json


def test_a_config_nested_too_deep_is_a_clear_error_naming_the_file():
    """Mutation caught: RecursionError not caught (it went past the loader's handling)."""
    text = "[" * 100_000 + "]" * 100_000
    with pytest.raises(WeightFormatError, match="hostile.safetensors: .*nested too deep"):
        config_from_json(text, "hostile.safetensors")
