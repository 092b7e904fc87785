"""The one error type for weight files and model inputs the pack cannot use."""


class WeightFormatError(ValueError):
    """A weight file or MODEL the pack cannot use. The message starts with the input's name."""
