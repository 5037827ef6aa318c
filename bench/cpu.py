"""Where the CPU goes: seconds of CPU used by each process of the stack (with
its children: Dramatiq's forked workers, Postgres's backends) while a block of
work runs, read from /proc. Divided by the payments made, this is the profile
that explains an end-to-end figure: who spends how much per payment."""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Iterable
from collections.abc import Iterator
from collections.abc import Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from dataclasses import field

TICKS = os.sysconf("SC_CLK_TCK")


def process_table() -> dict[int, tuple[int, int]]:
    """pid -> (parent pid, CPU ticks used, user and system)."""
    found: dict[int, tuple[int, int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone since the listing
        found[int(entry)] = (int(fields[1]), int(fields[11]) + int(fields[12]))
    return found


def children_of(processes: Mapping[int, tuple[int, int]]) -> dict[int, list[int]]:
    """Each pid's children, from a process table."""
    children: dict[int, list[int]] = defaultdict(list)
    for pid, (parent, _) in processes.items():
        children[parent].append(pid)
    return children


def tree(children: Mapping[int, list[int]], roots: Iterable[int]) -> set[int]:
    """The roots and every process below them."""
    members: set[int] = set()
    stack = list(roots)
    while stack:
        pid = stack.pop()
        if pid not in members:
            members.add(pid)
            stack.extend(children.get(pid, ()))
    return members


def _ticks_by_root(roots: Mapping[str, int]) -> dict[str, int]:
    processes = process_table()
    children = children_of(processes)
    return {
        name: sum(processes.get(pid, (0, 0))[1] for pid in tree(children, [root]))
        for name, root in roots.items()
    }


@dataclass
class CpuUse:
    seconds: dict[str, float] = field(default_factory=dict)

    def per(self, count: int) -> dict[str, float]:
        """Milliseconds of CPU per unit of work, by process, largest first."""
        per_unit = {name: 1000 * used / count for name, used in self.seconds.items()}
        return {
            name: round(ms, 2)
            for name, ms in sorted(per_unit.items(), key=lambda item: -item[1])
            if ms >= 0.01
        }


@contextmanager
def cpu_use(roots: Mapping[str, int]) -> Iterator[CpuUse]:
    """CPU seconds used by each named process tree while the block runs
    (children that exit during the block are not counted: the stack's do not)."""
    before = _ticks_by_root(roots)
    use = CpuUse()
    yield use
    after = _ticks_by_root(roots)
    use.seconds = {name: (after[name] - before.get(name, 0)) / TICKS for name in roots}
