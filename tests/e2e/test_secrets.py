"""The key never reaches output or files, even when a hostile server echoes it back."""

from __future__ import annotations

import base64
import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from reconciler.redact import Redactor
from tests.e2e.harness import KEY, THREAD_A, Workspace

pytestmark = pytest.mark.e2e

MANIFEST = f"""\
    apiVersion: reconciler/v1
    kind: Runs
    runs:
      - name: echoed
        thread_id: {THREAD_A}
        assistant_id: asst_demo
"""

B64 = base64.b64encode(KEY.encode()).decode()
B64_BEARER = base64.b64encode(f"Bearer {KEY}".encode()).decode()


class _Echo(BaseHTTPRequestHandler):
    """Lists no runs; answers every create with a 400 that quotes the Authorization header."""

    def log_message(self, *args: Any) -> None:
        return None

    def _json(self, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.send_header("x-request-id", "req_echo")
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self._json(200, {"object": "list", "data": [], "first_id": None, "last_id": None,
                         "has_more": False})

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        self.rfile.read(length)
        header = self.headers.get("authorization", "")
        token = header.removeprefix("Bearer ")
        self._json(400, {"error": {
            "message": f"Invalid header {header!r}; key {token}; as base64 "
                       f"{base64.b64encode(token.encode()).decode()} and "
                       f"{base64.b64encode(header.encode()).decode()}",
            "type": "invalid_request_error", "param": None, "code": None}})


@pytest.fixture
def echo_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base_url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    monkeypatch.setenv("OPENAI_BASE_URL", base_url)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    try:
        yield base_url
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def leaks(text: str) -> list[str]:
    return [form for form in (KEY, B64, B64_BEARER, B64.rstrip("=")) if form in text]


def test_a_server_echoing_the_key_in_an_error_never_gets_it_printed(
    echo_server: str, ws: Workspace, tmp_path: Path,
) -> None:
    ws.write("runs.yaml", MANIFEST)
    applied = ws.cli("apply", ws.path, "--auto-approve")
    assert applied.code == 1
    assert "Invalid header" in applied.out  # the progress line shows the server's words…
    assert leaks(applied.out + applied.err) == []  # …without the key in any form
    assert "***" in applied.out

    debug = ws.cli("--debug", "apply", ws.path, "--auto-approve")
    assert debug.code == 1 and leaks(debug.out + debug.err) == []

    planfile = tmp_path / "p.json"
    planned = ws.cli("plan", ws.path, "--out", str(planfile), "--format", "json")
    assert planned.code == 0
    assert leaks(planned.out + planned.err + planfile.read_text()) == []


def test_the_redactor_masks_every_form_of_every_secret() -> None:
    url_password = "s3cr3t/pass"
    redactor = Redactor.from_env({
        "OPENAI_API_KEY": KEY,
        "AZURE_OPENAI_API_KEY": "azure-key-123456",
        "RECONCILER_LOCK_URL": "postgresql://ci:s3cr3t%2Fpass@db/locks",
    })
    text = " ".join([KEY, B64, B64_BEARER, "azure-key-123456", url_password, "s3cr3t%2Fpass",
                     base64.urlsafe_b64encode(KEY.encode()).decode()])
    # base64 padding may stay behind the mask: it says nothing of the secret
    assert {t.rstrip("=") for t in re.split(r"\s+", redactor.redact(text))} == {"***"}
    assert Redactor.from_env({}).redact("short words stay") == "short words stay"
