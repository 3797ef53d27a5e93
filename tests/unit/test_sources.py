"""Reading manifests from the command line's paths: expansion, limits, binary junk."""

from __future__ import annotations

import os
from pathlib import Path

from reconciler.manifest import MAX_FILE_BYTES, read_sources
from reconciler.model import SourceLocation


def write(path: Path, text: str = "a: 1\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, "utf-8")
    return path


def test_a_directory_gives_its_yaml_files_recursively_sorted(tmp_path: Path) -> None:
    write(tmp_path / "b.yaml")
    write(tmp_path / "a.yml")
    write(tmp_path / "sub" / "deeper" / "c.yaml")
    write(tmp_path / "sub" / "notes.txt")
    write(tmp_path / ".hidden" / "x.yaml")
    write(tmp_path / ".dot.yaml")
    sources, problems = read_sources([str(tmp_path)])
    assert problems == []
    names = [os.path.relpath(name, tmp_path) for name, _ in sources]
    assert names == ["a.yml", "b.yaml", os.path.join("sub", "deeper", "c.yaml")]


def test_a_file_is_read_whatever_its_name_and_only_once(tmp_path: Path) -> None:
    file = write(tmp_path / "runs.txt", "kind: Runs\n")
    sources, problems = read_sources([str(file), str(file)])
    assert problems == []
    assert sources == [(str(file), "kind: Runs\n")]


def test_missing_path_and_empty_directory_are_problems(tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.yaml")
    empty = tmp_path / "empty"
    empty.mkdir()
    write(empty / "readme.md")
    sources, problems = read_sources([missing, str(empty)])
    assert sources == []
    assert [p.location for p in problems] == [
        SourceLocation(missing, 0, 0),
        SourceLocation(str(empty), 0, 0),
    ]
    assert str(problems[0]) == f"{missing}: no such file or directory"
    assert "no manifests" in problems[1].message


def test_huge_file_is_refused_without_reading_it(tmp_path: Path) -> None:
    huge = tmp_path / "huge.yaml"
    with open(huge, "wb") as handle:
        handle.truncate(MAX_FILE_BYTES + 1)  # sparse: costs no disk and no time
    sources, problems = read_sources([str(huge)])
    assert sources == []
    (problem,) = problems
    assert problem.location == SourceLocation(str(huge), 0, 0)
    assert "larger than 8 MiB" in problem.message


def test_a_file_at_the_limit_is_read(tmp_path: Path) -> None:
    file = tmp_path / "edge.yaml"
    file.write_bytes(b"#" * (MAX_FILE_BYTES - 1) + b"\n")
    sources, problems = read_sources([str(file)])
    assert problems == []
    assert len(sources[0][1]) == MAX_FILE_BYTES


def test_binary_file_is_refused_at_the_first_nul(tmp_path: Path) -> None:
    file = tmp_path / "junk.yaml"
    file.write_bytes(b"a: 1\nb: \xc3\xa9x\x00\xff\xfe" + os.urandom(4096))
    sources, problems = read_sources([str(file)])
    assert sources == []
    (problem,) = problems
    assert problem.location == SourceLocation(str(file), 2, 6)  # "b: éx" is 5 characters
    assert "binary" in problem.message


def test_invalid_utf8_is_located(tmp_path: Path) -> None:
    file = tmp_path / "latin1.yaml"
    file.write_bytes(b"kind: Runs\nname: caf\xe9\n")
    sources, problems = read_sources([str(file)])
    assert sources == []
    (problem,) = problems
    assert problem.location == SourceLocation(str(file), 2, 10)
    assert "UTF-8" in problem.message and "0xe9" in problem.message


def test_a_byte_order_mark_is_dropped(tmp_path: Path) -> None:
    file = tmp_path / "bom.yaml"
    file.write_bytes(b"\xef\xbb\xbfkind: Runs\n")
    sources, _ = read_sources([str(file)])
    assert sources[0][1] == "kind: Runs\n"


def test_a_pipe_is_refused_without_blocking(tmp_path: Path) -> None:
    pipe = tmp_path / "pipe.yaml"
    os.mkfifo(pipe)
    sources, problems = read_sources([str(pipe)])
    assert sources == []
    (problem,) = problems
    assert "not a regular file" in problem.message


def test_good_files_are_read_even_when_others_fail(tmp_path: Path) -> None:
    good = write(tmp_path / "good.yaml")
    sources, problems = read_sources([str(tmp_path / "missing"), str(good)])
    assert [name for name, _ in sources] == [str(good)]
    assert len(problems) == 1
