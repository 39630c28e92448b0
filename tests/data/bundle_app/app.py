"""wasmbuild's bundle test app: what a pre-initialised app must see at run time (tests/integration/test_bundle.py)."""
import sys

# Before this script's own imports run: what is already imported was imported at bundle time (the snapshot).
IMPORTED_AT_START = sorted(m for m in ("json", "datetime", "greeting", "statistics") if m in sys.modules)

import datetime  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import time  # noqa: E402

import greeting  # noqa: E402


def main():
    import statistics  # not imported at bundle time: served by the bundle's importer at run time

    report = {
        "greeting": greeting.hello(sys.argv[1] if len(sys.argv) > 1 else "world"),
        "argv": sys.argv[1:],
        "env": os.environ.get("WB_APP_ENV"),
        "random": random.random(),
        "time": time.time(),
        "year": datetime.datetime.now().year,
        "mean": statistics.mean([1, 2, 3, 4]),
        "imported_at_start": IMPORTED_AT_START,
        "cwd": os.getcwd(),
    }
    path = os.environ.get("WB_APP_FILE")
    if path:
        with open(path) as f:
            report["file"] = f.read().strip()
    print(json.dumps(report))
    return 3 if "--exit-3" in sys.argv else 0


if __name__ == "__main__":
    sys.exit(main())
