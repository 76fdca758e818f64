"""SMB share scan speed: Assay's SMB store vs copying the share with smbclient and grepping it.

    python bench/bench_smb.py [--files 500] [--seed 7]

Needs root, smbd and smbclient (apt-get install -y samba smbclient). Starts a real smbd on its
own loopback address with a share of small text files (one in ten carries a TỐI MẬT marking),
then measures in one run: Assay's first scan of the share (share ACL over srvsvc, listing, every
file's DACL and bytes in one compound, detection), the same first scan with the DACL and the
bytes asked in two opens per file (as before the merged compound), an unchanged rescan (cache
on), and what an assessor would otherwise do by hand: `smbclient -c 'recurse ON; prompt OFF;
mget *'` to a temporary folder and `grep -rl` for the marking (no permissions, no personal data,
no masking). Prints the load average, since other work on the machine moves the numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scanner.collectors.store import StoreDocuments, StoreDocumentsCollector, StoreScanOptions
from scanner.inventory import CredentialRef, Store
from scanner.model import Target, TargetKind
from scanner.plugins import CollectContext
from scanner.scope import ScopeGuard
from tests.servers_smb import SMB_PASSWORD, SMB_USER, samba, samba_unavailable

FILLER = "Ủy ban nhân dân tỉnh thông báo lịch làm việc của các phòng ban trong tuần. "


def make_share(root: Path, files: int, seed: int) -> int:
    rng = random.Random(seed)
    marked = 0
    for i in range(files):
        folder = root / f"phong-{i % 10}"
        folder.mkdir(parents=True, exist_ok=True)
        body = FILLER * rng.randint(10, 40)
        if i % 10 == 0:
            body = "TỐI MẬT\n" + body
            marked += 1
        (folder / f"van-ban-{i}.txt").write_text(body, encoding="utf-8")
    return marked


def assay_scan(url: str, address: str, cache_dir: Path, cache: bool) -> tuple[float, int]:
    os.environ["ASSAY_BENCH_SMB"] = f"{SMB_USER}:{SMB_PASSWORD}"
    store = Store(
        id="bench", kind="smb", location=url, credential=CredentialRef(env="ASSAY_BENCH_SMB")
    )
    opts = StoreScanOptions(cache=cache, cache_dir=str(cache_dir), budget_seconds=3000)
    col = StoreDocumentsCollector({"bench": store}, opts)
    target = Target(kind=TargetKind.STORE, unit="u", path=f"smb:{url}", names=("bench",))
    ctx = CollectContext(scope=ScopeGuard.of(hosts=[(address, "bench")]), probe_timeout=10.0)
    t0 = time.perf_counter()
    facts = asyncio.run(col.collect(target, ctx))
    elapsed = time.perf_counter() - t0
    assert isinstance(facts, StoreDocuments)
    marked = sum(1 for d in facts.documents if "marking.vn.toi_mat" in d.counts)
    return elapsed, marked


def smbclient_grep(address: str, port: int, share: str, dest: Path) -> tuple[float, int]:
    t0 = time.perf_counter()
    subprocess.run(
        ["smbclient", f"//{address}/{share}", "-p", str(port), "-U", f"{SMB_USER}%{SMB_PASSWORD}",
         "-c", "recurse ON; prompt OFF; mget *"],
        cwd=dest, check=True, capture_output=True, timeout=600,
    )  # fmt: skip
    out = subprocess.run(
        ["grep", "-rl", "TỐI MẬT", str(dest)], capture_output=True, timeout=600, check=False
    )
    return time.perf_counter() - t0, len(out.stdout.splitlines())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=500)
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args()
    why = samba_unavailable() or ("" if shutil.which("smbclient") else "smbclient not installed")
    if why:
        sys.exit(f"cannot run: {why}")
    tmp = Path(tempfile.mkdtemp(prefix="assay-bench-smb-"))
    try:
        share = tmp / "share"
        planted = make_share(share, a.files, a.seed)
        shares = {"docs": {"path": str(share), "valid users": SMB_USER, "read only": "yes"}}
        with samba(tmp / "srv", shares, "map to guest = Never") as s:
            url = s.url("docs")
            import scanner.stores.smb as smb_store

            assay_scan(url, s.address, tmp / "warm", cache=False)  # imports, smbd's RPC helpers

            keep = smb_store.PREFETCH_READ
            smb_store.PREFETCH_READ = 0  # no file is read with its DACL: two opens per file
            try:
                two_opens, _ = assay_scan(url, s.address, tmp / "cache0", cache=False)
            finally:
                smb_store.PREFETCH_READ = keep
            first, found = assay_scan(url, s.address, tmp / "cache", cache=True)
            rescan, _ = assay_scan(url, s.address, tmp / "cache", cache=True)
            dest = tmp / "copy"
            dest.mkdir()
            manual, grepped = smbclient_grep(s.address, s.port, "docs", dest)
        print(f"share of {a.files} files, {planted} marked TỐI MẬT")
        print(
            f"Assay first scan      {first:7.2f} s  ({a.files / first:6.0f} files/s)  found {found}"
        )
        print(
            f"  (DACL and bytes in two opens per file {two_opens:7.2f} s, "
            f"{two_opens / first:.2f}x the one-compound first scan)"
        )
        print(f"Assay unchanged rescan{rescan:7.2f} s  ({first / rescan:4.1f}x faster)")
        print(
            f"smbclient mget + grep {manual:7.2f} s  ({a.files / manual:6.0f} files/s)  "
            f"found {grepped}"
        )
        print(f"ratio Assay first scan / smbclient+grep: {first / manual:.2f}")
        print("load average (1, 5, 15 min): " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
