"""The pack in ComfyUI's real web page (headless Chromium driven by Playwright), as a new user
would use it: open a template from the template browser, paint in the MaskEditor, click to
select, drag the light, press Run. Values only ever change through real pointer events; the
queued prompt is read off the wire. Screenshots go to out/browser/ (look at them).

Needs Debian's chromium (`.ci/run` installs it); without it these tests are skipped, except
under CI, where they fail.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import requests
from PIL import Image, ImageFilter

from relight_inpaint.host.ui_workflow import TEMPLATES

REPO = Path(__file__).resolve().parents[2]
SHOTS = REPO / "out" / "browser"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
VIEWPORT = {"width": 1600, "height": 1000}
TITLE_A = TEMPLATES["relight_inpaint_photo"].title
TITLE_B = TEMPLATES["iclight_fc_sd15"].title
# What the host's own frontend logs on a machine with no internet and a fresh user folder.
NOISE = (
    "ERR_NAME_NOT_RESOLVED",
    "ERR_INTERNET_DISCONNECTED",
    "/api/userdata",
    "user.css",
    "status of 404",
    "Error fetching file size",  # the missing-models dialog asks the model host for sizes
    "Failed to fetch",
)

if CHROMIUM is None and os.environ.get("CI"):
    pytest.fail("chromium is not installed: .ci/run installs Debian's", pytrace=False)
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="needs chromium (apt install chromium)")


def playwright_or_skip() -> object:
    """Playwright's API; skipped where it is missing, except under CI (the CI environment
    variable, which .ci/run sets), where a missing Playwright would silently skip every browser
    test: there it fails."""
    try:
        import playwright.sync_api as playwright_api
    except ImportError as error:
        if os.environ.get("CI"):
            pytest.fail(f"under CI the browser tests need Playwright: {error}")
        pytest.skip("Playwright is not installed (pip install -r requirements-dev.txt)")
    return playwright_api


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    playwright_api = playwright_or_skip()
    SHOTS.mkdir(parents=True, exist_ok=True)
    with playwright_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
        )
        yield chromium
        chromium.close()


class Page:
    """One browser tab on the host, with what the page logged and the host refused."""

    def __init__(self, browser, url: str) -> None:
        self.url = url
        self.page = browser.new_page(viewport=VIEWPORT)
        self.errors: list[str] = []
        self.missing: list[str] = []
        self.page.on("pageerror", lambda error: self.errors.append(f"pageerror: {error}"))
        self.page.on("console", self._console)
        self.page.on("response", self._response)
        requests.post(f"{url}/settings/Comfy.TutorialCompleted", json=True, timeout=10)
        self.page.goto(url)
        self.page.wait_for_function("window.app?.graph && window.LiteGraph", timeout=90_000)
        time.sleep(1.5)
        self.errors.clear()  # the frontend's own start-up noise is not ours

    def _console(self, message) -> None:
        if message.type == "error":
            self.errors.append(message.text)

    def _response(self, response) -> None:
        if response.status >= 400:
            self.missing.append(f"{response.status} {response.url}")

    def our_errors(self) -> list[str]:
        return [e for e in self.errors if not any(noise in e for noise in NOISE)]

    def shot(self, name: str) -> None:
        self.page.screenshot(path=str(SHOTS / f"{name}.png"))

    def open_template(self, title: str) -> None:
        """Through the template browser: Templates, the pack's category, the card."""
        self.page.get_by_text("Templates", exact=True).first.click()
        self.page.get_by_text("relight_inpaint", exact=True).first.click()
        self.page.get_by_text(title, exact=True).first.wait_for(timeout=15_000)
        self.shot(f"templates_{title[:1]}")
        self.page.get_by_text(title, exact=True).first.click()
        self.page.wait_for_function(
            "n => window.app.graph._nodes.length >= n", arg=8, timeout=30_000
        )
        time.sleep(2)

    def evaluate(self, script: str, arg=None):
        return self.page.evaluate(script, arg)

    def node_id(self, class_type: str) -> int:
        return self.evaluate("t => window.app.graph._nodes.find(n => n.type === t).id", class_type)

    def widget_values(self, node_id: int) -> dict:
        return self.evaluate(
            """id => Object.fromEntries(window.app.graph.getNodeById(id).widgets
                 .filter(w => w.name).map(w => [w.name, w.value]))""",
            node_id,
        )

    def hidden_widgets(self, node_id: int) -> list[str]:
        return self.evaluate(
            "id => window.app.graph.getNodeById(id).widgets.filter(w => w.hidden).map(w => w.name)",
            node_id,
        )

    def screen_point(self, x: float, y: float) -> tuple[float, float]:
        """Where on screen a point of the graph (its own coordinates) is drawn."""
        return tuple(
            self.evaluate(
                """([x, y]) => { const app = window.app;
                     const r = app.canvas.canvas.getBoundingClientRect();
                     const p = app.canvas.ds.convertOffsetToCanvas([x, y]);
                     const s = window.devicePixelRatio || 1;
                     return [r.left + p[0] / s, r.top + p[1] / s]; }""",
                [x, y],
            )
        )

    def client_point(self, node_id: int, fx: float, fy: float) -> tuple[float, float]:
        """Where on screen a point of a node (fractions of its size) is drawn."""
        pos, size = self.evaluate(
            "id => { const n = window.app.graph.getNodeById(id); return [n.pos, n.size]; }",
            node_id,
        )
        return self.screen_point(pos[0] + size[0] * fx, pos[1] + size[1] * fy)

    def widget_point(self, node_id: int, name: str) -> tuple[float, float]:
        """Where on screen a canvas-drawn widget of a node is (its middle)."""
        x, y = self.evaluate(
            """([id, name]) => { const n = window.app.graph.getNodeById(id);
                 const w = n.widgets.find(w => w.name === name);
                 return [n.pos[0] + n.size[0] / 2, n.pos[1] + w.y + 10]; }""",
            [node_id, name],
        )
        return self.screen_point(x, y)

    def box(self, selector: str) -> dict:
        element = self.page.locator(selector).first
        element.wait_for(state="visible", timeout=15_000)
        return element.bounding_box()

    def drag(self, points: list[tuple[float, float]], button: str = "left") -> None:
        mouse = self.page.mouse
        mouse.move(*points[0])
        mouse.down(button=button)
        for point in points[1:]:
            mouse.move(*point, steps=8)
        mouse.up(button=button)

    def run(self) -> dict:
        """Press Run; the prompt as the host received it."""
        with self.page.expect_request(
            lambda r: r.url.endswith("/prompt") and r.method == "POST", timeout=30_000
        ) as request:
            self.page.get_by_role("button", name="Run", exact=True).first.click()
        return json.loads(request.value.post_data)

    def closeup(self, node_id: int, name: str) -> None:
        """A screenshot of one node at 100 % (the view only; no value changes)."""
        self.evaluate(
            """id => { const c = window.app.canvas; c.ds.scale = 1;
                 c.centerOnNode(window.app.graph.getNodeById(id)); c.setDirty(true, true); }""",
            node_id,
        )
        time.sleep(0.5)
        self.shot(name)

    def close(self) -> None:
        self.page.close()


@pytest.fixture
def page(browser, server_url: str) -> Iterator[Page]:
    tab = Page(browser, server_url)
    yield tab
    tab.close()


def finished(url: str, timeout: float = 300.0) -> dict:
    """The newest history entry once the queue is empty."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        queue = requests.get(f"{url}/queue", timeout=10).json()
        if not queue["queue_running"] and not queue["queue_pending"]:
            history = requests.get(f"{url}/history", params={"max_items": 1}, timeout=10).json()
            return next(iter(history.values()))
        time.sleep(0.5)
    raise TimeoutError("the prompt did not finish")


def view(url: str, image: dict) -> np.ndarray:
    response = requests.get(f"{url}/view", params=image, timeout=30)
    response.raise_for_status()
    return np.asarray(Image.open(io.BytesIO(response.content)).convert("RGB")).astype(float)


def overlaps(rects: list[list[float]]) -> list[tuple[int, int]]:
    found = []
    for i, (ax, ay, aw, ah) in enumerate(rects):
        for j, (bx, by, bw, bh) in enumerate(rects[:i]):
            if ax < bx + bw and bx < ax + aw and ay < by + bh and by < ay + ah:
                found.append((j, i))
    return found


NODE_RECTS = """() => window.app.graph._nodes.map(n => {
  const r = n.boundingRect; return [n.type, r[0], r[1], r[2], r[3]]; })"""
ON_SCREEN = """() => {
  const app = window.app, rect = app.canvas.canvas.getBoundingClientRect();
  const scale = window.devicePixelRatio || 1;
  return app.graph._nodes.map(n => {
    const a = app.canvas.ds.convertOffsetToCanvas([n.pos[0], n.pos[1] - 30]);
    const b = app.canvas.ds.convertOffsetToCanvas([n.pos[0] + n.size[0], n.pos[1] + n.size[1]]);
    return [n.type, a[0] / scale, a[1] / scale, b[0] / scale, b[1] / scale,
            rect.width, rect.height];
  });
}"""


# The zoom the template opened at, and the frontend's node text sizes (px at 1:1): a template
# first opened at 59 %, its text 7 px high.
TEXT_SIZES = (
    "() => [window.app.canvas.ds.scale, LiteGraph.NODE_TEXT_SIZE, LiteGraph.NODE_SUBTEXT_SIZE]"
)


@pytest.mark.parametrize("name", list(TEMPLATES))
def test_template_opens_fitted_with_thumbnail_and_no_errors(page: Page, name: str):
    title = TEMPLATES[name].title
    page.open_template(title)
    page.shot(f"open_{name}")
    thumbnails = [m for m in page.missing if m.endswith(".jpg")]
    assert not thumbnails, thumbnails
    assert not page.our_errors(), page.our_errors()
    unknown = page.evaluate(
        "() => window.app.graph._nodes.filter(n => !LiteGraph.registered_node_types[n.type])"
        ".map(n => n.type)"
    )
    assert not unknown
    rects = page.evaluate(NODE_RECTS)
    clashes = overlaps([r[1:] for r in rects])
    assert not clashes, [(rects[i][0], rects[j][0]) for i, j in clashes]
    for kind, left, top, right, bottom, width, height in page.evaluate(ON_SCREEN):
        assert left >= 60 and top >= 0 and right <= width and bottom <= height, kind
    scale, text, subtext = page.evaluate(TEXT_SIZES)
    assert scale * min(text, subtext) >= 10, f"node text {scale * min(text, subtext):.1f} px"


def missing_models_text(page) -> str:
    """What the page lists as missing: frontend 1.32 (ComfyUI 0.3.75) opens a Missing Models
    dialog; newer ones (1.49, ComfyUI 0.33) an errors panel behind "View details"."""
    dialog = page.get_by_text("Missing Models").first
    panel = page.get_by_text("errors found").first
    dialog.or_(panel).wait_for(timeout=15_000)
    if dialog.is_visible():
        return page.locator(".p-dialog").last.inner_text()
    page.get_by_role("button", name="View details").first.click()
    time.sleep(1)
    return page.inner_text("body")


TEMPLATE_CLICKS = json.loads(
    json.loads((REPO / "workflows" / "api" / "relight_inpaint_photo.json").read_text())["2"][
        "inputs"
    ]["points"]
)


def test_template_1_opens_with_the_cup_selected_by_its_clicks(page: Page):
    """The photo node shows the plain photo (a painted bundled photo showed its transparent
    mask as a dark blob, which read as a broken image) and Select by Clicks draws the cup's
    selection from the template's clicks, before any Run."""
    page.open_template(TITLE_A)
    photo = page.node_id("LoadImage")
    name = page.evaluate("id => window.app.graph.getNodeById(id).widgets[0].value", photo)
    assert "A" not in Image.open(REPO / "assets" / name).getbands()
    selector = page.node_id("SelectByClicks")
    page.page.wait_for_function(
        "id => (window.app.graph.getNodeById(id).relightSelection?.selected ?? 0) > 0",
        arg=selector,
        timeout=20_000,
    )
    page.page.wait_for_timeout(1500)
    page.closeup(selector, "template_1_clicks")
    hint = page.page.locator(".relight-select-widget").inner_text()
    assert "photo changed" not in hint, hint  # the same photo loading is no replacement
    assert json.loads(page.widget_values(selector)["points"]) == TEMPLATE_CLICKS
    shown = shown_photo(page.evaluate(CANVAS_PIXELS), 600, 400)
    original = np.asarray(Image.open(REPO / "assets" / name).convert("RGB")).astype(float)
    changed = np.abs(shown - resized(original, shown)).sum(-1) > 30
    truth = np.asarray(Image.fromarray(cup_reference()).resize(changed.shape[::-1])) > 0
    assert (changed & truth).sum() / (changed | truth).sum() > 0.6  # the cup is tinted


def test_missing_weights_are_listed_on_open_and_refused_on_run(page: Page, server_url: str):
    page.open_template(TITLE_B)
    text = missing_models_text(page.page)
    page.shot("missing_models")
    assert "iclight_sd15_fc.safetensors" in text
    assert "v1-5-pruned-emaonly.safetensors" in text
    page.page.keyboard.press("Escape")
    before = requests.get(f"{server_url}/history", timeout=10).json()
    with page.page.expect_response(lambda r: r.url.endswith("/prompt")) as answer:
        page.page.get_by_role("button", name="Run", exact=True).first.click()
    assert answer.value.status == 400  # every output depends on the loader: nothing runs
    body = answer.value.json()
    loader = str(page.node_id("LoadRelightUNet"))
    assert "iclight_sd15_fc.safetensors" in json.dumps(body["node_errors"][loader])
    time.sleep(1)
    page.shot("missing_models_run")
    assert requests.get(f"{server_url}/history", timeout=10).json() == before


def test_dragging_the_light_sets_its_angles_and_the_prompt_carries_them(
    page: Page, server_url: str
):
    page.open_template(TITLE_A)
    light = page.node_id("LightDirectionEncode")
    assert page.hidden_widgets(light) == ["x", "y", "z"]  # angles: the vector does nothing
    sphere = page.box(".relight-light-widget canvas")
    cx, cy = sphere["x"] + sphere["width"] / 2, sphere["y"] + sphere["height"] / 2
    radius = sphere["width"] / 4  # the front hemisphere's disk; the ring around it: behind
    page.drag([(cx - 0.3 * radius, cy), (cx + 0.5 * radius, cy - 0.2 * radius)])
    values = page.widget_values(light)
    expected_azimuth = np.degrees(np.arctan2(0.2, 0.5))
    expected_elevation = np.degrees(np.arcsin(np.sqrt(1 - 0.5**2 - 0.2**2)))
    assert abs(values["azimuth"] - expected_azimuth) < 6
    assert abs(values["elevation"] - expected_elevation) < 6
    page.shot("light_dragged")
    prompt = page.run()["prompt"]
    sent = prompt[str(light)]["inputs"]
    assert (sent["azimuth"], sent["elevation"]) == (values["azimuth"], values["elevation"])
    entry = finished(server_url)
    assert entry["status"]["status_str"] == "success"
    page.page.wait_for_timeout(1500)
    page.shot("light_after_run")
    page.closeup(light, "light_closeup")

    sphere = page.box(".relight-light-widget canvas")  # where the close-up put it
    cx, cy = sphere["x"] + sphere["width"] / 2, sphere["y"] + sphere["height"] / 2
    radius = sphere["width"] / 4
    page.drag([(cx, cy), (cx - 1.6 * radius, cy)])  # into the ring: from behind, on the left
    behind = page.widget_values(light)
    assert behind["elevation"] < -20 and abs(abs(behind["azimuth"]) - 180) < 8
    page.shot("light_behind")


def choose(page: Page, node_id: int, widget: str, value: str) -> None:
    """Pick a combo value as a user does: click the widget, click the menu entry."""
    page.page.mouse.click(*page.widget_point(node_id, widget))
    page.page.locator(".litemenu-entry", has_text=value).first.click()


def sphere_centre(page: Page) -> tuple[float, float, float]:
    sphere = page.box(".relight-light-widget canvas")
    radius = sphere["width"] / 4  # the front disk; the ring around it is behind
    return sphere["x"] + sphere["width"] / 2, sphere["y"] + sphere["height"] / 2, radius


def test_choosing_vector_keeps_the_light_shows_x_y_z_and_the_drag_writes_them(page: Page):
    page.open_template(TITLE_A)
    light = page.node_id("LightDirectionEncode")
    before = page.widget_values(light)  # azimuth 135, elevation 45
    choose(page, light, "direction_from", "vector")
    assert sorted(page.hidden_widgets(light)) == ["azimuth", "elevation"]
    kept = page.widget_values(light)
    az, el = np.radians(before["azimuth"]), np.radians(before["elevation"])
    expected = [np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)]
    assert np.allclose([kept["x"], kept["y"], kept["z"]], expected, atol=0.01)
    cx, cy, radius = sphere_centre(page)
    page.drag([(cx, cy), (cx, cy + 0.6 * radius)])  # down: light from below, in front
    values = page.widget_values(light)
    assert abs(values["x"]) < 0.06 and abs(values["y"] + 0.6) < 0.06 and values["z"] > 0.7
    page.shot("light_vector")


def test_dragging_from_a_preset_lands_where_released(page: Page):
    page.open_template(TITLE_A)
    light = page.node_id("LightDirectionEncode")
    choose(page, light, "direction_from", "left")
    assert sorted(page.hidden_widgets(light)) == ["azimuth", "elevation", "x", "y", "z"]
    cx, cy, radius = sphere_centre(page)
    page.drag([(cx - 0.9 * radius, cy), (cx + 0.4 * radius, cy - 0.4 * radius)])
    values = page.widget_values(light)
    assert values["direction_from"] == "angles"
    assert sorted(page.hidden_widgets(light)) == ["x", "y", "z"]  # shown again on release
    assert abs(values["azimuth"] - 45) < 6  # up and to the right, in front
    assert abs(values["elevation"] - np.degrees(np.arcsin(np.sqrt(1 - 2 * 0.4**2)))) < 6
    page.shot("light_from_preset")


def mask_editor_canvas(page: Page) -> dict:
    boxes = page.evaluate(
        """() => Array.from(document.querySelectorAll('canvas')).map(c => {
             const r = c.getBoundingClientRect();
             return [r.left, r.top, r.width, r.height, c.width, c.height]; })"""
    )
    left, top, width, height, *_ = max(boxes, key=lambda b: b[2] * b[3] * (b[4] == 600))
    return {"x": left, "y": top, "width": width, "height": height}


def test_a_mask_painted_in_the_mask_editor_reaches_the_sampler(page: Page, server_url: str):
    page.open_template(TITLE_A)
    photo = page.node_id("LoadImage")
    page.page.mouse.click(*page.client_point(photo, 0.5, 0.7), button="right")
    page.page.get_by_text("Open in MaskEditor").first.click()
    page.page.get_by_role("button", name="Save").last.wait_for(timeout=15_000)
    time.sleep(1.5)
    editor = mask_editor_canvas(page)
    scale = editor["width"] / 600  # the bundled photo is 600 x 400
    stroke = [(editor["x"] + x * scale, editor["y"] + 360 * scale) for x in (30, 90, 150)]
    page.drag(stroke)
    page.shot("mask_editor_painted")
    page.page.get_by_role("button", name="Save").last.click()
    page.page.wait_for_function(
        "id => String(window.app.graph.getNodeById(id).widgets[0].value).includes('clipspace')",
        arg=photo,
        timeout=20_000,
    )
    prompt = page.run()["prompt"]
    assert "clipspace" in prompt[str(photo)]["inputs"]["image"]
    entry = finished(server_url)
    assert entry["status"]["status_str"] == "success"
    page.page.wait_for_timeout(1500)
    page.shot("mask_editor_after_run")
    conditioning = page.node_id("MaskConditioning")
    preview_id = next(
        k for k, n in prompt.items() if n["inputs"].get("images") == [str(conditioning), 2]
    )
    shown = view(server_url, entry["outputs"][preview_id]["images"][0])
    original = np.asarray(Image.open(REPO / "assets" / "relight_demo_photo.png").convert("RGB"))
    tint = shown[..., 0] - shown[..., 1:].mean(-1) - (original[..., 0] - original[..., 1:].mean(-1))
    assert tint[355:366, 40:140].mean() > 20  # the stroke is in the mask the sampler got
    assert abs(tint[20:60, 480:580].mean()) < 2  # far from every mask: untouched


CANVAS_PIXELS = """() => { const c = document.querySelector('.relight-select-widget canvas');
  const pixels = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  return [c.width, c.height, Array.from(pixels)]; }"""


def shown_photo(canvas: list, width: int, height: int) -> np.ndarray:
    """The part of the click canvas the picture is drawn in (fitted and centred, as the widget
    draws it)."""
    canvas_width, canvas_height, data = canvas
    pixels = np.array(data, dtype=float).reshape(canvas_height, canvas_width, 4)[..., :3]
    scale = min(canvas_width / width, canvas_height / height)
    w, h = round(width * scale), round(height * scale)
    x, y = (canvas_width - w) // 2, (canvas_height - h) // 2
    return pixels[y + 2 : y + h - 2, x + 2 : x + w - 2]


def resized(image: np.ndarray, like: np.ndarray) -> np.ndarray:
    picture = Image.fromarray(image.astype(np.uint8)).resize((like.shape[1] + 4, like.shape[0] + 4))
    return np.asarray(picture).astype(float)[2:-2, 2:-2]


def test_clicking_the_image_selects_a_region_that_reaches_the_sampler(page: Page, server_url: str):
    page.open_template(TITLE_A)
    selector = page.node_id("SelectByClicks")
    canvas = page.box(".relight-select-widget canvas")
    drawn = page.evaluate(
        """() => { const c = document.querySelector('.relight-select-widget canvas');
             return [c.width, c.height]; }"""
    )
    scale = min(drawn[0] / 600, drawn[1] / 400) * canvas["width"] / drawn[0]
    assert abs(canvas["width"] / drawn[0] - canvas["height"] / drawn[1]) < 0.02  # not stretched
    left = canvas["x"] + (canvas["width"] - 600 * scale) / 2
    top = canvas["y"] + (canvas["height"] - 400 * scale) / 2
    click = (420.0, 330.0)  # on the saucer, outside the bundled mask
    page.page.mouse.click(left + click[0] * scale, top + click[1] * scale)
    page.shot("select_clicked")
    points = json.loads(page.widget_values(selector)["points"])
    *template_clicks, [x, y, inside] = points["points"]
    assert len(template_clicks) == len(TEMPLATE_CLICKS["points"])  # the new click goes after
    assert inside == 1 and abs(x - click[0]) < 3 and abs(y - click[1]) < 3
    prompt = page.run()["prompt"]
    assert json.loads(prompt[str(selector)]["inputs"]["points"]) == points
    entry = finished(server_url)
    assert entry["status"]["status_str"] == "success"
    page.page.wait_for_timeout(1500)
    page.shot("select_after_run")
    page.closeup(selector, "select_closeup")
    overlay = view(server_url, entry["outputs"][str(selector)]["relight_selection"][0])
    original = np.asarray(Image.open(REPO / "assets" / "relight_demo_photo.png").convert("RGB"))
    selected = np.abs(overlay - original).sum(-1) > 30
    assert selected[330, 420]
    assert 0.05 < selected.mean() < 0.7  # the saucer (and the clicked cup), not the table
    shown = shown_photo(page.evaluate(CANVAS_PIXELS), original.shape[1], original.shape[0])
    to_result = np.abs(shown - resized(overlay, shown)).mean()
    to_photo = np.abs(shown - resized(original, shown)).mean()
    assert to_result < 0.5 * to_photo  # the canvas now shows the selection, not the photo


def test_a_photo_nobody_painted_is_selected_by_one_click(page: Page, server_url: str):
    """A user's own photo (no alpha: Load Image gives an empty 64 x 64 mask) through template 1:
    uploaded with the node's own button, one click on the object, Run."""
    page.open_template(TITLE_A)
    photo = page.node_id("LoadImage")
    upload = page.evaluate(
        "id => window.app.graph.getNodeById(id).widgets.find(w => w.type === 'button').name",
        photo,
    )
    with page.page.expect_file_chooser() as chooser:
        page.page.mouse.click(*page.widget_point(photo, upload))
    chooser.value.set_files(str(REPO / "assets" / "relight_scene_photo.png"))
    page.page.wait_for_function(
        "id => String(window.app.graph.getNodeById(id).widgets[0].value)"
        ".startsWith('relight_scene_photo')",
        arg=photo,
        timeout=20_000,
    )
    selector = page.node_id("SelectByClicks")
    page.page.wait_for_function(  # the click canvas now shows the new photo
        """id => window.app.graph.getNodeById(id).widgets
             .find(w => w.name === 'click_canvas').relightPicture()?.[1] === 512""",
        arg=selector,
        timeout=20_000,
    )
    page.page.mouse.click(*canvas_point(page, (512, 512), 91, 279))  # on the sphere
    prompt = page.run()["prompt"]
    sent = json.loads(prompt[str(selector)]["inputs"]["points"])
    assert sent["points"] == [[91, 279, 1]] and sent["size"] == [512, 512]  # the cup's went
    entry = finished(server_url)
    assert entry["status"]["status_str"] == "success", entry["status"]
    page.page.wait_for_timeout(1500)
    page.shot("own_photo_selected")
    overlay = view(server_url, entry["outputs"][str(selector)]["relight_selection"][0])
    scene = np.asarray(Image.open(REPO / "assets" / "relight_scene_photo.png").convert("RGB"))
    truth = np.asarray(Image.open(REPO / "assets" / "relight_scene_mask.png").convert("L")) > 127
    selected = np.abs(overlay - scene).sum(-1) > 30
    assert (selected & truth).sum() / (selected | truth).sum() > 0.8


def canvas_point(page: Page, size: tuple[int, int], x: float, y: float) -> tuple[float, float]:
    """Where pixel (x, y) of a photo of `size` (width, height) is on the page, in the click
    canvas that shows it letterboxed."""
    canvas = page.box(".relight-select-widget canvas")
    drawn = page.evaluate(
        """() => { const c = document.querySelector('.relight-select-widget canvas');
             return [c.width, c.height]; }"""
    )
    width, height = size
    scale = min(drawn[0] / width, drawn[1] / height) * canvas["width"] / drawn[0]
    left = canvas["x"] + (canvas["width"] - width * scale) / 2
    top = canvas["y"] + (canvas["height"] - height * scale) / 2
    return left + x * scale, top + y * scale


def cup_reference() -> np.ndarray:
    """The cup's drawn reference mask (benchmarks/select_photos/cases.json), 600 x 400."""
    from relight_inpaint.benchmarks.click_select import CASES, reference_mask

    return reference_mask(json.loads(CASES.read_text())["cup"], (400, 600))


def click_on_photo(page: Page, x: float, y: float, button: str = "left") -> np.ndarray:
    """A real click on the bundled photo in the click canvas at photo pixel (x, y); the mask
    the pack's route answered (what the node draws), at the photo's size."""
    with page.page.expect_response(lambda r: r.url.endswith("/relight/select")) as answer:
        page.page.mouse.click(*canvas_point(page, (600, 400), x, y), button=button)
    assert answer.value.status == 200, answer.value.text()
    assert answer.value.headers.get("content-type") == "image/png"
    # Playwright gives no body for this fetch: the same request again (the answer is the same).
    again = requests.post(answer.value.url, data=answer.value.request.post_data, timeout=60)
    assert again.headers["content-type"] == "image/png"
    mask = Image.open(io.BytesIO(again.content)).convert("L").resize((600, 400))
    page.page.wait_for_timeout(300)  # the overlay is drawn from the answer
    return np.asarray(mask) > 127


def test_clicking_the_cup_redraws_the_selection_without_run_and_it_reaches_the_sampler(
    page: Page, server_url: str
):
    page.open_template(TITLE_A)
    selector = page.node_id("SelectByClicks")
    choose(page, selector, "painted", "ignore")
    page.page.locator(".relight-select-widget button", has_text="Clear").click()
    page.page.wait_for_function(
        "id => window.app.graph.getNodeById(id).widgets.find(w => w.name === 'points').value"
        " .indexOf('[[') < 0",
        arg=selector,
    )
    page.page.wait_for_timeout(600)
    before = np.array(page.evaluate(CANVAS_PIXELS)[2])
    history = requests.get(f"{server_url}/history", timeout=10).json()
    coffee = click_on_photo(page, 290, 140)
    rim = click_on_photo(page, 290, 45)
    saucer_click = click_on_photo(page, 130, 250, button="right")
    assert requests.get(f"{server_url}/history", timeout=10).json() == history  # no Run
    page.shot("select_cup_clicked")
    truth = cup_reference()
    assert coffee[140, 290] and not (coffee & ~rim).any()  # a left click only adds
    assert not (saucer_click & ~rim).any()  # a right click only removes
    shown = saucer_click
    assert (shown & truth).sum() / (shown | truth).sum() > 0.6
    assert not shown[250, 130] and shown[45, 290]
    state = page.evaluate("id => window.app.graph.getNodeById(id).relightSelection", selector)
    assert state and state["selected"] > 0  # the node drew this selection
    after = np.array(page.evaluate(CANVAS_PIXELS)[2])
    assert np.abs(after - before).mean() > 1  # the canvas changed: tint and outline
    prompt = page.run()["prompt"]
    assert prompt[str(selector)]["inputs"]["painted"] == "ignore"
    entry = finished(server_url)
    assert entry["status"]["status_str"] == "success", entry["status"]
    page.page.wait_for_timeout(1500)
    page.shot("select_cup_after_run")
    overlay = view(server_url, entry["outputs"][str(selector)]["relight_selection"][0])
    original = np.asarray(Image.open(REPO / "assets" / "relight_demo_photo.png").convert("RGB"))
    ran = np.abs(overlay - original).sum(-1) > 30
    assert (ran & shown).sum() / (ran | shown).sum() > 0.9  # Run selects what was shown
    conditioning = page.node_id("MaskConditioning")
    preview_id = next(
        k for k, n in prompt.items() if n["inputs"].get("images") == [str(conditioning), 2]
    )
    sampler = view(server_url, entry["outputs"][preview_id]["images"][0])
    tint = (
        sampler[..., 0]
        - sampler[..., 1:].mean(-1)
        - (original[..., 0] - original[..., 1:].mean(-1))
    )
    inner = np.asarray(Image.fromarray(shown).filter(ImageFilter.MinFilter(15))) > 0
    assert tint[inner].mean() > 20  # the clicked selection is the sampler's mask
    assert abs(tint[350:390, 20:80].mean()) < 2  # the table far from it: untouched
