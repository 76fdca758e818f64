"""Signed reports: `assay report --sign KEY` writes a detached Ed25519 signature over the canonical
JSON and every rendered file; `assay verify` accepts it only with the signer's public key and
names each file that is missing, changed or added."""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, generate_private_key

from reports.signing import (
    SIGNATURE_FILE,
    SigningError,
    canonical_bytes,
    generate_key,
    load_private_key,
    sign_directory,
    verify_directory,
)
from tests.report_samples import stored_scans


def assay(*args: str, db: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, ASSAY_DB=f"sqlite:///{db}", COLUMNS="200")
    return subprocess.run(
        [sys.executable, "-c", "from scanner.cli import main; main()", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path, Path]:
    """(db, report dir, private key, public key): one scan signed through the CLI."""
    base = tmp_path_factory.mktemp("signing")
    db = base / "assay.db"
    scan_id = stored_scans(f"sqlite:///{db}")[-1]
    r = assay("keygen", str(base / "unit-key"), db=db)
    assert r.returncode == 0, r.stderr
    key, pub = base / "unit-key", base / "unit-key.pub"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    out = base / "report"
    r = assay(
        "report", scan_id, "--format", "html,csv,sarif", "--out", str(out), "--sign", str(key),
        db=db,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    return db, out, key, pub


def _copy(src: Path, dst: Path) -> Path:
    dst.mkdir()
    for p in src.iterdir():
        (dst / p.name).write_bytes(p.read_bytes())
    return dst


def test_signature_covers_the_canonical_json_and_every_file(signed: tuple[Path, ...]) -> None:
    _db, out, _key, pub = signed
    manifest = json.loads((out / SIGNATURE_FILE).read_text())["signed"]
    names = [f["name"] for f in manifest["files"]]
    assert names == sorted(
        [
            "assessment.html",
            "assessment.csv",
            "assessment-controls.csv",
            "assessment.sarif",
            "assessment.json",  # added: the signature always covers the canonical document
        ]
    )
    v = verify_directory(out, pub)
    assert v.ok and v.files == names and not v.unsigned


def test_cli_verify_ok(signed: tuple[Path, ...]) -> None:
    db, out, _key, pub = signed
    r = assay("verify", str(out), "--key", str(pub), db=db)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("signature ok: scan 20261203T090000Z-000002")


def test_a_changed_file_is_named(signed: tuple[Path, ...], tmp_path: Path) -> None:
    db, out, _key, pub = signed
    copy = _copy(out, tmp_path / "copy")
    html = copy / "assessment.html"
    html.write_text(html.read_text().replace("Unit one", "Unit 0ne"))
    (copy / "assessment.sarif").unlink()
    (copy / "notes.txt").write_text("added later")
    r = assay("verify", str(copy), "--key", str(pub), db=db)
    assert r.returncode == 1
    assert f"{html}: changed after signing" in r.stderr
    assert f"{copy / 'assessment.sarif'}: signed but missing" in r.stderr
    assert f"{copy / 'notes.txt'} is not covered by the signature" in r.stderr


def test_another_key_or_a_forged_manifest_is_refused(
    signed: tuple[Path, ...], tmp_path: Path
) -> None:
    _db, out, _key, _pub = signed
    _other, other_pub = generate_key(tmp_path / "other")
    v = verify_directory(out, other_pub)
    assert not v.ok and "not with the trusted key" in v.problems[0]

    copy = _copy(out, tmp_path / "forged")
    sig = json.loads((copy / SIGNATURE_FILE).read_text())
    sig["signed"]["scan_id"] = "20990101T000000Z-forged"
    (copy / SIGNATURE_FILE).write_text(json.dumps(sig))
    v = verify_directory(copy, _pub)
    assert not v.ok and v.problems == [
        f"{copy / SIGNATURE_FILE}: the signature does not match its manifest"
    ]


def test_hostile_or_broken_signature_files(signed: tuple[Path, ...], tmp_path: Path) -> None:
    _db, out, key, pub = signed
    copy = _copy(out, tmp_path / "hostile")
    (copy / SIGNATURE_FILE).write_text("{not json")
    with pytest.raises(SigningError, match="not a JSON signature file"):
        verify_directory(copy, pub)
    (copy / SIGNATURE_FILE).write_text(json.dumps({"signed": {}, "signature": "!!"}))
    with pytest.raises(SigningError, match="malformed signature file"):
        verify_directory(copy, pub)
    # a file outside the directory is never signed
    (copy / "assessment.json").write_text("{}")
    with pytest.raises(SigningError, match="only files written into"):
        sign_directory(copy, [copy / "assessment.json", tmp_path / "escape"], key, "s")
    # a validly signed manifest that names a path outside the directory is still refused
    private = load_private_key(key)
    manifest = json.loads((out / SIGNATURE_FILE).read_text())["signed"]
    manifest["files"].append({"name": "../../etc/passwd", "sha256": "0" * 64, "size": 1})
    forged = {
        "signed": manifest,
        "signature": base64.b64encode(private.sign(canonical_bytes(manifest))).decode(),
    }
    (copy / SIGNATURE_FILE).write_text(json.dumps(forged))
    v = verify_directory(copy, pub)
    assert not v.ok and any("refuses file name '../../etc/passwd'" in p for p in v.problems)


def test_bad_keys_fail_before_anything_is_written(tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    scan_id = stored_scans(f"sqlite:///{db}")[0]
    ec = generate_private_key(SECP256R1())
    wrong = tmp_path / "ec.pem"
    wrong.write_bytes(
        ec.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    out = tmp_path / "out"
    r = assay("report", scan_id, "--out", str(out), "--sign", str(wrong), db=db)
    assert r.returncode == 1
    assert r.stderr.startswith(f"assay: error: {wrong}: the signing key must be Ed25519")
    assert "must be Ed25519" in r.stderr and not out.exists()
    r = assay("report", scan_id, "--out", str(out), "--sign", str(tmp_path / "nope"), db=db)
    assert r.returncode == 1 and "cannot read signing key" in r.stderr
    r = assay("keygen", str(wrong), db=db)
    assert r.returncode == 1 and "refusing to overwrite" in r.stderr
    r = assay("verify", str(tmp_path), "--key", str(wrong), db=db)
    assert r.returncode == 1 and "no signature in this directory" in r.stderr
