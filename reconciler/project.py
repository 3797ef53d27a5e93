"""The project's plan as the commands see it, and the options of carrying it out.

The application layer between the command line and the core: the plan computed from the
manifests (read by :mod:`reconciler.loading`) against the live runs and checked against
``--target``, and the options of an apply, with flags winning over ``reconciler.toml``.
Nothing here parses flags or prints.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

from reconciler.apply import ApplyOptions
from reconciler.backend import Backend
from reconciler.client import AssistantsClient
from reconciler.config import ProjectConfig
from reconciler.errors import ConfigError
from reconciler.live import ThreadsRead, plan_from_api
from reconciler.manifest import ManifestSet
from reconciler.model import DesiredRun
from reconciler.planning import Plan, PlanOptions


@dataclass(frozen=True)
class PlanFlags:
    """What the command line said about the plan (``plan`` and ``apply`` share them)."""

    prune: bool = False
    allow_empty: bool = False
    targets: frozenset[str] = frozenset()
    recreate_unmarked: bool = False

    @property
    def given(self) -> bool:
        """Whether any was given (a saved plan is applied as is, so it takes none)."""
        return self.prune or bool(self.targets) or self.recreate_unmarked or self.allow_empty

    def options(self, project: str) -> PlanOptions:
        return PlanOptions(
            project=project, prune=self.prune, targets=self.targets,
            recreate_unmarked=self.recreate_unmarked,
        )


@dataclass(frozen=True)
class ApplyFlags:
    """What the command line said about carrying a plan out (``None``: not said)."""

    wait: bool = False
    timeout: float = ApplyOptions.timeout
    settle_window: float | None = None  # None: ``settle_window`` in reconciler.toml, else 60
    poll_interval: float = ApplyOptions.poll_interval
    settle_poll: float = ApplyOptions.settle_poll
    max_creates: int | None = None  # None: ``max_creates`` in reconciler.toml, else no limit


def check_empty(manifests: ManifestSet, flags: PlanFlags) -> None:
    """kubectl's "no objects passed to apply": pruning with nothing declared cancels all."""
    if flags.prune and not manifests.runs and not flags.allow_empty:
        raise ConfigError(
            "the manifests declare no run at all, so --prune would cancel every active "
            "managed run on their threads; pass --allow-empty if that is what you want"
        )


async def compute_plan(
    client: AssistantsClient, manifests: ManifestSet, options: PlanOptions, backend: Backend,
    *, on_read: ThreadsRead | None = None,
) -> Plan:
    """The plan of ``manifests`` against the live runs, bound to the backend it was read from
    (``on_read`` is told how many threads have been read)."""
    desired = manifests.runs
    result = await plan_from_api(client, desired, options, threads=manifests.threads,
                                 on_read=on_read)
    check_targets(options, desired, result)
    return dataclasses.replace(result, backend=backend.binding)


def check_targets(options: PlanOptions, desired: Sequence[DesiredRun], result: Plan) -> None:
    """Every ``--target`` names a declared run or a change of the plan."""
    known = {r.name for r in desired} | {f"{r.thread_id}/{r.name}" for r in desired}
    known |= {c.name for c in result.changes} | {c.address for c in result.changes}
    unknown = sorted(options.targets - known)
    if unknown:
        raise ConfigError(f"--target {unknown[0]} matches no run in the manifests")


def apply_options(flags: ApplyFlags, config: ProjectConfig, backend: Backend) -> ApplyOptions:
    """How an apply against ``backend`` proceeds (flags win over ``reconciler.toml``)."""
    window = flags.settle_window if flags.settle_window is not None else config.settle_window
    return ApplyOptions(
        wait=flags.wait, timeout=flags.timeout, poll_interval=flags.poll_interval,
        settle_poll=flags.settle_poll,
        settle_window=window if window is not None else ApplyOptions.settle_window,
        request_timeout=backend.request_timeout,
    )
