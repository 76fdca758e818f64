#!/bin/sh
# The README's main job: install Assay (no root, no system packages needed) and run the demo:
# a small unit of weak and good services on loopback is started, scanned and reported.
set -eu
cd "$(dirname "$0")/.."
python3 -m pip install -q -e .
exec python3 -m scanner.cli demo --out "${1:-assay-demo}"
