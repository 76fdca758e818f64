#!/bin/sh
# The test command of the README: lint and type-check, then the whole suite (real servers on loopback).
set -eu
cd "$(dirname "$0")/.."
python3 -m ruff check scanner checks policies reports tests bench
python3 -m mypy
python3 -m pytest -q -p no:cacheprovider "$@"
