"""The pack's side of the host protocol, without a server."""

import uuid

import pytest

from relight_inpaint.host import comfy_server


def is_canonical_uuid(text: str) -> bool:
    return str(uuid.UUID(text)) == text


def test_new_ids_are_canonical_hyphenated_uuids():
    """ComfyUI 0.33 refuses a prompt_id such as uuid4().hex (no hyphens)."""
    assert all(is_canonical_uuid(comfy_server.new_id()) for _ in range(20))


def test_run_prompt_sends_canonical_prompt_and_client_ids(monkeypatch: pytest.MonkeyPatch):
    sent = {}

    class Session:
        def post(self, url, json, timeout):
            sent.update(json)
            raise RuntimeError("stop here")

    monkeypatch.setattr(comfy_server, "_session", Session)

    def watch(url, prompt_id, client_id, on_progress, timeout, submit):
        submit()

    monkeypatch.setattr(comfy_server, "_watch_until_done", watch)
    with pytest.raises(RuntimeError, match="stop here"):
        comfy_server.run_prompt("http://127.0.0.1:1", {"1": {}})
    assert is_canonical_uuid(sent["prompt_id"]) and is_canonical_uuid(sent["client_id"])
