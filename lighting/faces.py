"""Faces: surface normals from a face mesh, and a person matte.

Why: the silhouette estimate (normals.py) inflates the mask into a dome, which on a face is
worse than a flat plane (37-42 degrees median error against photometric stereo); the normals
of a fitted face mesh are within 15-18 degrees. The mesh comes from mediapipe's face models
(BlazeFace short-range detection, then the 468-landmark face mesh with depth), run by
tflite_models.py without importing mediapipe. Its triangles are rasterised at the photo's
resolution with smooth per-vertex normals, and a weight map says where to trust them, so that
the caller can blend them into a coarser prior for hair and neck.

Frames: photo pixels have x to the right and y DOWN, measured from the top-left corner (pixel
(r, c) is sampled at its centre (c + 0.5, r + 0.5)). Normals are in the pack's frame: x right,
y UP, z toward the viewer. mediapipe's landmark z grows AWAY from the camera (the nose tip is
the most negative), in the same scale as x.
"""

from __future__ import annotations

import ast
import math
import threading
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from . import tflite_models
from .normals import FLAT

MAX_FACES = 4  # the largest faces are meshed; the rest are left to the silhouette estimate
MIN_FACE_PX = 32  # smaller detections are skipped: the landmark model needs some pixels
DETECTION_SIZE = 128  # BlazeFace short range: 128x128, inputs -1..1
LANDMARK_SIZE = 192  # face mesh: 192x192, inputs 0..1
MATTE_SIZE = 256  # selfie segmentation: 256x256, inputs 0..1
MIN_SCORE = 0.5  # detection score (sigmoid of the clipped logit), as mediapipe
SCORE_CLIP = 100.0
NMS_IOU = 0.3  # weighted non-maximum suppression, as mediapipe
MIN_PRESENCE = 0.98  # the landmark model's face-presence score: real faces 0.999-1.0;
# figurines it calls faces score less (a cat 0.83, an owl 0.97: their meshes were 5-9 deg worse
# than the silhouette against photometric stereo)
ROI_SCALE = 1.5  # the landmark crop is the detection box's long side times this, as mediapipe
FALLOFF = 0.05  # the weight falls from 1 to 0 over this share of the face's size outside the mesh
NUM_LANDMARKS = 468
_MAX_TRIES = 3 * MAX_FACES  # landmark runs at most: false detections are rejected by the mesh
FALLBACK = "the subject is estimated as an object"
_CHUNK = 1 << 22  # candidate pixels rasterised at once (bounds the memory on huge faces)
_INSIDE_EPS = 1e-6  # barycentric slack, so that shared edges leave no cracks


@dataclass(frozen=True)
class FaceGeometry:
    """What the face mesh says about a photo.

    normals: [H,W,3] unit normals, camera frame (x right, y up, z toward the viewer);
        (0, 0, 1) where no face is.
    weight: [H,W] 0..1: 1 on the mesh, a smooth fall-off outside it, 0 further away.
    count: faces meshed.
    message: one line for the node.
    depth: [H,W] the mesh's height toward the viewer in photo pixels; NaN where no face is.
    """

    normals: Tensor
    weight: Tensor
    count: int
    message: str
    depth: Tensor | None = None


@dataclass(frozen=True)
class _Detection:
    box: np.ndarray  # x0, y0, x1, y1 in photo pixels
    keypoints: np.ndarray  # [6,2]: the subject's right eye, left eye, nose, mouth, ears
    score: float

    @property
    def size(self) -> float:
        return float(max(self.box[2] - self.box[0], self.box[3] - self.box[1]))


def faces_unavailable() -> str | None:
    """None when the models, the mesh's triangles and the interpreter load; else why, naming
    what to install. The nodes use this to say why they fall back to the silhouette."""
    problem = tflite_models.unavailable()
    if problem is None:
        try:
            _mesh()
        except (OSError, ValueError, SyntaxError) as error:
            problem = f"the face mesh's triangles do not load: {error}"
    if problem is None:
        return None
    return f"face mesh unavailable ({tflite_models.INSTALL_HINT}): {problem}"


def face_geometry(image: Tensor) -> FaceGeometry:
    """Normals and their weight from a face mesh fitted to each face (up to MAX_FACES, largest
    first). image: [H,W,3] (or [1,H,W,3], grey or RGBA too) float 0..1."""
    rgb = _rgb(image)
    height, width = rgb.shape[:2]
    device = image.device
    flat = torch.tensor(FLAT, dtype=torch.float32, device=device).expand(height, width, 3)
    empty = torch.zeros(height, width, dtype=torch.float32, device=device)
    problem = faces_unavailable()
    if problem is not None:
        return FaceGeometry(flat.clone(), empty, 0, problem)

    detections = _detect(rgb)
    small = sum(d.size < MIN_FACE_PX for d in detections)
    meshes = []
    beyond = 0
    for tried, detection in enumerate(d for d in detections if d.size >= MIN_FACE_PX):
        if len(meshes) == MAX_FACES or tried == _MAX_TRIES:
            beyond += 1  # (some may be false detections: they were not checked)
            continue
        landmarks = _landmarks(rgb, detection)  # None: the face mesh model saw no face there
        if landmarks is not None:
            meshes.append((landmarks, detection.size))

    notes = []
    if small:
        notes.append(f"{small} under {MIN_FACE_PX} px skipped")
    if beyond:
        notes.append(f"{beyond} more beyond the {MAX_FACES} largest left out")
    tail = f" ({', '.join(notes)})" if notes else ""
    if not meshes:
        return FaceGeometry(flat.clone(), empty, 0, f"no face found{tail}: {FALLBACK}")

    triangles, _ = _mesh()
    vertices = [_with_hole_centres(landmarks) for landmarks, _ in meshes]
    per_face = len(vertices[0])
    all_triangles = np.concatenate([triangles + i * per_face for i in range(len(vertices))])
    normals, owner, depth = _rasterize(np.concatenate(vertices), all_triangles, height, width)
    face_of_pixel = np.where(owner >= 0, owner // len(triangles), -1)
    weight = _weight(face_of_pixel, [size for _, size in meshes])
    count = len(meshes)
    message = "1 face meshed" if count == 1 else f"{count} faces: each its own mesh"
    return FaceGeometry(
        torch.from_numpy(normals).to(device),
        torch.from_numpy(weight).to(device),
        count,
        message + tail,
        torch.from_numpy(depth).to(device),
    )


def person_matte(image: Tensor) -> Tensor | None:
    """[H,W] 0..1: how much each pixel is a person (mediapipe's selfie segmentation), at the
    photo's size; None when the models are unavailable (see faces_unavailable)."""
    if faces_unavailable() is not None:
        return None
    rgb = _rgb(image)
    height, width = rgb.shape[:2]
    batch = _resize(rgb, MATTE_SIZE, MATTE_SIZE)[None]  # the whole frame, stretched, as mediapipe
    matte = tflite_models.model("selfie_segmentation").run(batch)[0].reshape(MATTE_SIZE, MATTE_SIZE)
    if matte.min() < 0.0 or matte.max() > 1.0:  # logits rather than probabilities
        matte = 1.0 / (1.0 + np.exp(-np.clip(matte, -SCORE_CLIP, SCORE_CLIP)))
    matte = np.clip(_resize(matte, width, height), 0.0, 1.0)
    return torch.from_numpy(np.ascontiguousarray(matte, dtype=np.float32)).to(image.device)


def rasterize_mesh(
    vertices: np.ndarray | Tensor, triangles: np.ndarray | Tensor, height: int, width: int
) -> tuple[Tensor, Tensor]:
    """Smooth normals of a triangle mesh seen orthographically, and where it covers the image.

    vertices: [V,3] = (x right, y DOWN, depth TOWARD the viewer), x and y in pixels from the
        image's top-left corner, depth in the same unit.
    triangles: [T,3] vertex indices, consistently wound (either way: the side facing the viewer
        is chosen for the whole mesh).
    Returns normals [H,W,3] (pack frame: x right, y up, z toward the viewer; per-vertex normals,
    area-weighted, interpolated barycentrically and renormalised; the nearest triangle wins;
    (0, 0, 1) where nothing is) and coverage [H,W] (1 where a triangle covers the pixel).
    """
    if isinstance(vertices, Tensor):
        vertices = vertices.detach().cpu().numpy()
    if isinstance(triangles, Tensor):
        triangles = triangles.detach().cpu().numpy()
    normals, owner, _ = _rasterize(np.asarray(vertices), np.asarray(triangles), height, width)
    return torch.from_numpy(normals), torch.from_numpy((owner >= 0).astype(np.float32))


# --- the mesh ----------------------------------------------------------------------------------

_mesh_lock = threading.Lock()
_mesh_cache: list[tuple[np.ndarray, list[np.ndarray]]] = []


def _mesh() -> tuple[np.ndarray, list[np.ndarray]]:
    """The face mesh's triangles [T,3] (holes of the eyes and the mouth closed by a fan around
    an extra centre vertex each, numbered from NUM_LANDMARKS) and those holes' loops."""
    with _mesh_lock:
        if not _mesh_cache:
            _mesh_cache.append(_build_mesh(_tesselation_edges()))
        return _mesh_cache[0]


def _tesselation_edges() -> list[tuple[int, int]]:
    """FACEMESH_TESSELATION's edges in source order, read as text: the file has no imports,
    but executing it is needless when its one literal is all that is wanted."""
    path = tflite_models.wheel_file(tflite_models.MESH_CONNECTIONS_FILE)
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if (
            isinstance(node, ast.Assign)
            and any(getattr(t, "id", None) == "FACEMESH_TESSELATION" for t in node.targets)
            and isinstance(node.value, ast.Call)
            and node.value.args
        ):
            return [tuple(edge) for edge in ast.literal_eval(node.value.args[0])]
    raise ValueError(f"FACEMESH_TESSELATION not found in {path}")


def _build_mesh(edges: list[tuple[int, int]]) -> tuple[np.ndarray, list[np.ndarray]]:
    """Triangles from the edge list. The source lists each triangle's three edges in a row,
    a->b, b->c, c->a, consistently wound (checked): that gives exactly the 852 triangles. The
    graph's 3-cliques would give two more, spurious ones (three edges of neighbouring
    triangles, over the nostrils)."""
    if len(edges) % 3:
        raise ValueError("the tesselation's edges are not in triangle order")
    triangles = []
    for first, second, third in zip(edges[0::3], edges[1::3], edges[2::3], strict=True):
        if first[1] != second[0] or second[1] != third[0] or third[1] != first[0]:
            raise ValueError("the tesselation's edges are not in triangle order")
        triangles.append((first[0], second[0], third[0]))
    tris = np.asarray(triangles, dtype=np.int64)
    directed = {
        (int(a), int(b)) for t in tris for a, b in ((t[0], t[1]), (t[1], t[2]), (t[2], t[0]))
    }
    if len(directed) != 3 * len(tris) or tris.max() >= NUM_LANDMARKS:
        raise ValueError("the tesselation is not a consistently wound mesh of 468 vertices")
    boundary = {a: b for a, b in directed if (b, a) not in directed}
    loops = []
    seen: set[int] = set()
    for start in boundary:
        if start in seen:
            continue
        loop = [start]
        seen.add(start)
        while boundary[loop[-1]] != start:
            loop.append(boundary[loop[-1]])
            if loop[-1] in seen or len(loop) > len(boundary):
                raise ValueError("the tesselation's boundary is not a set of simple loops")
            seen.add(loop[-1])
        loops.append(np.asarray(loop, dtype=np.int64))
    loops.sort(key=len, reverse=True)
    holes = loops[1:]  # the longest loop is the face's outline; the rest: eyes and mouth
    fans = []
    for number, loop in enumerate(holes):
        centre = NUM_LANDMARKS + number
        # each boundary edge a->b is reversed in its fan triangle, keeping the winding
        fans.extend((b, a, centre) for a, b in zip(loop, np.roll(loop, -1), strict=True))
    return np.concatenate([tris, np.asarray(fans, dtype=np.int64).reshape(-1, 3)]), holes


def _with_hole_centres(landmarks: np.ndarray) -> np.ndarray:
    """[468,3] -> [468 + holes, 3]: each hole's centre is the mean of its loop."""
    _, holes = _mesh()
    centres = [landmarks[loop].mean(axis=0) for loop in holes]
    return np.concatenate([landmarks, np.asarray(centres).reshape(-1, 3)])


# --- the models --------------------------------------------------------------------------------

_anchor_cache: list[np.ndarray] = []


def _anchors() -> np.ndarray:
    """[896,2] anchor centres (x, y) in 0..1, as mediapipe's SSD anchors for the short-range
    model: strides 8, 16, 16, 16 (layers of one stride share a grid), 2 anchors per cell per
    layer, offset 0.5, fixed size 1 (so only centres matter)."""
    if not _anchor_cache:
        centres = []
        for stride, per_cell in ((8, 2), (16, 6)):
            cells = DETECTION_SIZE // stride
            grid = (np.arange(cells) + 0.5) / cells
            ys, xs = np.meshgrid(grid, grid, indexing="ij")
            cell = np.stack([xs.ravel(), ys.ravel()], axis=1)
            centres.append(np.repeat(cell, per_cell, axis=0))
        _anchor_cache.append(np.concatenate(centres))
    return _anchor_cache[0]


def _detect(rgb: np.ndarray) -> list[_Detection]:
    """Faces in the photo, largest first. BlazeFace short range sees a face only when it spans
    more than about a tenth of its 128-pixel input, so it runs on the whole photo letterboxed
    to a square (black bars, as mediapipe) and also on overlapping square tiles of half the
    long side (or the short side, if that is smaller): faces down to about a twentieth of the
    long side are found, two or more in a group photo. Weighted NMS merges the lot."""
    height, width = rgb.shape[:2]
    found = [_detect_window(rgb, None)]
    side = min(min(height, width), max(height, width) // 2)
    if side >= 4 * MIN_FACE_PX:
        for top in _tile_starts(height, side):
            for left in _tile_starts(width, side):
                found.append(_detect_window(rgb, (left, top, side)))
    boxes, keypoints, scores = (np.concatenate(parts) for parts in zip(*found, strict=True))
    if scores.size == 0:
        return []
    detections = [
        _Detection(box, points, score)
        for box, points, score in _weighted_nms(boxes, keypoints, scores)
    ]
    return sorted(detections, key=lambda d: d.size, reverse=True)


def _tile_starts(length: int, side: int) -> list[int]:
    """Starts of windows of `side` covering 0..length with at least half a window of overlap."""
    count = max(1, math.ceil((length - side) / (side / 2))) + 1 if length > side else 1
    return [round(i * (length - side) / max(1, count - 1)) for i in range(count)]


def _detect_window(
    rgb: np.ndarray, window: tuple[int, int, int] | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Detections in one square window (left, top, side) of the photo, or in the whole photo
    letterboxed (None): boxes [N,4] (x0, y0, x1, y1) and keypoints [N,6,2] in photo pixels,
    scores [N]. A tile drops the faces its inner edges cut (another tile holds them whole)."""
    height, width = rgb.shape[:2]
    if window is None:
        scale = DETECTION_SIZE / max(height, width)
        pixels = rgb
    else:
        left, top, side = window
        scale = DETECTION_SIZE / side
        pixels = rgb[top : top + side, left : left + side]
    new_w = max(1, round(pixels.shape[1] * scale))
    new_h = max(1, round(pixels.shape[0] * scale))
    pad_x = (DETECTION_SIZE - new_w) // 2
    pad_y = (DETECTION_SIZE - new_h) // 2
    square = np.zeros((DETECTION_SIZE, DETECTION_SIZE, 3), dtype=np.float32)
    square[pad_y : pad_y + new_h, pad_x : pad_x + new_w] = _resize(pixels, new_w, new_h)
    regressors, logits = _detector_outputs(square * 2.0 - 1.0)
    scores = 1.0 / (1.0 + np.exp(-np.clip(logits.astype(np.float64), -SCORE_CLIP, SCORE_CLIP)))
    keep = scores >= MIN_SCORE
    anchors = _anchors()[keep]
    raw = regressors[keep].astype(np.float64) / DETECTION_SIZE
    centre = raw[:, 0:2] + anchors
    half = raw[:, 2:4] / 2.0
    # 0..1 of the 128-square -> photo pixels
    stretch = np.array([pixels.shape[1] / new_w, pixels.shape[0] / new_h]) * DETECTION_SIZE
    shift = np.array([pad_x, pad_y]) / DETECTION_SIZE
    origin = np.zeros(2) if window is None else np.array(window[:2], dtype=np.float64)
    corners = [
        (centre - half - shift) * stretch + origin,
        (centre + half - shift) * stretch + origin,
    ]
    boxes = np.concatenate(corners, axis=1)
    keypoints = (raw[:, 4:16].reshape(-1, 6, 2) + anchors[:, None, :] - shift) * stretch + origin
    scores = scores[keep]
    if window is not None:
        margin = 0.02 * side
        cut = (
            ((boxes[:, 0] < left + margin) & (left > 0))
            | ((boxes[:, 1] < top + margin) & (top > 0))
            | ((boxes[:, 2] > left + side - margin) & (left + side < width))
            | ((boxes[:, 3] > top + side - margin) & (top + side < height))
        )
        boxes, keypoints, scores = boxes[~cut], keypoints[~cut], scores[~cut]
    return boxes, keypoints, scores


def _detector_outputs(batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    outputs = tflite_models.model("face_detection").run(batch[None])
    by_width = {out.shape[-1]: out.reshape(-1, out.shape[-1]) for out in outputs}
    return by_width[16], by_width[1][:, 0]


def _weighted_nms(
    boxes: np.ndarray, keypoints: np.ndarray, scores: np.ndarray
) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """mediapipe's WEIGHTED suppression: each kept face averages the boxes and keypoints of
    all detections overlapping it (IoU > NMS_IOU), weighted by score."""
    order = np.argsort(-scores)
    sides = np.clip(boxes[:, 2:] - boxes[:, :2], 0, None)
    areas = sides[:, 0] * sides[:, 1]
    kept = []
    while order.size:
        top = order[0]
        low = np.maximum(boxes[order, :2], boxes[top, :2])
        high = np.minimum(boxes[order, 2:], boxes[top, 2:])
        overlap = np.prod(np.clip(high - low, 0, None), axis=1)
        iou = overlap / np.maximum(areas[order] + areas[top] - overlap, 1e-12)
        group = iou > NMS_IOU
        group[0] = True
        members = order[group]
        weights = scores[members] / scores[members].sum()
        box = (boxes[members] * weights[:, None]).sum(axis=0)
        points = (keypoints[members] * weights[:, None, None]).sum(axis=0)
        kept.append((box, points, float(scores[top])))
        order = order[~group]
    return kept


def _landmarks(rgb: np.ndarray, detection: _Detection) -> np.ndarray | None:
    """[468,3] = (x, y DOWN, depth TOWARD the viewer) in photo pixels, or None when the model
    finds no face in the crop. The crop is mediapipe's: a square of 1.5 times the box's long
    side around its centre, turned so that the eyes are level."""
    import cv2

    centre = (detection.box[:2] + detection.box[2:]) / 2.0
    side = detection.size * ROI_SCALE
    eyes = detection.keypoints[1] - detection.keypoints[0]  # subject's right eye -> left eye
    angle = math.atan2(eyes[1], eyes[0])
    rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    # Sample at 1..2 photo pixels per crop pixel, then average down (no aliasing on big faces).
    fine = LANDMARK_SIZE * max(1, int(side // LANDMARK_SIZE))
    step = side / fine
    # crop pixel centre (u, v) -> photo point, in OpenCV's convention (pixel i centred at i):
    offset = centre - 0.5 + rotation @ np.full(2, side * (0.5 / fine - 0.5))
    matrix = np.concatenate([rotation * step, offset[:, None]], axis=1)
    crop = cv2.warpAffine(
        rgb,
        matrix,
        (fine, fine),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_REPLICATE,
    )
    crop = _resize(crop, LANDMARK_SIZE, LANDMARK_SIZE)
    outputs = tflite_models.model("face_landmark").run(crop[None])
    by_size = {out.size: out.ravel() for out in outputs}
    presence = 1.0 / (1.0 + math.exp(-float(np.clip(by_size[1][0], -SCORE_CLIP, SCORE_CLIP))))
    if presence < MIN_PRESENCE:
        return None
    points = by_size[NUM_LANDMARKS * 3].reshape(NUM_LANDMARKS, 3).astype(np.float64)
    unit = side / LANDMARK_SIZE
    xy = centre + ((points[:, :2] - LANDMARK_SIZE / 2.0) * unit) @ rotation.T
    depth = -points[:, 2] * unit  # mediapipe's z grows away from the camera
    return np.concatenate([xy, depth[:, None]], axis=1)


# --- rasterising -------------------------------------------------------------------------------


def _rasterize(
    vertices: np.ndarray, triangles: np.ndarray, height: int, width: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """normals [H,W,3] float32, the winning triangle [H,W] int64 (-1: none) and the depth
    [H,W] float32 there (NaN: none). Vectorised over
    every candidate pixel of every triangle's bounding box, in chunks of _CHUNK pixels; within
    the mesh's bounding box only."""
    vertices = np.asarray(vertices, dtype=np.float64).reshape(-1, 3)
    triangles = np.asarray(triangles, dtype=np.int64).reshape(-1, 3)
    normals = np.zeros((height, width, 3), dtype=np.float32)
    normals[...] = FLAT
    owner = np.full((height, width), -1, dtype=np.int64)
    heights = np.full((height, width), np.nan, dtype=np.float32)
    if len(triangles) == 0 or height == 0 or width == 0:
        return normals, owner, heights

    vertex_normals = _vertex_normals(vertices, triangles)
    xs = vertices[triangles, 0] - 0.5  # pixel (r, c) samples (c + 0.5, r + 0.5): shift to c, r
    ys = vertices[triangles, 1] - 0.5
    depth = vertices[triangles, 2]
    x0 = np.clip(np.ceil(xs.min(axis=1)), 0, width - 1).astype(np.int64)
    x1 = np.clip(np.floor(xs.max(axis=1)), 0, width - 1).astype(np.int64)
    y0 = np.clip(np.ceil(ys.min(axis=1)), 0, height - 1).astype(np.int64)
    y1 = np.clip(np.floor(ys.max(axis=1)), 0, height - 1).astype(np.int64)
    double_area = (xs[:, 1] - xs[:, 0]) * (ys[:, 2] - ys[:, 0]) - (xs[:, 2] - xs[:, 0]) * (
        ys[:, 1] - ys[:, 0]
    )
    live = (
        (x1 >= x0)
        & (y1 >= y0)
        & (np.abs(double_area) > 1e-12)
        & (xs.max(axis=1) >= 0)
        & (xs.min(axis=1) <= width - 1)
        & (ys.max(axis=1) >= 0)
        & (ys.min(axis=1) <= height - 1)
    )
    index = np.nonzero(live)[0]
    if index.size == 0:
        return normals, owner, heights
    # Barycentric weights as affine functions of (x, y): w_k = a_k x + b_k y + c_k.
    xs, ys, depth, double_area = xs[index], ys[index], depth[index], double_area[index]
    nxt, prv = [1, 2, 0], [2, 0, 1]
    a = (ys[:, nxt] - ys[:, prv]) / double_area[:, None]
    b = (xs[:, prv] - xs[:, nxt]) / double_area[:, None]
    c = (xs[:, nxt] * ys[:, prv] - xs[:, prv] * ys[:, nxt]) / double_area[:, None]
    bx0, by0, bw = x0[index], y0[index], x1[index] - x0[index] + 1
    counts = bw * (y1[index] - y0[index] + 1)

    # z-buffer over the mesh's bounding box
    left, top = int(bx0.min()), int(by0.min())
    box_w = int((x1[index]).max()) - left + 1
    box_h = int((y1[index]).max()) - top + 1
    best = np.full(box_w * box_h, -np.inf)
    winner = np.full(box_w * box_h, -1, dtype=np.int64)
    weights = np.zeros((box_w * box_h, 3))

    ends = np.cumsum(counts)
    start = 0
    while start < len(index):
        base = ends[start] - counts[start]
        stop = max(start + 1, int(np.searchsorted(ends, base + _CHUNK, side="right")))
        chunk_counts = counts[start:stop]
        tri = np.repeat(np.arange(start, stop), chunk_counts)
        firsts = ends[start:stop] - chunk_counts - base
        local = np.arange(tri.size) - np.repeat(firsts, chunk_counts)
        px = bx0[tri] + local % bw[tri]
        py = by0[tri] + local // bw[tri]
        bary = a[tri] * px[:, None] + b[tri] * py[:, None] + c[tri]
        inside = (bary >= -_INSIDE_EPS).all(axis=1)
        tri, px, py, bary = tri[inside], px[inside], py[inside], bary[inside]
        z = (bary * depth[tri]).sum(axis=1)
        pixel = (py - top) * box_w + (px - left)
        order = np.lexsort((z, pixel))  # by pixel, then nearest last
        pixel, z, tri, bary = pixel[order], z[order], tri[order], bary[order]
        last = np.ones(pixel.size, dtype=bool)
        last[:-1] = pixel[1:] != pixel[:-1]
        pixel, z, tri, bary = pixel[last], z[last], tri[last], bary[last]
        nearer = z > best[pixel]
        best[pixel[nearer]] = z[nearer]
        winner[pixel[nearer]] = index[tri[nearer]]
        weights[pixel[nearer]] = bary[nearer]
        start = stop

    hit = winner >= 0
    corners = triangles[winner[hit]]
    blended = (weights[hit, :, None] * vertex_normals[corners]).sum(axis=1)
    length = np.linalg.norm(blended, axis=1, keepdims=True)
    blended = np.where(length > 1e-9, blended / np.maximum(length, 1e-9), FLAT)
    blended[:, 2] = np.maximum(blended[:, 2], 0.0)  # a visible surface faces the viewer
    blended /= np.linalg.norm(blended, axis=1, keepdims=True).clip(1e-9)
    region = np.zeros((box_w * box_h, 3), dtype=np.float32)
    region[:] = FLAT
    region[hit] = blended
    normals[top : top + box_h, left : left + box_w] = region.reshape(box_h, box_w, 3)
    owner[top : top + box_h, left : left + box_w] = winner.reshape(box_h, box_w)
    heights[top : top + box_h, left : left + box_w] = np.where(hit, best, np.nan).reshape(
        box_h, box_w
    )
    return normals, owner, heights


def _vertex_normals(vertices: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """[V,3] area-weighted vertex normals in the pack's frame (y up), the mesh's winding turned
    so that, summed over the mesh, it faces the viewer."""
    points = vertices * np.array([1.0, -1.0, 1.0])  # (x, y down, depth) -> (x, y up, depth)
    corner = points[triangles]
    face = np.cross(corner[:, 1] - corner[:, 0], corner[:, 2] - corner[:, 0])  # |.| = 2 area
    if face[:, 2].sum() < 0:
        face = -face
    summed = np.zeros_like(points)
    for k in range(3):
        np.add.at(summed, triangles[:, k], face)
    length = np.linalg.norm(summed, axis=1, keepdims=True)
    return np.where(length > 1e-12, summed / np.maximum(length, 1e-12), FLAT)


def _weight(face_of_pixel: np.ndarray, sizes: list[float]) -> np.ndarray:
    """1 on each face's mesh, falling smoothly (smoothstep of the distance) to 0 at FALLOFF of
    that face's size outside it; the largest over the faces."""
    import cv2

    height, width = face_of_pixel.shape
    weight = np.zeros((height, width), dtype=np.float32)
    for face, size in enumerate(sizes):
        rows, cols = np.nonzero(face_of_pixel == face)
        if rows.size == 0:
            continue
        reach = max(2.0, FALLOFF * size)
        pad = int(math.ceil(reach)) + 1
        r0, r1 = max(0, rows.min() - pad), min(height, rows.max() + pad + 1)
        c0, c1 = max(0, cols.min() - pad), min(width, cols.max() + pad + 1)
        outside = (face_of_pixel[r0:r1, c0:c1] != face).astype(np.uint8)
        distance = cv2.distanceTransform(outside, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
        t = np.clip(1.0 - distance / reach, 0.0, 1.0)
        smooth = (t * t * (3.0 - 2.0 * t)).astype(np.float32)
        np.maximum(weight[r0:r1, c0:c1], smooth, out=weight[r0:r1, c0:c1])
    return weight


# --- images ------------------------------------------------------------------------------------


def _rgb(image: Tensor) -> np.ndarray:
    """[H,W,3] float32 0..1 numpy from [H,W,C] or [1,H,W,C] (C = 1, 3 or 4) or [H,W]."""
    if image.dim() == 4:
        if image.shape[0] != 1:
            raise ValueError(f"image: one photo at a time, got a batch of {image.shape[0]}")
        image = image[0]
    if image.dim() == 2:
        image = image[..., None]
    if image.dim() != 3 or image.shape[-1] not in (1, 3, 4):
        raise ValueError(f"image: expected [H,W,3], got {list(image.shape)}")
    pixels = image.detach().float().clamp(0.0, 1.0).cpu().numpy()
    pixels = pixels[..., :3] if pixels.shape[-1] >= 3 else np.repeat(pixels, 3, axis=-1)
    return np.ascontiguousarray(pixels, dtype=np.float32)


def _resize(pixels: np.ndarray, width: int, height: int) -> np.ndarray:
    """Area averaging down (no aliasing), bilinear up."""
    import cv2

    shrink = width < pixels.shape[1] or height < pixels.shape[0]
    mode = cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
    return cv2.resize(pixels, (width, height), interpolation=mode)
