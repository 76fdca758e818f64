"""Gathering a host's configuration with one script: built, run, split and read here.

`script` builds the shell script, `sections` splits its output, `interpret` turns the
sections into `HostConfigFacts`, and `local` runs it on this machine without SSH. The SSH
side lives in `scanner.remote`.
"""

from scanner.gather.facts import HostConfigFacts, SectionState
from scanner.gather.script import GatherOptions, build_script

__all__ = ["GatherOptions", "HostConfigFacts", "SectionState", "build_script"]
