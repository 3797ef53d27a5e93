"""The real CLI against a second, independent Assistants v2 server: Myla (PyPI ``myla``).

Myla ("MY Local Assistants") is a self-hosted re-implementation of the Assistants API. It is
not installed with this project; the test is defined only when
``RECONCILER_THIRD_PARTY_SERVER`` names its ``myla`` executable, installed in a venv of its
own, e.g.::

    python3 -m venv /tmp/thirdparty
    /tmp/thirdparty/bin/pip install --no-deps myla==0.2.40
    /tmp/thirdparty/bin/pip install uvicorn starlette fastapi python-dotenv jinja2 aiohttp \\
        sqlmodel openai python-multipart pandas aiofiles Authlib itsdangerous
    RECONCILER_THIRD_PARTY_SERVER=/tmp/thirdparty/bin/myla pytest -s \\
        tests/e2e/test_third_party_server.py

(``--no-deps`` leaves out sentence-transformers and faiss-cpu, which only its retrieval
tool needs.) Myla serves the API under ``/api/v1`` and wants a key that its own login hands
out (user ``admin``/``admin`` is made on first start). Its runs call an LLM through an
OpenAI-compatible endpoint; the test points that at a loopback socket that never answers,
so every run stays ``in_progress``, as a run does on a host without a model.

Each step either works or fails cleanly: exit code 0 or 1, no traceback, and on a failure
one sentence that names what the server did. The steps' outcomes are printed as a report
(``-s`` shows it) and recorded as properties of the test.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

SERVER_ENV = "RECONCILER_THIRD_PARTY_SERVER"
PROJECT = "thirdparty"
START_SECONDS = 60.0
STEP_SECONDS = 90.0


@dataclass
class Step:
    """One CLI command's outcome."""

    name: str
    args: tuple[str, ...]
    code: int
    out: str
    err: str

    @property
    def sentence(self) -> str:
        """The lines that say what failed: per-action failures, then the closing error."""
        failed = [line.strip() for line in self.out.splitlines() if " failed: " in line]
        errors = [line.strip() for line in self.err.splitlines() if line.strip()]
        return " | ".join(failed + errors)

    @property
    def text(self) -> str:
        return (f"$ reconciler {' '.join(self.args)}\n[exit {self.code}]\n"
                f"--- stdout\n{self.out}--- stderr\n{self.err}")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextlib.contextmanager
def _silent_llm() -> Iterator[str]:
    """An OpenAI-compatible base URL on loopback that accepts connections and never answers."""
    sink = socket.socket()
    sink.bind(("127.0.0.1", 0))
    sink.listen(64)
    try:
        yield f"http://127.0.0.1:{sink.getsockname()[1]}/v1"
    finally:
        sink.close()


@contextlib.contextmanager
def _myla(executable: str, root: Path, llm_url: str) -> Iterator[str]:
    """Start Myla on a free loopback port; yield its API base URL (``…/api/v1``)."""
    port = _free_port()
    root.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "LLM_"))}
    env.update(
        DATABASE_URL=f"sqlite:///{root / 'myla.db'}",
        LLM_ENDPOINT=llm_url,
        LLM_API_KEY="unused",
        LLM_HTTP_TIMEOUT="3600",
        DEFAULT_LLM_MODEL_NAME="no-model",
    )
    log = (root / "myla.log").open("w")
    proc = subprocess.Popen(
        [executable, "--host", "127.0.0.1", "--port", str(port), "--data", str(root / "data"),
         "--env-file", str(root / "absent.env")],
        cwd=root, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
    )
    origin = f"http://127.0.0.1:{port}"
    base = f"{origin}/api/v1"
    try:
        deadline = time.monotonic() + START_SECONDS
        while True:
            if proc.poll() is not None:
                pytest.fail(f"{executable} exited with {proc.returncode} before serving: "
                            f"{(root / 'myla.log').read_text()[-2000:]}")
            with contextlib.suppress(httpx.TransportError):
                httpx.get(f"{origin}/api/version", timeout=2.0)
                break
            if time.monotonic() > deadline:
                pytest.fail(f"{executable} did not answer on {base} within {START_SECONDS:.0f} s")
            time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.close()


class MylaApi:
    """Direct calls to the server, to set up what reconciler cannot make and to check it."""

    def __init__(self, base: str) -> None:
        login = httpx.post(f"{base}/users/admin/login",
                           json={"username": "admin", "password": "admin"}, timeout=10.0)
        assert login.status_code == 200, login.text
        self.key: str = login.json()["secret_key"]["id"]
        self.http = httpx.Client(base_url=base + "/", timeout=10.0, headers={
            "Authorization": f"Bearer {self.key}", "OpenAI-Beta": "assistants=v2"})

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self.http.post(path, json=body)
        assert response.status_code == 200, f"POST {path}: {response.status_code} {response.text}"
        result: dict[str, Any] = response.json()
        return result

    def runs(self, thread_id: str) -> list[dict[str, Any]]:
        response = self.http.get(f"threads/{thread_id}/runs", params={"limit": 100})
        assert response.status_code == 200, response.text
        data: list[dict[str, Any]] = response.json()["data"]
        return data


def _cli(root: Path, base: str, key: str, name: str, *args: str) -> Step:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("OPENAI_") and k != "RECONCILER_LOCK_URL"}
    env.update(OPENAI_BASE_URL=base, OPENAI_API_KEY=key, NO_COLOR="1")
    done = subprocess.run(
        [sys.executable, "-m", "reconciler", *args], cwd=root, env=env,
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=STEP_SECONDS,
    )
    step = Step(name, args, done.returncode, done.stdout, done.stderr)
    assert key not in step.out + step.err, f"{name}: the API key was printed"
    assert "Traceback" not in step.out + step.err, f"{name}: traceback\n{step.text}"
    assert step.code in (0, 1), f"{name}: exit code {step.code}\n{step.text}"
    if step.code == 1:
        assert step.sentence, f"{name}: exit 1 without saying why\n{step.text}"
        assert len(step.sentence) < 600, f"{name}: the error is not one clear sentence\n{step.text}"
    return step


def _manifest(thread_id: str, assistant_id: str, team: str, state: str = "active") -> str:
    return (
        "apiVersion: reconciler/v1\n"
        "kind: Runs\n"
        "defaults:\n"
        f"  thread_id: {thread_id}\n"
        f"  assistant_id: {assistant_id}\n"
        "runs:\n"
        "  - name: smoke\n"
        "    instructions: Say hello.\n"
        f"    metadata: {{team: {team}}}\n"
        f"    state: {state}\n"
    )


def _report(steps: list[Step]) -> str:
    lines = ["reconciler against Myla, step by step:"]
    for step in steps:
        verdict = "works" if step.code == 0 else f"fails: {step.sentence}"
        lines.append(f"  {step.name:<8} exit {step.code}  {verdict}")
    return "\n".join(lines)


if os.environ.get(SERVER_ENV):

    @pytest.mark.e2e
    @pytest.mark.timeout(600)
    def test_reconciler_against_myla(
        tmp_path: Path, record_property: Any
    ) -> None:
        executable = os.environ[SERVER_ENV]
        work = tmp_path / "ws"
        work.mkdir()
        (work / "reconciler.toml").write_text(f'project = "{PROJECT}"\n')
        runs_yaml = work / "runs.yaml"
        steps: list[Step] = []

        with _silent_llm() as llm_url, _myla(executable, tmp_path / "myla", llm_url) as base:
            api = MylaApi(base)
            assistant = api.post("assistants", {"model": "no-model", "name": "reconciler-e2e"})
            thread = api.post("threads", {})
            thread_id, assistant_id = thread["id"], assistant["id"]

            def cli(name: str, *args: str) -> Step:
                step = _cli(work, base, api.key, name, *args)
                steps.append(step)
                print(f"\n===== {name}\n{step.text}")
                record_property(name, f"exit {step.code}: {step.sentence or 'ok'}")
                return step

            try:
                runs_yaml.write_text(_manifest(thread_id, assistant_id, "qa"))
                plan = cli("plan", "plan", "runs.yaml")
                if plan.code == 0:
                    assert "1 to create" in plan.out, plan.text

                apply = cli("apply", "apply", "runs.yaml", "--auto-approve")
                ours = [r for r in api.runs(thread_id)
                        if (r.get("metadata") or {}).get("reconciler.name") == "smoke"]
                if apply.code == 0:
                    assert len(ours) == 1, f"apply said it worked, the server holds {ours}"
                    assert ours[0]["metadata"]["reconciler.project"] == PROJECT
                    assert ours[0]["metadata"]["team"] == "qa"
                assert len(ours) <= 1, f"duplicate runs: {ours}"

                replan = cli("replan", "plan", "runs.yaml")
                if apply.code == 0:
                    assert replan.code == 0 and "No changes" in replan.out, replan.text

                runs_yaml.write_text(_manifest(thread_id, assistant_id, "ops"))
                modify = cli("modify", "apply", "runs.yaml", "--auto-approve")
                if modify.code == 0:
                    assert "1 to modify" in modify.out, modify.text
                    live = [r for r in api.runs(thread_id)
                            if (r.get("metadata") or {}).get("reconciler.name") == "smoke"]
                    assert [r["metadata"]["team"] for r in live] == ["ops"], live

                runs_yaml.write_text(_manifest(thread_id, assistant_id, "ops", "cancelled"))
                cancel = cli("cancel", "apply", "runs.yaml", "--auto-approve")
                if cancel.code == 0:
                    live = [r for r in api.runs(thread_id)
                            if (r.get("metadata") or {}).get("reconciler.name") == "smoke"]
                    assert [r["status"] for r in live] in (["cancelling"], ["cancelled"]), live

                export = cli("export", "export", "--thread", thread_id)
                if export.code == 0:
                    assert f"thread_id: {thread_id}" in export.out, export.text
                    assert "name: smoke" in export.out, export.text

                query = cli("query", "query", "SELECT id, status FROM openai.assistants.runs "
                            f"WHERE thread_id = '{thread_id}'")
                if query.code == 0:
                    assert re.search(r"\brun_\w+\b", query.out), query.text
                    for run in api.runs(thread_id):
                        assert run["id"] in query.out and run["status"] in query.out, query.text
            finally:
                print("\n" + _report(steps))
