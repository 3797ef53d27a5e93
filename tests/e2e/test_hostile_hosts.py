"""The whole command against hosts that are slow, wrong or hostile: each case ends in exit 1
with one clear sentence on stderr, no traceback, and no key in any output or written file.

The client's own tests (tests/client/test_hostile.py) cover each bound in detail; these run
``reconciler`` as a user would and look at what reaches the terminal.
"""

from __future__ import annotations

import base64
import json
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import trustme

from tests.client.stubs import Reply, StubRequest, StubServer
from tests.e2e.harness import KEY, THREAD_A, Workspace

pytestmark = pytest.mark.e2e

MANIFEST = f"""\
    apiVersion: reconciler/v1
    kind: Runs
    runs:
      - name: hostile
        thread_id: {THREAD_A}
        assistant_id: asst_demo
"""

Handler = Callable[[StubRequest, Reply], None]


def listing(data: list[Any], **extra: Any) -> dict[str, Any]:
    return {"object": "list", "data": data, "first_id": None, "last_id": None,
            "has_more": False, **extra}


def run_object(run_id: str, **fields: Any) -> dict[str, Any]:
    return {"id": run_id, "object": "thread.run", "created_at": 1_764_000_000,
            "thread_id": THREAD_A, "assistant_id": "asst_demo", "status": "completed",
            "metadata": {}, **fields}


def cycling(request: StubRequest, reply: Reply) -> None:
    """Cursors A, B, A, … forever."""
    after = request.query.get("after")
    nxt = "run_b" if after == "run_a" else "run_a"
    reply.json(200, listing([run_object(nxt)], has_more=True, last_id=nxt))


def fresh_cursor_every_page(request: StubRequest, reply: Reply) -> None:
    page = int((request.query.get("after") or "run_0").removeprefix("run_"))
    reply.json(200, listing([run_object(f"run_{page + 1}")], has_more=True))


def frozen(request: StubRequest, reply: Reply) -> None:
    reply.json(200, listing([run_object("run_f", status="frozen_by_admin")]))


def junk_items(request: StubRequest, reply: Reply) -> None:
    reply.json(200, listing(["run_1", 7]))


def fastapi_403(request: StubRequest, reply: Reply) -> None:
    reply.json(403, {"detail": "\x1b[31mForbidden\x1b[0m by\npolicy\r\n"})


def html_400(request: StubRequest, reply: Reply) -> None:
    page = b"<html>\n<head><title>400 Bad Request</title></head>\n<body>\n<h1>oops</h1>\n" \
           b"<p>nginx</p>\n</body>\n</html>\n"
    reply.send(400, page, {"Content-Type": "text/html"})


def deep(request: StubRequest, reply: Reply) -> None:
    reply.send(200, b"[" * 5000 + b"]" * 5000, {"Content-Type": "application/json"})


def wait_forever(request: StubRequest, reply: Reply) -> None:
    reply.json(429, {"error": {"message": "slow down", "type": "requests", "param": None,
                               "code": "rate_limit_exceeded"}}, {"retry-after": "99999"})


def echo_key(request: StubRequest, reply: Reply) -> None:
    header = request.headers.get("authorization", "")
    reply.json(401, {"error": {"message": f"bad key {header} "
                               f"{base64.b64encode(header.encode()).decode()}",
                               "type": "invalid_request_error", "param": None, "code": None}})


CASES: dict[str, tuple[Handler, str]] = {
    "cycling cursors": (cycling, "lists run run_a twice"),
    "a new cursor on every page": (fresh_cursor_every_page, "past 1000 pages"),
    "an unknown status": (frozen, "with status 'frozen_by_admin', which Assistants v2 does not "
                                  "define"),
    "non-object items": (junk_items, "an item that is not an object"),
    "a FastAPI error body": (fastapi_403, "Forbidden by policy (HTTP 403 from 127.0.0.1"),
    "an HTML error page": (html_400, "400 Bad Request (HTTP 400 from 127.0.0.1"),
    "JSON nested 5000 deep": (deep, "nests deeper than 128 levels"),
    "a retry-after of a day": (wait_forever, "asked to wait 99999 s before retrying"),
    "the key echoed back": (echo_key, "bad key Bearer ***"),
}


def secret_forms() -> list[str]:
    return [KEY, base64.b64encode(KEY.encode()).decode().rstrip("="),
            base64.b64encode(f"Bearer {KEY}".encode()).decode().rstrip("=")]


def assert_one_clear_line(code: int, out: str, err: str) -> str:
    assert code == 1, out + err
    assert "Traceback" not in out + err and "internal error" not in err
    assert "\x1b" not in out + err  # no escape sequence from a server reaches the terminal
    assert [form for form in secret_forms() if form in out + err] == []
    lines = [line for line in err.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("Error: ")]
    assert len(errors) == 1, err
    return errors[0]


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_hostile_host_ends_in_one_sentence(
    case: str, ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    handler, expected = CASES[case]
    ws.write("runs.yaml", MANIFEST)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    with StubServer(handler) as stub:
        monkeypatch.setenv("OPENAI_BASE_URL", stub.base_url)
        result = ws.cli("plan", ws.path)
    line = assert_one_clear_line(result.code, result.out, result.err)
    assert expected in line, line
    assert line.count("(HTTP") <= 1  # the status said once


def test_created_at_in_milliseconds_is_exported_raw(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def milliseconds(request: StubRequest, reply: Reply) -> None:
        reply.json(200, listing([run_object("run_ms", created_at=1_796_158_345_908)]))

    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    with StubServer(milliseconds) as stub:
        monkeypatch.setenv("OPENAI_BASE_URL", stub.base_url)
        out = tmp_path / "exported.yaml"
        result = ws.cli("export", "--thread", THREAD_A, "--project", "e2e", "--out", str(out))
    assert result.code == 0, result.err
    assert "created_at 1796158345908 (not a Unix time in seconds)" in out.read_text()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://[::1", "is not a valid URL"),
        ("ftp://files.example.com/v1", "must start with http:// or https://"),
        ("http://api.example.com/v1", "refusing to send the API key over plain http to "
                                      "api.example.com"),
        ("https:///v1", "has no host"),
    ],
)
def test_a_bad_base_url_is_one_sentence_before_any_request(
    url: str, expected: str, ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws.write("runs.yaml", MANIFEST)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    result = ws.cli("plan", ws.path, "--base-url", url)
    assert expected in assert_one_clear_line(result.code, result.out, result.err)


def test_a_base_url_without_v1_is_hinted(ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    def not_found(request: StubRequest, reply: Reply) -> None:
        reply.json(404, {"error": {"message": "Invalid URL", "type": "invalid_request_error",
                                   "param": None, "code": None}})

    ws.write("runs.yaml", MANIFEST)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    with StubServer(not_found) as stub:
        result = ws.cli("plan", ws.path, "--base-url", stub.base_url.removesuffix("/v1"))
    line = assert_one_clear_line(result.code, result.out, result.err)
    assert "the base URL has no /v1: did you mean" in line


@pytest.mark.parametrize("scheme", ["HTTPS", "Https"])
def test_tls_is_verified_for_an_upper_case_scheme_and_a_private_ca_is_honoured(
    scheme: str, ws: Workspace, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    ca = trustme.CA()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))

    def empty(request: StubRequest, reply: Reply) -> None:
        reply.json(200, listing([]))

    ws.write("runs.yaml", MANIFEST)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    with StubServer(empty, tls=context) as stub:
        url = f"{scheme}://127.0.0.1:{stub.port}/v1"
        refused = ws.cli("plan", ws.path, "--base-url", url)
        assert stub.requests == []  # the key never reached the self-signed host
        line = assert_one_clear_line(refused.code, refused.out, refused.err)
        assert "TLS certificate verification failed" in line and "--ca-bundle" in line
        trusted = ws.cli("plan", ws.path, "--base-url", url, "--ca-bundle", str(ca_file))
    assert trusted.code == 0, trusted.err
    assert "1 to create" in trusted.out
    assert [r.headers["authorization"] for r in stub.requests] == [f"Bearer {KEY}"]


def test_plan_files_and_outputs_of_failures_never_hold_the_key(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A grep of everything a failing run printed or wrote, for the key and its base64."""
    ws.write("runs.yaml", MANIFEST)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    with StubServer(echo_key) as stub:
        monkeypatch.setenv("OPENAI_BASE_URL", stub.base_url)
        outputs = [ws.cli(*args) for args in (
            ("plan", ws.path, "--out", str(tmp_path / "p.json")),
            ("--debug", "plan", ws.path),
            ("apply", ws.path, "--auto-approve"),
            ("export", "--thread", THREAD_A, "--project", "e2e"),
            ("query", f"SELECT id FROM openai.assistants.runs WHERE thread_id = '{THREAD_A}'"),
        )]
    written = "".join(p.read_text(errors="replace") for p in tmp_path.rglob("*") if p.is_file())
    everything = written + "".join(r.out + r.err for r in outputs)
    assert all(r.code == 1 for r in outputs), [r.err for r in outputs]
    assert [form for form in secret_forms() if form in everything] == []
    assert json.dumps(KEY) not in everything
