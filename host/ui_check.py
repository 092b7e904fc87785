"""Open a UI workflow in ComfyUI's real web page (headless Chromium) and screenshot it.

A developer check, not a test (CI has no browser): it loads each workflows/*.json through the
frontend's own `app.loadGraphData`, reports nodes the page could not create and widget values it
did not take, and writes out/ui/<name>.png. Needs Debian's chromium.

  .venv/bin/python -m host.ui_check
"""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import tempfile
import time
from pathlib import Path

import aiohttp
import requests

from .comfy_server import free_port, start_server

REPO = Path(__file__).resolve().parents[1]
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1600,1000",
]
# What the page made of the workflow: node types it could not create, and each node's widgets.
INSPECT = """(() => {
  const app = window.comfyAPI.app.app;
  const nodes = app.graph._nodes.map(n => ({
    type: n.type, registered: !!(window.LiteGraph?.registered_node_types?.[n.type]),
    widgets: (n.widgets || []).map(w => [w.name, w.value]) }));
  return JSON.stringify(nodes);
})()"""


async def cdp(websocket, message_id: int, method: str, **params) -> dict:
    await websocket.send_json({"id": message_id, "method": method, "params": params})
    while True:
        reply = await websocket.receive_json()
        if reply.get("id") == message_id:
            return reply.get("result", {})


async def check(url: str, debug_port: int, workflows: list[Path], out_dir: Path) -> None:
    async with aiohttp.ClientSession() as session:
        targets = await (await session.get(f"http://127.0.0.1:{debug_port}/json")).json()
        page = next(t for t in targets if t["type"] == "page")
        async with session.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=0) as ws:
            await cdp(ws, 1, "Page.enable")
            await cdp(ws, 2, "Page.navigate", url=url)
            await asyncio.sleep(15)  # the frontend loads its extensions and /object_info
            for index, path in enumerate(workflows):
                graph = json.dumps(json.loads(path.read_text()))
                expression = f"window.comfyAPI.app.app.loadGraphData({graph}); 'ok'"
                await cdp(ws, 10 + 3 * index, "Runtime.evaluate", expression=expression)
                await asyncio.sleep(3)
                result = await cdp(ws, 11 + 3 * index, "Runtime.evaluate", expression=INSPECT)
                nodes = json.loads(result["result"]["value"])
                shot = await cdp(ws, 12 + 3 * index, "Page.captureScreenshot", format="png")
                target = out_dir / f"{path.stem}.png"
                target.write_bytes(base64.b64decode(shot["data"]))
                print(f"{path.name}: {len(nodes)} nodes, screenshot {target}")
                for node in nodes:
                    known = "" if node["registered"] else "  NOT REGISTERED"
                    print(f"  {node['type']}{known}: {node['widgets']}")


def main() -> None:
    out_dir = REPO / "out" / "ui"
    out_dir.mkdir(parents=True, exist_ok=True)
    workflows = sorted((REPO / "workflows").glob("*.json"))
    with start_server() as server, tempfile.TemporaryDirectory() as profile:
        requests.post(f"{server.url}/settings/Comfy.TutorialCompleted", json=True, timeout=10)
        port = free_port()
        browser = subprocess.Popen(
            [
                "chromium",
                *CHROMIUM_FLAGS,
                f"--user-data-dir={profile}",
                f"--remote-debugging-port={port}",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            time.sleep(3)  # the browser opens its debugging port
            asyncio.run(check(server.url, port, workflows, out_dir))
        finally:
            browser.terminate()
            browser.wait(timeout=10)


if __name__ == "__main__":
    main()
