// Relight Inpaint's page widgets: a light you drag on a shaded sphere (Light Direction Encode)
// and clicks on the image that become a mask (Select by Clicks). Both only set the nodes' own
// widget values, so a workflow saved with them runs the same from the API queue.
import { app } from "../../../scripts/app.js";
import { api } from "../../../scripts/api.js";

const SPHERE_HEIGHT = 240;
const SELECT_HEIGHT = 300;
const DIRECTION_WIDGETS = {
  angles: ["azimuth", "elevation"],
  vector: ["x", "y", "z"],
};
const DEG = 180 / Math.PI;
const BAR_STYLE = "display:flex;gap:6px;align-items:center;font:11px sans-serif;color:#ccc;";

function widget(node, name) {
  return node.widgets?.find((w) => w.name === name);
}

function setWidget(node, name, value) {
  const w = widget(node, name);
  if (!w || w.value === value) return;
  w.value = value;
  w.callback?.(value, app.canvas, node);
}

// An element with its properties (className, style as cssText, textContent, ...) set.
function element(tag, props = {}) {
  const made = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "style") made.style.cssText = value;
    else made[key] = value;
  }
  return made;
}

// The /view address of an image a node's run saved.
function viewUrl(image) {
  const params = new URLSearchParams({ filename: image.filename, subfolder: image.subfolder ?? "", type: image.type });
  return api.apiURL(`/view?${params}`);
}

function round(value, digits) {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}

// --- the light ----------------------------------------------------------------------------

function parseColor(text) {
  const value = String(text ?? "").trim();
  let match = /^#?([0-9a-f]{6})$/i.exec(value);
  if (match) return [0, 2, 4].map((i) => parseInt(match[1].slice(i, i + 2), 16) / 255);
  match = /^#?([0-9a-f]{3})$/i.exec(value);
  if (match) return [...match[1]].map((c) => parseInt(c + c, 16) / 255);
  const parts = value.split(",").map(Number);
  if (parts.length === 3 && parts.every((p) => p >= 0 && p <= 255)) return parts.map((p) => p / 255);
  return [1, 1, 1];
}

function toHex(rgb) {
  return "#" + rgb.map((c) => Math.round(c * 255).toString(16).padStart(2, "0")).join("");
}

const PRESETS = { left: [-1, 0, 0], right: [1, 0, 0], top: [0, 1, 0], bottom: [0, -1, 0], front: [0, 0, 1] };

// The light's direction (toward the light; x right, y up, z toward the viewer), as the node
// computes it from its widgets.
function lightDirection(node) {
  const from = widget(node, "direction_from")?.value;
  let d;
  if (from === "vector") d = ["x", "y", "z"].map((n) => Number(widget(node, n)?.value ?? 0));
  else if (PRESETS[from]) d = PRESETS[from];
  else {
    const az = Number(widget(node, "azimuth")?.value ?? 0) / DEG;
    const el = Number(widget(node, "elevation")?.value ?? 0) / DEG;
    d = [Math.cos(el) * Math.cos(az), Math.cos(el) * Math.sin(az), Math.sin(el)];
  }
  const length = Math.hypot(...d) || 1;
  return d.map((c) => c / length);
}

// Inside the sphere's disk is the front hemisphere; the ring around it is behind the subject
// (its outer edge straight behind), so every direction can be reached by dragging.
function directionAt(u, v) {
  const rho = Math.hypot(u, v);
  if (rho <= 1) return [u, v, Math.sqrt(Math.max(0, 1 - rho * rho))];
  // Past the ring's edge: straight behind, but keep the pointer's side (the azimuth).
  const inPlane = Math.max(0.02, 2 - Math.min(rho, 2));
  const ux = rho > 0 ? u / rho : 1;
  const uy = rho > 0 ? v / rho : 0;
  return [ux * inPlane, uy * inPlane, -Math.sqrt(Math.max(0, 1 - inPlane * inPlane))];
}

function positionOf(d) {
  const planar = Math.hypot(d[0], d[1]);
  if (d[2] >= 0) return [d[0], d[1]];
  const rho = 2 - planar;
  return planar > 1e-6 ? [(d[0] / planar) * rho, (d[1] / planar) * rho] : [2, 0];
}

function describe(d) {
  const az = Math.atan2(d[1], d[0]) * DEG;
  const el = Math.asin(Math.max(-1, Math.min(1, d[2]))) * DEG;
  const side = [];
  if (d[1] > 0.38) side.push("above");
  if (d[1] < -0.38) side.push("below");
  if (d[0] > 0.38) side.push("right");
  if (d[0] < -0.38) side.push("left");
  const where = d[2] < -0.2 ? "behind" : d[2] > 0.9 ? "front" : "";
  return `azimuth ${round(az, 1)}°  elevation ${round(el, 1)}°  ${[...side, where].filter(Boolean).join(" ")}`;
}

function drawSphere(canvas, node) {
  const ctx = canvas.getContext("2d");
  const { width, height } = canvas;
  const radius = Math.min(width, height) / 4 - 2;
  const cx = width / 2;
  const cy = height / 2;
  const d = lightDirection(node);
  const color = parseColor(widget(node, "color")?.value);
  const intensity = Number(widget(node, "intensity")?.value ?? 1);
  const ambient = Number(widget(node, "ambient")?.value ?? 0.15);
  const image = ctx.createImageData(width, height);
  for (let py = 0; py < height; py++) {
    for (let px = 0; px < width; px++) {
      const u = (px - cx) / radius;
      const v = (cy - py) / radius;
      const rho = Math.hypot(u, v);
      const at = 4 * (py * width + px);
      if (rho <= 1) {
        const n = [u, v, Math.sqrt(1 - rho * rho)];
        const lambert = Math.max(0, n[0] * d[0] + n[1] * d[1] + n[2] * d[2]);
        const shade = Math.min(1, ambient + intensity * lambert);
        for (let c = 0; c < 3; c++) image.data[at + c] = 255 * Math.pow(shade * color[c], 1 / 2.2);
        image.data[at + 3] = 255;
      } else if (rho <= 2) {
        image.data.set([40, 40, 52, 255], at); // behind the subject
      }
    }
  }
  ctx.putImageData(image, 0, 0);
  ctx.strokeStyle = "#777";
  ctx.beginPath();
  ctx.arc(cx, cy, radius * 2, 0, 2 * Math.PI);
  ctx.stroke();
  ctx.fillStyle = "#999";
  ctx.font = "11px sans-serif";
  ctx.fillText("behind", cx - 18, cy - radius * 2 + 14);
  const [mx, my] = positionOf(d);
  ctx.beginPath();
  ctx.arc(cx + mx * radius, cy - my * radius, 7, 0, 2 * Math.PI);
  ctx.fillStyle = d[2] >= 0 ? "#ffd24a" : "#4aa8ff";
  ctx.fill();
  ctx.strokeStyle = "#000";
  ctx.stroke();
}

// Hidden widgets keep their value (it is still sent) but take no room on the node.
function setHidden(w, hidden) {
  if (w.hidden === hidden) return;
  w.hidden = hidden;
  if (hidden) {
    w.relightComputeSize = w.computeSize;
    w.computeSize = () => [0, -4];
  } else {
    w.computeSize = w.relightComputeSize;
    delete w.relightComputeSize;
  }
}

function showDirectionInputs(node) {
  const from = widget(node, "direction_from")?.value;
  const shown = DIRECTION_WIDGETS[from] ?? [];
  for (const name of ["azimuth", "elevation", "x", "y", "z"]) {
    const w = widget(node, name);
    if (w) setHidden(w, !shown.includes(name));
  }
  const size = node.computeSize();
  node.setSize([Math.max(node.size[0], size[0]), size[1]]);
  node.setDirtyCanvas(true, true);
}

// A dragged direction into the node's inputs; a preset becomes angles (re-laid out on release).
function setDirection(node, d) {
  const from = widget(node, "direction_from")?.value;
  if (from !== "angles" && from !== "vector") setWidget(node, "direction_from", "angles");
  keepDirection(node, widget(node, "direction_from")?.value, d);
}

// The same light in the inputs of the mode just chosen (presets are fixed directions).
function keepDirection(node, mode, d) {
  if (mode === "vector") ["x", "y", "z"].forEach((n, i) => setWidget(node, n, round(d[i], 3)));
  if (mode === "angles") {
    setWidget(node, "azimuth", round(Math.atan2(d[1], d[0]) * DEG, 1));
    setWidget(node, "elevation", round(Math.asin(Math.max(-1, Math.min(1, d[2]))) * DEG, 1));
  }
}

function addLightWidget(node) {
  const box = element("div", {
    className: "relight-light-widget",
    style: "display:flex;flex-direction:column;align-items:center;gap:2px;",
  });
  const canvas = element("canvas", {
    width: 200,
    height: 200,
    title: "Drag to move the light. Inside the disk: in front; the dark ring: behind.",
    style: "width:200px;height:200px;cursor:crosshair;touch-action:none;",
  });
  const row = element("div", { style: BAR_STYLE });
  const label = element("span", { className: "relight-light-readout" });
  const picker = element("input", {
    type: "color",
    title: "Light colour",
    style: "width:28px;height:18px;padding:0;border:none;background:none;",
  });
  // A host with its own colour widget (newer ComfyUI) shows that one instead.
  const hostPicker = String(widget(node, "color")?.type ?? "").toLowerCase() === "color";
  row.append(...(hostPicker ? [label] : [picker, label]));
  // The subject's shading from the last run, beside the numbers.
  const shading = element("img", {
    title: "The shading the sampler gave the subject in the last run",
    style: "height:28px;display:none;border:1px solid #555;",
  });
  row.append(shading);
  box.append(canvas, row);
  let last = lightDirection(node); // the direction before a change of direction_from

  const redraw = () => {
    drawSphere(canvas, node);
    last = lightDirection(node);
    label.textContent = describe(last);
    picker.value = toHex(parseColor(widget(node, "color")?.value));
  };
  const drag = (event) => {
    const rect = canvas.getBoundingClientRect();
    const radius = Math.min(canvas.width, canvas.height) / 4 - 2;
    const u = ((event.clientX - rect.left) * (canvas.width / rect.width) - canvas.width / 2) / radius;
    const v = (canvas.height / 2 - (event.clientY - rect.top) * (canvas.height / rect.height)) / radius;
    setDirection(node, directionAt(u, v));
    redraw();
    node.setDirtyCanvas(true, true);
  };
  // While dragging, the node keeps its layout (the sphere must not move under the pointer);
  // inputs a preset hid are shown on release.
  let dragging = false;
  canvas.addEventListener("pointerdown", (event) => {
    event.preventDefault();
    event.stopPropagation();
    canvas.setPointerCapture(event.pointerId);
    dragging = true;
    drag(event);
  });
  canvas.addEventListener("pointermove", (event) => {
    if (canvas.hasPointerCapture(event.pointerId)) drag(event);
  });
  canvas.addEventListener("pointerup", (event) => {
    canvas.releasePointerCapture(event.pointerId);
    dragging = false;
    showDirectionInputs(node);
  });
  picker.addEventListener("input", () => {
    setWidget(node, "color", picker.value);
    redraw();
    node.setDirtyCanvas(true, true);
  });

  const dom = node.addDOMWidget("light_sphere", "relight_light", box, {
    serialize: false,
    hideOnZoom: false,
    getMinHeight: () => SPHERE_HEIGHT,
    getMaxHeight: () => SPHERE_HEIGHT,
  });
  dom.relightRedraw = redraw;
  dom.relightShading = shading;
  shading.onload = () => (shading.style.display = "block");
  for (const name of ["direction_from", "azimuth", "elevation", "x", "y", "z", "intensity", "ambient", "color"]) {
    const w = widget(node, name);
    if (!w) continue;
    const original = w.callback;
    w.callback = function (...args) {
      const result = original?.apply(this, args);
      if (name === "direction_from") {
        keepDirection(node, w.value, last); // switching mode keeps where the light is
        if (!dragging) showDirectionInputs(node);
      }
      redraw();
      return result;
    };
  }
  const configure = node.onConfigure;
  node.onConfigure = function (...args) {
    const result = configure?.apply(this, args);
    requestAnimationFrame(() => {
      showDirectionInputs(node);
      redraw();
    });
    return result;
  };
  requestAnimationFrame(() => {
    showDirectionInputs(node);
    redraw();
  });
}

// After a run: the shading the sampler made for this light on the subject, under the sphere.
function showShadingAfterRun(event) {
  const { node: nodeId, output } = event.detail ?? {};
  const image = output?.images?.[0];
  const preview = app.graph?.getNodeById?.(Number(nodeId));
  if (!image || !preview) return;
  const link = app.graph.links[preview.inputs?.[0]?.link];
  const sampler = link && app.graph.getNodeById(link.origin_id);
  if (!sampler || sampler.comfyClass !== "RelightInpaintSampler" || link.origin_slot !== 2) return;
  const lightLink = app.graph.links[sampler.inputs?.find((i) => i.name === "light")?.link];
  const light = lightLink && app.graph.getNodeById(lightLink.origin_id);
  const dom = light && widget(light, "light_sphere");
  if (!dom?.relightShading) return;
  dom.relightShading.src = viewUrl(image);
}

// --- click selection ----------------------------------------------------------------------

function readPoints(node) {
  try {
    const data = JSON.parse(widget(node, "points")?.value || "{}");
    return { points: data.points ?? [], box: data.box ?? null, size: data.size ?? null };
  } catch {
    return { points: [], box: null, size: null };
  }
}

function writePoints(node, data) {
  const value = data.points.length || data.box ? JSON.stringify(data) : "";
  setWidget(node, "points", value);
  node.setDirtyCanvas(true, true); // the text widget shows the new value now
}

// The picture without its alpha: a photo whose mask was painted shows its masked part black.
function withoutAlpha(src) {
  const image = new Image();
  image.src = `${src}${src.includes("?") ? "&" : "?"}channel=rgb`;
  return image;
}

function sourceImage(node) {
  const link = app.graph.links[node.inputs?.find((i) => i.name === "image")?.link];
  const source = link && app.graph.getNodeById(link.origin_id);
  return source?.imgs?.[0] ?? null;
}

// The /view parameters of a picture's URL (what the pack's route reads): which file it shows,
// its cache-busting parameters aside; null for a picture that is no /view file.
function viewRef(src) {
  const params = new URL(src, location.href).searchParams;
  if (!params.get("filename")) return null;
  return { filename: params.get("filename"), subfolder: params.get("subfolder") ?? "", type: params.get("type") ?? "input" };
}

function sourceRef(node) {
  const source = sourceImage(node);
  return source?.src ? viewRef(source.src) : null;
}

// How the node will use a painted mask: null when its mask input is not connected.
function paintedMode(node) {
  const input = node.inputs?.find((i) => i.name === "mask");
  return input?.link != null ? widget(node, "painted")?.value ?? "add" : null;
}

const TINTS = [[40, 120, 255], [40, 230, 110], [255, 40, 200], [255, 215, 0]];

// The photo with the selection tinted in the colour farthest from the selected pixels' mean,
// and outlined in alternating black and white: visible on any colour.
function selectionOverlay(photo, mask) {
  const width = mask.width;
  const height = mask.height;
  const canvas = element("canvas", { width, height });
  const ctx = canvas.getContext("2d");
  ctx.drawImage(photo, 0, 0, width, height);
  const image = ctx.getImageData(0, 0, width, height);
  const scratch = element("canvas", { width, height }).getContext("2d");
  scratch.drawImage(mask, 0, 0);
  const m = scratch.getImageData(0, 0, width, height).data;
  const inside = (i) => m[4 * i] > 127;
  const mean = [0, 0, 0];
  let count = 0;
  for (let i = 0; i < width * height; i++) {
    if (!inside(i)) continue;
    for (let c = 0; c < 3; c++) mean[c] += image.data[4 * i + c];
    count++;
  }
  const average = mean.map((v) => v / Math.max(1, count));
  const tint = TINTS.reduce((a, b) => (Math.hypot(...b.map((v, c) => v - average[c])) > Math.hypot(...a.map((v, c) => v - average[c])) ? b : a));
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = y * width + x;
      if (!inside(i)) continue;
      const edge = x === 0 || y === 0 || x === width - 1 || y === height - 1 || !inside(i - 1) || !inside(i + 1) || !inside(i - width) || !inside(i + width);
      for (let c = 0; c < 3; c++) {
        const at = 4 * i + c;
        image.data[at] = edge ? ((x + y) >> 2) % 2 ? 0 : 255 : image.data[at] * 0.5 + tint[c] * 0.5;
      }
    }
  }
  ctx.putImageData(image, 0, 0);
  canvas.relightTint = tint;
  canvas.relightCount = count;
  return canvas;
}

function addSelectWidget(node) {
  const box = element("div", {
    className: "relight-select-widget",
    style: "display:flex;flex-direction:column;gap:3px;height:100%;",
  });
  const canvas = element("canvas", {
    width: 480,
    height: 360,
    title: "Left-click: on the object. Right- or shift-click: not the object. Drag: a box.",
    style: "width:100%;flex:1;min-height:0;cursor:crosshair;touch-action:none;background:#111;",
  });
  const bar = element("div", { style: BAR_STYLE });
  const clear = element("button", { textContent: "Clear" });
  const undo = element("button", { textContent: "Undo" });
  const HINT = "click: object · right/shift-click: not · drag: box";
  const hint = element("span", { className: "relight-select-hint", textContent: HINT });
  bar.append(undo, clear, hint);
  box.append(canvas, bar);
  let live = null; // the selection the route gave for the clicks now (drawn without Run)
  let asked = 0; // the newest request: an older answer is dropped
  let ranAt = 0; // when the last run's selection came: an answer asked before it is dropped
  let result = null; // the selection preview from the last run
  let photo = null; // the upstream photo, without its alpha
  let drawn = null; // the picture on the canvas now
  let dragStart = null;
  const history = []; // "point" / "box", so Undo takes back the last thing done

  const layout = (img) => {
    const scale = Math.min(canvas.width / img.naturalWidth, canvas.height / img.naturalHeight);
    const w = img.naturalWidth * scale;
    const h = img.naturalHeight * scale;
    return { scale, x: (canvas.width - w) / 2, y: (canvas.height - h) / 2, w, h };
  };
  const loaded = (image) => (image?.complete && image.naturalWidth ? image : null);
  const shown = () => live ?? loaded(result) ?? loaded(photo) ?? loaded(sourceImage(node));
  const redraw = (boxEnd) => {
    // Drawn at the size it is shown, so the photo keeps its proportions.
    const width = Math.round(canvas.clientWidth);
    const height = Math.round(canvas.clientHeight);
    if (width > 1 && height > 1 && (canvas.width !== width || canvas.height !== height)) {
      canvas.width = width;
      canvas.height = height;
    }
    const ctx = canvas.getContext("2d");
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    const img = shown();
    drawn = img;
    if (!img) {
      ctx.fillStyle = "#aaa";
      ctx.font = "14px sans-serif";
      ctx.fillText("Connect an image (e.g. Load Image) to click on it", 20, canvas.height / 2);
      return;
    }
    const at = layout(img);
    ctx.drawImage(img, at.x, at.y, at.w, at.h);
    const data = readPoints(node);
    const size = data.size ?? [img.naturalWidth, img.naturalHeight];
    const sx = at.w / size[0];
    const sy = at.h / size[1];
    if (data.box) {
      ctx.strokeStyle = "#4aa8ff";
      ctx.lineWidth = 2;
      const [x0, y0, x1, y1] = data.box;
      ctx.strokeRect(at.x + x0 * sx, at.y + y0 * sy, (x1 - x0) * sx, (y1 - y0) * sy);
    }
    if (dragStart && boxEnd) {
      ctx.strokeStyle = "#4aa8ff";
      ctx.setLineDash([4, 3]);
      ctx.strokeRect(dragStart[0], dragStart[1], boxEnd[0] - dragStart[0], boxEnd[1] - dragStart[1]);
      ctx.setLineDash([]);
    }
    data.points.forEach(([x, y, inside], index) => {
      ctx.beginPath();
      ctx.arc(at.x + x * sx, at.y + y * sy, 6, 0, 2 * Math.PI);
      ctx.fillStyle = inside ? "#3ddc5a" : "#ff4a8b";
      ctx.fill();
      ctx.strokeStyle = "#000";
      ctx.stroke();
      ctx.fillStyle = "#000";
      ctx.font = "9px sans-serif";
      ctx.fillText(String(index + 1), at.x + x * sx - 3, at.y + y * sy + 3);
    });
  };
  const toImage = (event) => {
    const rect = canvas.getBoundingClientRect();
    const cx = (event.clientX - rect.left) * (canvas.width / rect.width);
    const cy = (event.clientY - rect.top) * (canvas.height / rect.height);
    const img = drawn; // what the user sees is what is clicked
    if (!img) return null;
    const at = layout(img);
    const x = (cx - at.x) / at.scale;
    const y = (cy - at.y) / at.scale;
    const inside = x >= 0 && y >= 0 && x <= img.naturalWidth && y <= img.naturalHeight;
    return { canvas: [cx, cy], image: [round(x, 1), round(y, 1)], size: [img.naturalWidth, img.naturalHeight], inside };
  };
  const rescaled = (data, size) => {
    // Clicks made on a different-size picture (the photo, then the preview) stay in place.
    if (!data.size || (data.size[0] === size[0] && data.size[1] === size[1])) return { ...data, size };
    const sx = size[0] / data.size[0];
    const sy = size[1] / data.size[1];
    return {
      points: data.points.map(([x, y, i]) => [round(x * sx, 1), round(y * sy, 1), i]),
      box: data.box && [data.box[0] * sx, data.box[1] * sy, data.box[2] * sx, data.box[3] * sy].map((v) => round(v, 1)),
      size,
    };
  };
  // The selection for the clicks now, from the pack's route, drawn over the photo.
  const refresh = async () => {
    const ref = sourceRef(node);
    const text = widget(node, "points")?.value ?? "";
    const id = ++asked;
    if (!ref || !text || !loaded(photo)) {
      live = null;
      node.relightSelection = null;
      return redraw();
    }
    const started = performance.now();
    let response;
    try {
      response = await api.fetchApi("/relight/select", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ image: ref, points: text, painted: paintedMode(node) }),
      });
    } catch (error) {
      if (id === asked) hint.textContent = `selection: ${error}`;
      return;
    }
    if (id !== asked) return;
    if (!response.ok) {
      const answer = await response.json().catch(() => ({}));
      hint.textContent = answer.error ?? `selection: HTTP ${response.status}`;
      return;
    }
    const mask = await createImageBitmap(await response.blob());
    if (id !== asked || !loaded(photo) || ranAt > started) return;
    const overlay = selectionOverlay(photo, mask);
    overlay.naturalWidth = photo.naturalWidth; // clicks keep the photo's pixels
    overlay.naturalHeight = photo.naturalHeight;
    overlay.relightMask = mask;
    live = overlay;
    node.relightSelection = { ms: performance.now() - started, selected: overlay.relightCount, size: [mask.width, mask.height], tint: overlay.relightTint };
    if (hint.textContent !== HINT && !hint.textContent.startsWith("photo")) hint.textContent = HINT;
    redraw();
  };
  canvas.addEventListener("contextmenu", (event) => event.preventDefault());
  canvas.addEventListener("pointerdown", (event) => {
    event.preventDefault();
    event.stopPropagation();
    const at = toImage(event);
    if (!at?.inside) return;
    canvas.setPointerCapture(event.pointerId);
    dragStart = at.canvas;
    dragStart.image = at.image;
    dragStart.button = event.button;
    dragStart.shift = event.shiftKey;
  });
  canvas.addEventListener("pointermove", (event) => {
    if (dragStart && canvas.hasPointerCapture(event.pointerId)) redraw(toImage(event)?.canvas);
  });
  canvas.addEventListener("pointerup", (event) => {
    if (!dragStart) return;
    canvas.releasePointerCapture(event.pointerId);
    const at = toImage(event);
    const start = dragStart;
    dragStart = null;
    if (!at) return redraw();
    settleReplacement(...at.size);
    const data = rescaled(readPoints(node), at.size);
    const moved = Math.hypot(at.canvas[0] - start[0], at.canvas[1] - start[1]);
    if (moved > 8 && start.button === 0) {
      data.box = [start.image[0], start.image[1], at.image[0], at.image[1]];
      history.push("box");
    } else {
      const inside = start.button === 0 && !start.shift;
      data.points.push([start.image[0], start.image[1], inside ? 1 : 0]);
      history.push("point");
    }
    writePoints(node, data);
    redraw();
    refresh();
  });
  const clearAll = () => {
    writePoints(node, { points: [], box: null, size: null });
    history.length = 0;
    result = null; // no clicks: the last run's selection no longer applies
    live = null;
    refresh();
  };
  clear.addEventListener("click", clearAll);
  undo.addEventListener("click", () => {
    const data = readPoints(node);
    const last = history.pop() ?? (data.points.length ? "point" : "box");
    if (last === "box") data.box = null;
    else data.points.pop();
    if (!data.points.length && !data.box) return clearAll();
    writePoints(node, data);
    refresh();
  });

  const dom = node.addDOMWidget("click_canvas", "relight_select", box, {
    serialize: false,
    hideOnZoom: false,
    getMinHeight: () => SELECT_HEIGHT,
  });
  dom.relightRedraw = redraw;
  dom.relightPicture = () => drawn && [drawn.src, drawn.naturalWidth, drawn.naturalHeight];
  new ResizeObserver(() => redraw()).observe(canvas);
  const executed = node.onExecuted;
  node.onExecuted = function (output) {
    executed?.apply(this, arguments);
    const image = output?.relight_selection?.[0];
    if (!image) return;
    live = null; // after Run the node shows what Run made; the next click asks the route again
    ranAt = performance.now();
    result = new Image();
    result.onload = () => redraw();
    result.src = viewUrl(image);
  };
  dom.relightRefresh = refresh;
  const pointsWidget = widget(node, "points");
  if (pointsWidget) {
    const original = pointsWidget.callback;
    pointsWidget.callback = function (...args) {
      const r = original?.apply(this, args);
      redraw();
      return r;
    };
  }
  // Switching what the painted mask does redraws the selection at once (not the old one).
  const paintedWidget = widget(node, "painted");
  if (paintedWidget) {
    const original = paintedWidget.callback;
    paintedWidget.callback = function (...args) {
      const r = original?.apply(this, args);
      result = null;
      refresh();
      return r;
    };
  }
  // The source image loads (or changes) after the node is made: redraw while it is not shown.
  // A new picture upstream drops the old selection's; the clicks stay when it has the same size
  // (the MaskEditor's save of the same photo) and go when it does not (another photo).
  let sourceSrc = null;
  let replacement = null; // a new picture whose clicks are not yet checked against its size
  // Checked when its copy has loaded, or at a click on it before that (the canvas shows the
  // source picture meanwhile): a click must not rescale another photo's clicks onto it.
  const settleReplacement = (width, height) => {
    if (!replacement) return;
    const { anotherFile } = replacement;
    replacement = null;
    const size = readPoints(node).size;
    if (size && (size[0] !== width || size[1] !== height)) {
      clearAll();
      hint.textContent = "photo changed (another size): clicks cleared";
    } else if (anotherFile && size) {
      hint.textContent = "photo changed (same size): clicks kept";
    }
  };
  const timer = setInterval(() => {
    const source = sourceImage(node);
    if (source && source.src !== sourceSrc) {
      const replaced = sourceSrc !== null;
      // Said only for another file, not the same one shown again (its URL changes as it loads).
      const anotherFile =
        replaced && JSON.stringify(viewRef(source.src)) !== JSON.stringify(viewRef(sourceSrc));
      sourceSrc = source.src;
      photo = withoutAlpha(source.src);
      photo.onload = () => {
        settleReplacement(photo.naturalWidth, photo.naturalHeight);
        refresh();
      };
      if (replaced) {
        replacement = { anotherFile };
        result = null;
        live = null;
      }
    }
    if (shown() !== drawn) redraw(); // a picture arrived or changed since the last draw
  }, 500);
  const removed = node.onRemoved;
  node.onRemoved = function (...args) {
    clearInterval(timer);
    return removed?.apply(this, args);
  };
  const connections = node.onConnectionsChange;
  node.onConnectionsChange = function (...args) {
    const r = connections?.apply(this, args);
    result = null; // the next tick draws whatever is connected now
    live = null;
    if (loaded(photo)) refresh();
    return r;
  };
}

app.registerExtension({
  name: "relight_inpaint.widgets",
  async setup() {
    api.addEventListener("executed", showShadingAfterRun);
  },
  async nodeCreated(node) {
    if (node.comfyClass === "LightDirectionEncode") addLightWidget(node);
    if (node.comfyClass === "SelectByClicks") addSelectWidget(node);
  },
});
