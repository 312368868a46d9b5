"""The mutation score of the last `make mutation` run (scripts/mutation.sh), from mutmut's result
files: per module and in total, killed / tested, and every mutant that survived.

Mutants listed in tests/mutation_equivalent.txt (one name a line, a `#` comment saying why) are
equivalent (no test can tell them from the code): they are counted apart, not as survivors.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

# mutmut's exit codes (mutmut/stats.py): 1 and 3 are a failing test run, 0 a passing one.
STATUS = {0: "survived", 1: "killed", 3: "killed", 33: "no tests", 5: "no tests", 36: "timeout"}
STATUS.update({-24: "timeout", 24: "timeout", 152: "timeout", 255: "timeout", None: "not run"})


def equivalent_names(path: Path) -> set[str]:
    if not path.is_file():
        return set()
    names = (line.partition("#")[0].strip() for line in path.read_text().splitlines())
    return {name for name in names if name}


def main(mutants: Path, equivalent_file: Path) -> int:
    equivalent = equivalent_names(equivalent_file)
    totals: Counter[str] = Counter()
    survivors: list[str] = []
    stale: list[str] = []  # listed as equivalent, yet killed: the list is out of date
    rows = []
    for meta in sorted(mutants.rglob("*.py.meta")):
        module = str(meta.relative_to(mutants)).removesuffix(".meta")
        counts: Counter[str] = Counter()
        for name, code in json.loads(meta.read_text())["exit_code_by_key"].items():
            status = STATUS.get(code, "suspicious")
            if status == "killed" and name in equivalent:
                stale.append(name)
            if status == "survived" and name in equivalent:
                status = "equivalent"
            counts[status] += 1
            if status in ("survived", "no tests", "timeout", "suspicious"):
                survivors.append(f"{name}: {status}")
        totals.update(counts)
        rows.append((module, counts))
    if not rows:
        print("mutation: no results yet (run `make mutation`)")
        return 1
    print(
        f"{'module':34} {'total':>6} {'killed':>6} {'surv.':>6} {'equiv.':>6} {'t/out':>6} "
        f"{'other':>6} {'untested':>8}  score (killed / tested, equivalent excluded)"
    )
    for module, counts in [*rows, ("all targeted modules", totals)]:
        print(line(module, counts))
    if totals["not run"]:
        print(f"\n{totals['not run']} mutants not tested yet (the budget ran out): run it again")
    if stale:
        print("\nlisted in tests/mutation_equivalent.txt but killed (the module changed? check):")
        print("\n".join(f"  {name}" for name in stale))
    if survivors:
        print("\nnot killed (`cd .mutation && ../venv/bin/mutmut show NAME` shows the diff):")
        print("\n".join(f"  {s}" for s in survivors))
    return 0


def line(module: str, counts: Counter[str]) -> str:
    total = sum(counts.values())
    killed, survived, equivalent = counts["killed"], counts["survived"], counts["equivalent"]
    timeout, untested = counts["timeout"], counts["not run"]
    other = total - killed - survived - equivalent - timeout - untested
    tested = total - equivalent - untested
    score = f"{100 * killed / tested:5.1f}%" if tested else "  n/a"
    return (
        f"{module:34} {total:6} {killed:6} {survived:6} {equivalent:6} {timeout:6} {other:6} "
        f"{untested:8}  {score} ({killed}/{tested})"
    )


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2])))
