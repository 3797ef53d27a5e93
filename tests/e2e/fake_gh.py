"""A stand-in for the GitHub CLI (``gh``) in the workflow test, run as ``gh`` on the PATH.

It answers the few calls the example workflow makes from a JSON file (``FAKE_GH_WORLD``):
pull requests, workflow runs with their artifacts, and the comments posted. Like the real
one it needs ``GH_TOKEN`` and, outside a git checkout with a remote, ``--repo``; ``--jq`` is
evaluated by the real ``jq``, as close as this machine gets to gh's built-in jq.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

WORLD_ENV = "FAKE_GH_WORLD"
COMMIT_PULLS = re.compile(r"repos/(?P<repo>[^/]+/[^/]+)/commits/(?P<sha>[0-9a-f]+)/pulls")


def fail(message: str, code: int = 1) -> int:
    print(message, file=sys.stderr)
    return code


def emit(value: Any, jq: str | None) -> int:
    """Print ``value`` as gh does: JSON, or the ``--jq`` result with strings unquoted."""
    text = json.dumps(value)
    if jq is None:
        print(text)
        return 0
    if shutil.which("jq") is None:
        return fail("fake gh: `jq` is needed to evaluate --jq", 2)
    done = subprocess.run(["jq", "-r", jq], input=text, text=True, capture_output=True)
    sys.stdout.write(done.stdout)
    sys.stderr.write(done.stderr)
    return done.returncode


def api(world: dict[str, Any], argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="gh api")
    parser.add_argument("endpoint")
    parser.add_argument("--jq")
    args = parser.parse_args(argv)
    found = COMMIT_PULLS.fullmatch(args.endpoint)
    if found is None or found["repo"] != world["repository"]:
        return fail(f"gh: Not Found (HTTP 404): {args.endpoint}")
    pulls = [{"number": p["number"], "merged_at": p["merged_at"], "head": {"sha": p["head_sha"]}}
             for p in world["pulls"] if found["sha"] in (p["merge_sha"], p["head_sha"])]
    return emit(pulls, args.jq)


def run_list(world: dict[str, Any], argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="gh run list")
    for flag in ("--repo", "--workflow", "--event", "--commit", "--status", "--json", "--jq"):
        parser.add_argument(flag)
    parser.add_argument("--limit", type=int, default=20)
    args = parser.parse_args(argv)
    if args.repo != world["repository"]:
        return fail("fake gh: pass --repo OWNER/NAME (no git remote here)")
    runs = [run for run in reversed(world["runs"])
            if (args.workflow is None or run["workflowName"] == args.workflow)
            and (args.event is None or run["event"] == args.event)
            and (args.commit is None or run["headSha"] == args.commit)
            and (args.status is None or run["conclusion"] == args.status)][: args.limit]
    if args.json is None:
        return fail("fake gh: only --json output is stood in for", 2)
    fields = args.json.split(",")
    return emit([{field: run[field] for field in fields} for run in runs], args.jq)


def run_download(world: dict[str, Any], argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="gh run download")
    parser.add_argument("run_id")
    parser.add_argument("--repo")
    parser.add_argument("--name", required=True)
    parser.add_argument("--dir", default=".")
    args = parser.parse_args(argv)
    if args.repo != world["repository"]:
        return fail("fake gh: pass --repo OWNER/NAME (no git remote here)")
    source = Path(world["artifacts"]) / args.run_id / args.name
    if not source.is_dir():
        return fail("no artifact matches any of the names or patterns provided")
    shutil.copytree(source, args.dir, dirs_exist_ok=True)
    return 0


def pr_comment(world: dict[str, Any], argv: list[str], world_path: Path) -> int:
    parser = argparse.ArgumentParser(prog="gh pr comment")
    parser.add_argument("number")
    parser.add_argument("--repo")
    parser.add_argument("--body-file", required=True)
    args = parser.parse_args(argv)
    if args.repo != world["repository"]:
        return fail("fake gh: pass --repo OWNER/NAME (no git remote here)")
    body = Path(args.body_file).read_text("utf-8")
    world["comments"].append({"number": args.number, "file": args.body_file, "body": body})
    world_path.write_text(json.dumps(world))
    return 0


def main(argv: list[str]) -> int:
    if not os.environ.get("GH_TOKEN"):
        return fail("gh: To use GitHub CLI in a GitHub Actions workflow, set the GH_TOKEN "
                    "environment variable.", 4)
    world_path = Path(os.environ[WORLD_ENV])
    world: dict[str, Any] = json.loads(world_path.read_text("utf-8"))
    if argv[:1] == ["api"]:
        return api(world, argv[1:])
    if argv[:2] == ["run", "list"]:
        return run_list(world, argv[2:])
    if argv[:2] == ["run", "download"]:
        return run_download(world, argv[2:])
    if argv[:2] == ["pr", "comment"]:
        return pr_comment(world, argv[2:], world_path)
    return fail(f"fake gh: no stand-in for `gh {' '.join(argv)}`", 2)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
