"""Report rendering and signing on a large scan, against what a user would otherwise run.

- each export format of a 5,000-outcome document, against serialising the canonical JSON
  (`json.dumps`): the ratio says what each projection costs over the document itself;
- `assay verify` (Ed25519 signature plus SHA-256 of every file) against `sha256sum -c`, the
  integrity check a reviewer would otherwise run on the same files (without authenticity).

    python bench/bench_reports.py [--outcomes 5000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from reports.signing import generate_key, sign_directory, verify_directory
from scanner.plugins import load_registry
from tests.report_samples import _with, export_sample


def big_doc(n: int):  # type: ignore[no-untyped-def]
    base = export_sample()
    outs = []
    for i in range(n):
        o = base.outcomes[i % len(base.outcomes)]
        outs.append(o.model_copy(update={"fingerprint": f"{i:032x}", "detail": str(i)}))
    return _with(base, outs)


def timed(fn, rounds: int) -> float:  # type: ignore[no-untyped-def]
    runs = []
    for _ in range(rounds):
        t = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t)
    return statistics.median(runs)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--outcomes", type=int, default=5000)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    doc = big_doc(a.outcomes)
    reg = load_registry()
    base = timed(lambda: json.dumps(doc.model_dump(mode="json")), a.rounds)
    print(f"{a.outcomes} outcomes; json.dumps of the document: {base * 1000:.0f} ms")
    print("| format | median | ratio to json.dumps |\n|---|---|---|")
    for fmt in ("json", "csv", "junit", "ocsf", "defectdojo", "sarif", "plan", "md", "html"):
        t = timed(lambda f=fmt: reg.reporters[f].render(doc), a.rounds)
        print(f"| {fmt} | {t * 1000:.0f} ms | {t / base:.1f} |")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        files = [reg.reporters[f].write(doc, out) for f in ("json", "html", "csv", "ocsf")]
        files.append(out / "assessment-controls.csv")
        key, pub = generate_key(out.parent / f"{out.name}.key")
        sign_directory(out, files, key, doc.scan_id)
        sums = subprocess.run(
            ["sha256sum", *[p.name for p in files]], cwd=out, capture_output=True, check=True
        ).stdout
        (out.parent / f"{out.name}.sums").write_bytes(sums)
        check = ["sha256sum", "--quiet", "-c", str(out.parent / f"{out.name}.sums")]
        t_sum = timed(lambda: subprocess.run(check, cwd=out, check=True), a.rounds)
        t_verify = timed(lambda: verify_directory(out, pub), a.rounds)
        size = sum(p.stat().st_size for p in files) / 1e6
        print(f"\nverify {len(files)} files, {size:.1f} MB: assay {t_verify * 1000:.0f} ms, "
              f"sha256sum -c {t_sum * 1000:.0f} ms, ratio {t_verify / t_sum:.2f}")  # fmt: skip
        key.unlink()
        pub.unlink()
        (out.parent / f"{out.name}.sums").unlink()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
