"""Draft tests/expectations/<target>-<X.Y>.yaml from a results file of `wasmbuild test` (a maintainer's tool).

    python tools/draft_expectations.py reports/cpython-...-tests.json tests/expectations/wasi-3.13.yaml > new.yaml

Entries already in the existing file (if it exists) keep their kind, reason and link; a skip takes regrtest's
reason; every other new failure or crash gets `kind: FIXME`, which the loader rejects, so nothing is committed
unexplained. The existing file's header comment and ci_subset are kept.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml


def main(results_file: str, existing_file: str) -> int:
    results = json.loads(Path(results_file).read_text())
    existing_path = Path(existing_file)
    old = yaml.safe_load(existing_path.read_text()) if existing_path.is_file() else {}
    header = []
    if existing_path.is_file():
        for line in existing_path.read_text().splitlines():
            if not line.startswith("#"):
                break
            header.append(line)
    short = ".".join(results["python"].split(".")[:2])
    out = [*header, "format: 1", f'python: "{short}"', f"target: {results['target']['name']}"]
    for status in ("failed", "crashed", "skipped"):
        entries = [(n, r) for n, r in sorted(results["tests"].items()) if r["status"] == status]
        out.append(f"{status}:" + ("" if entries else " {}"))
        for name, r in entries:
            known = next((old[s][name] for s in ("failed", "crashed", "skipped") if name in (old.get(s) or {})), None)
            if known:
                entry = dict(known)
            elif status == "skipped":
                reason = r.get("reason") or r.get("detail") or "skipped on this platform"
                entry = {"kind": "environment" if "resource" in reason else "platform", "reason": reason}
            else:
                entry = {"kind": "FIXME", "reason": r.get("detail", "")}
            out.append(f"  {name}:")
            out += [f"    {k}: {json.dumps(entry[k]) if k == 'reason' else entry[k]}"
                    for k in ("kind", "reason", "link") if entry.get(k)]
    if old.get("ci_subset"):
        lines = existing_path.read_text().splitlines()
        at = lines.index("ci_subset:")
        start = at
        while start > 0 and lines[start - 1].startswith("#"):
            start -= 1
        out += lines[start:at]
        out.append("ci_subset:")
        out += [f"  - {n}" for n in old["ci_subset"]]
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
