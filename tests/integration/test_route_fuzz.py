"""A bounded fuzz of the pack's routes and its prompt hook (issue 25): 200 hostile bodies, sent
to the test server on 127.0.0.1, seeded. Never a 500, never a traceback in the server's log,
and /history strict JSON after every prompt."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import requests
from relight_testing.prompts import TEST_OUTPUT_PREFIX, TEST_UPLOADS

from relight_inpaint.host.comfy_server import Server, new_id, upload_image, wait_for_prompt

SEED = 25
RANDOM_CLEANUP_BODIES = 60
INFO_QUERIES = 30
PROMPTS = 100
ODD_NUMBERS = [math.nan, math.inf, -math.inf, 10**400, -(10**400)]
ODD_CLASS_TYPES = [["LightDirectionEncode"], {"a": 1}, 5, None, True, 1.5]
FIXED_CLEANUP_BODIES: list[tuple[bytes, str]] = [
    (b"[]", "application/json"),
    (b'"s"', "application/json"),
    (b"123", "application/json"),
    (b'{"inputs": "x.png"}', "application/json"),
    (b'{"inputs": ["a.png"]}', "application/json; charset=nonexistent-codec"),
    (b"[" * 100_000 + b"]" * 100_000, "application/json"),
    (b'{"inputs": [' * 5_000, "application/json"),
    (b"\xff\xfe{}", "application/json"),
    (b"", "application/json"),
    (b'{"inputs": [NaN]}', "application/json"),
    (b'{"inputs": ["' + b"x" * (2 << 20) + b'"]}', "application/json"),
    (b'{"inputs": ["../x.png", "/etc/passwd", "\\u0000"]}', "text/plain"),
]


def random_json(rng: random.Random, depth: int = 0) -> object:
    kinds = ["str", "int", "float", "bool", "none", "odd"] + ["list", "dict"] * (depth < 5)
    kind = rng.choice(kinds)
    if kind == "list":
        return [random_json(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    if kind == "dict":
        keys = ["inputs", "outputs", "x", ""]
        return {rng.choice(keys): random_json(rng, depth + 1) for _ in range(rng.randint(0, 3))}
    return {
        "str": lambda: rng.choice(["a.png", "..", "", "x" * 300, "ä.png", "a/b.png"]),
        "int": lambda: rng.choice([0, -1, 2**63, 10**400]),
        "float": lambda: rng.uniform(-1e9, 1e9),
        "bool": lambda: rng.random() < 0.5,
        "none": lambda: None,
        "odd": lambda: rng.choice(ODD_NUMBERS),
    }[kind]()


def cleanup_bodies(rng: random.Random) -> list[tuple[bytes, str]]:
    bodies = list(FIXED_CLEANUP_BODIES)
    for _ in range(RANDOM_CLEANUP_BODIES):
        bodies.append((json.dumps(random_json(rng)).encode(), "application/json"))
    return bodies


def info_queries(rng: random.Random) -> list[dict]:
    names = ["../../etc/passwd", "\x00", "x" * 5000, "", "ä.safetensors", "a b", "%2e%2e"]
    return [{"model": rng.sample(names, rng.randint(1, 3))} for _ in range(INFO_QUERIES)]


def stock_prompt_with_a_loose_pack_node(image: str) -> dict:
    """A cheap stock graph plus a pack node connected to no output (ComfyUI does not validate
    or run it, so the hook is all that stands between its values and /history)."""
    return {
        "1": {"class_type": "LoadImage", "inputs": {"image": image}},
        "2": {
            "class_type": "SaveImage",
            "inputs": {"images": ["1", 0], "filename_prefix": TEST_OUTPUT_PREFIX},
        },
        "3": {"class_type": "LightDirectionEncode", "inputs": {"azimuth": 45.0}},
    }


def hostile_request(rng: random.Random, image: str) -> dict:
    prompt = stock_prompt_with_a_loose_pack_node(image)
    request: dict = {"prompt": prompt, "client_id": new_id(), "prompt_id": new_id()}
    odd = rng.choice(ODD_NUMBERS)
    place = rng.choice(["pack", "pack nested", "pack dict", "stock", "extra", "class", "number"])
    if place == "pack":
        prompt["3"]["inputs"][rng.choice(["azimuth", "junk"])] = odd
    elif place == "pack nested":
        prompt["3"]["inputs"]["junk"] = [odd, 1, [odd]]
    elif place == "pack dict":
        prompt["3"]["inputs"]["azimuth"] = {"v": odd}
    elif place == "stock":
        prompt["2"]["inputs"]["filename_prefix"] = odd
    elif place == "extra":
        request["extra_data"] = {"extra_pnginfo": {"workflow": {"w": [odd]}}}
    elif place == "class":
        prompt["3"]["class_type"] = rng.choice(ODD_CLASS_TYPES)
    else:
        request["number"] = 10**400
    return request


def post(url: str, path: str, body: bytes, content_type: str) -> requests.Response:
    return requests.post(
        f"{url}{path}", data=body, headers={"Content-Type": content_type}, timeout=60
    )


def strict_history(url: str) -> None:
    def refuse(constant: str) -> None:
        raise AssertionError(f"/history holds {constant}")

    json.loads(requests.get(f"{url}/history", timeout=60).text, parse_constant=refuse)


def test_routes_and_prompt_hook_answer_hostile_bodies_without_a_500_or_a_traceback(
    comfy_server: Server, photo_path: Path
) -> None:
    url = comfy_server.url
    log_start = comfy_server.log_path.stat().st_size
    rng = random.Random(SEED)
    image = upload_image(url, photo_path, "fuzz_routes.png", TEST_UPLOADS)
    answers: list[int] = []

    for body, content_type in cleanup_bodies(rng):
        response = post(url, "/relight/cli/cleanup", body, content_type)
        assert response.status_code in (200, 400), (body[:80], response.text[:300])
        if response.status_code == 400:
            assert "expected" in response.json()["error"]
        answers.append(response.status_code)
    for query in info_queries(rng):
        response = requests.get(f"{url}/relight/cli/info", params=query, timeout=60)
        assert response.status_code == 200, (query, response.text[:300])
        answers.append(response.status_code)
    for _ in range(PROMPTS):
        request = hostile_request(rng, image)
        response = post(url, "/prompt", json.dumps(request).encode(), "application/json")
        assert response.status_code in (200, 400), (request, response.text[:300])
        if response.status_code == 200 and not response.json().get("node_errors"):
            wait_for_prompt(url, response.json()["prompt_id"], new_id(), timeout=120)
        strict_history(url)
        answers.append(response.status_code)

    assert len(answers) >= 200
    with open(comfy_server.log_path, errors="replace") as log:
        log.seek(log_start)
        new_lines = log.read()
    assert "Traceback" not in new_lines, new_lines[new_lines.find("Traceback") - 500 :][:3000]
