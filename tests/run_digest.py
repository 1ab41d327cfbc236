"""Digest of a workflow's per-run measurement files, timings excluded: equal digests mean equal numbers.

    python tests/run_digest.py RESULTS_DIR     # prints one sha256 per file kind and one over all

Used to show that a refactor changes no result bit for bit (issue 10): run config/smoke.yaml before and
after, compare the printed digests.
"""

import hashlib
import json
import sys
from pathlib import Path

KINDS = ("metrics.json", "spectrum.json", "inputs.json", "attack.json")
TIMING_KEYS = ("second", "time")  # wall-clock fields: the only ones allowed to differ between two runs


def without_timings(value):
    if isinstance(value, dict):
        return {k: without_timings(v) for k, v in value.items() if not any(t in k for t in TIMING_KEYS)}
    if isinstance(value, list):
        return [without_timings(v) for v in value]
    return value


def digest(results: Path) -> dict:
    out, total = {}, hashlib.sha256()
    for kind in KINDS:
        h = hashlib.sha256()
        for path in sorted((results / "runs").rglob(kind)):
            blob = json.dumps(without_timings(json.loads(path.read_text())), sort_keys=True).encode()
            h.update(str(path.relative_to(results)).encode() + b"\0" + blob)
            total.update(blob)
        out[kind] = h.hexdigest()
    out["all"] = total.hexdigest()
    return out


if __name__ == "__main__":
    print(json.dumps(digest(Path(sys.argv[1])), indent=2))
