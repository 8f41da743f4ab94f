"""Run mypy over resnet_gui/ against a baseline that only shrinks.

The baseline (``scripts/typecheck-baseline.txt``) lists the type errors the code had when the
check was introduced, one per line as ``path: [code] message`` (no line numbers, so editing a file
does not move its entries). The check fails on any error that is not in the baseline (a new one,
or one more of the same), and says so when errors were fixed, so the baseline can be cut down
with ``--shrink``; it can never grow that way.

    python scripts/typecheck.py            # the check `make test` runs
    python scripts/typecheck.py --shrink   # drop the entries that no longer occur
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BASELINE = REPO / "scripts" / "typecheck-baseline.txt"
_ERROR = re.compile(r"^(?P<path>[^:]+):\d+(?::\d+)?: error: (?P<message>.*?)(?:\s+\[(?P<code>[\w-]+)\])?$")


def current_errors() -> Counter[str]:
    """The errors mypy reports now, as baseline entries."""
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "resnet_gui"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    if result.returncode not in (0, 1):  # 2: mypy itself failed (a crash, a bad config)
        sys.stderr.write(result.stdout + result.stderr)
        raise SystemExit("typecheck: mypy could not run")
    errors: Counter[str] = Counter()
    for line in result.stdout.splitlines():
        match = _ERROR.match(line)
        if match:
            errors[f"{match['path']}: [{match['code'] or 'misc'}] {match['message']}"] += 1
    return errors


def read_baseline() -> Counter[str]:
    if not BASELINE.is_file():
        return Counter()
    text = BASELINE.read_text(encoding="utf-8")
    return Counter(line for line in text.splitlines() if line and not line.startswith("#"))


def write_baseline(entries: Counter[str]) -> None:
    header = "# mypy errors accepted when the check began; the list may only shrink (scripts/typecheck.py)\n"
    body = "".join(f"{entry}\n" for entry in sorted(entries.elements()))
    BASELINE.write_text(header + body, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shrink", action="store_true", help="drop baseline entries that no longer occur")
    parser.add_argument("--init", action="store_true", help="write the first baseline (if there is none)")
    args = parser.parse_args(argv)
    now = current_errors()
    if args.init:
        if BASELINE.exists():
            raise SystemExit("typecheck: a baseline exists; it may only shrink (--shrink)")
        write_baseline(now)
        print(f"typecheck: baseline of {sum(now.values())} entries written to {BASELINE.relative_to(REPO)}")
        return 0
    baseline = read_baseline()
    new = now - baseline
    fixed = baseline - now
    if new:
        print(f"typecheck: {sum(new.values())} type error(s) not in the baseline:")
        for entry in sorted(new.elements()):
            print(f"  {entry}")
        print("Fix them (run `.venv/bin/mypy resnet_gui` for line numbers); the baseline never grows.")
        return 1
    if args.shrink and fixed:
        kept = baseline - fixed
        write_baseline(kept)
        print(f"typecheck: baseline cut by {sum(fixed.values())} to {sum(kept.values())} entries.")
        return 0
    note = f"; {sum(fixed.values())} fixed, run with --shrink to cut the baseline" if fixed else ""
    print(f"typecheck: no new type errors ({sum(now.values())} left in the baseline{note}).")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
