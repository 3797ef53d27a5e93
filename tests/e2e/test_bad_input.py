"""Bad input of every kind gets a located error and exit 1: never a traceback."""

from __future__ import annotations

import pytest

from tests.e2e.harness import Workspace

pytestmark = pytest.mark.e2e

YAML_BOMB = """\
apiVersion: reconciler/v1
kind: Runs
a: &a ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]
g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]
h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g, *g]
i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h, *h]
runs: *i
"""

CASES: dict[str, bytes] = {
    "bomb.yaml": YAML_BOMB.encode(),
    "binary.yaml": bytes(range(256)) * 64,
    "latin1.yaml": "name: caf\xe9\n".encode("latin-1"),
    "syntax.yaml": b"apiVersion: reconciler/v1\nkind: Runs\nruns: [\n  - name: x\n",
    "scalar.yaml": b"just a string\n",
    "list.yaml": b"- 1\n- 2\n",
    "dupkeys.yaml": b"apiVersion: reconciler/v1\napiVersion: reconciler/v1\nkind: Runs\nruns: []\n",
    "deep.yaml": b"runs: " + b"[" * 5000 + b"]" * 5000 + b"\n",
    "tabs.yaml": b"runs:\n\t- name: x\n",
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_hostile_file_is_refused_quickly_with_a_location(ws: Workspace, name: str) -> None:
    (ws.root / name).write_bytes(CASES[name])
    result = ws.cli("validate", str(ws.root / name))
    assert result.code == 1
    assert "Traceback" not in result.err
    assert f"{name}:" in result.err, result.err


def test_huge_file_is_refused_without_reading_it(ws: Workspace) -> None:
    huge = ws.root / "huge.yaml"
    with huge.open("wb") as handle:
        handle.seek(64 * 1024 * 1024)
        handle.write(b"\n")
    result = ws.cli("validate", str(huge))
    assert result.code == 1
    assert "huge.yaml" in result.err and "Traceback" not in result.err


def test_missing_path_and_empty_directory(ws: Workspace) -> None:
    result = ws.cli("validate", str(ws.root / "nope.yaml"))
    assert result.code == 1 and "nope.yaml" in result.err
    empty = ws.root / "empty"
    empty.mkdir()
    result = ws.cli("validate", str(empty))
    assert result.code == 1 and "empty" in result.err


def test_every_problem_is_reported_at_once(ws: Workspace) -> None:
    ws.write("runs.yaml", """\
        apiVersion: reconciler/v1
        kind: Runs
        runs:
          - name: one
            thread_id: thread_a
            assistant_id: asst_a
            temprature: 1
            top_p: 3
          - name: one
            thread_id: thread_a
            assistant_id: asst_a
            metadata: {reconciler.name: mine}
    """)
    result = ws.cli("validate", ws.path)
    assert result.code == 1
    lines = [line for line in result.err.splitlines() if line.startswith(str(ws.root))]
    assert len(lines) >= 4, result.err
    assert any(":7:" in line and "temperature" in line for line in lines)  # did you mean
    assert any(":8:" in line and "top_p" in line for line in lines)
    assert any("one" in line and "already used" in line for line in lines)
    assert any("reconciler." in line for line in lines)


def test_bad_flag_values_are_clear(ws: Workspace) -> None:
    for args in (("apply", ".", "--timeout", "-1"), ("plan", ".", "--concurrency", "0"),
                 ("emulator", "serve", "--latency", "fast"),
                 ("emulator", "serve", "--faults", "500=2"),
                 ("emulator", "serve", "--rate-limit", "lots")):
        result = ws.cli(*args)
        assert result.code == 1, args
        assert result.err.startswith("Error:"), (args, result.err)
        assert "Traceback" not in result.err
