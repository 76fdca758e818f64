"""Splitting the gatherer's output into sections, with limits.

The output comes from a host Assay does not trust: a login shell may print noise before the
script starts, a file may contain anything, the connection may drop in the middle of a
section, and bytes need not be UTF-8. The parser therefore

- only recognises boundaries that carry this run's random nonce,
- keeps at most `max_section` bytes of one section and `max_sections` sections,
- decodes with replacement and records that a section was not valid UTF-8,
- marks a section that began but never ended as truncated (its text is kept),
- records what came before the first boundary as `noise` (bounded) instead of failing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

MAX_SECTION = 2 * 1024 * 1024
MAX_SECTIONS = 200
MAX_NOISE = 2048


@dataclass(frozen=True)
class Section:
    name: str
    text: str
    rc: int | None  # None: the section began but its end never arrived
    clipped: bool = False  # more than MAX_SECTION bytes; the rest was dropped
    non_utf8: bool = False

    @property
    def truncated(self) -> bool:
        return self.rc is None


@dataclass
class Parsed:
    sections: dict[str, Section] = field(default_factory=dict)
    started: bool = False  # the START line arrived: the script ran
    finished: bool = False  # the DONE line arrived: every section was printed
    noise: str = ""  # bounded text printed before the script started (login banners ...)
    problems: list[str] = field(default_factory=list)


def _decode(data: bytes) -> tuple[str, bool]:
    try:
        return data.decode("utf-8"), False
    except UnicodeDecodeError:
        return data.decode("utf-8", "replace"), True


def parse_output(
    data: bytes,
    nonce: str,
    *,
    max_section: int = MAX_SECTION,
    max_sections: int = MAX_SECTIONS,
) -> Parsed:
    """Split `data` (the gatherer's stdout) into its sections."""
    marker = f"@@assay-{nonce} ".encode()
    out = Parsed()
    current: str | None = None
    buf: list[bytes] = []
    size = 0
    clipped = False
    noise: list[bytes] = []
    noise_size = 0

    def close(rc: int | None) -> None:
        nonlocal current, buf, size, clipped
        assert current is not None
        raw = b"".join(buf)
        if raw.endswith(b"\n"):
            raw = raw[:-1]  # the newline that the END line's leading newline added
        text, bad = _decode(raw)
        if current in out.sections:
            out.problems.append(f"section {current!r} appeared twice; the first is kept")
        elif len(out.sections) >= max_sections:
            out.problems.append(f"more than {max_sections} sections; {current!r} dropped")
        else:
            out.sections[current] = Section(current, text, rc, clipped, bad)
        current, buf, size, clipped = None, [], 0, False

    for line in data.splitlines(keepends=True):
        if line.startswith(marker):
            words = line[len(marker) :].decode("ascii", "replace").split()
            verb = words[0] if words else ""
            if verb == "START":
                out.started = True
                continue
            if verb == "DONE":
                if current is not None:
                    close(None)
                out.finished = True
                continue
            if verb == "BEGIN" and len(words) >= 2:
                if current is not None:
                    close(None)
                current = words[1]
                continue
            if verb == "END" and len(words) >= 3 and current == words[1]:
                try:
                    rc: int | None = int(words[2])
                except ValueError:
                    rc = None
                close(rc)
                continue
            out.problems.append(f"unrecognised boundary line {line[:80]!r}")
            continue
        if current is None:
            if not out.started and noise_size < MAX_NOISE:
                noise.append(line[: MAX_NOISE - noise_size])
                noise_size += len(noise[-1])
            continue
        if size + len(line) > max_section:
            clipped = True
            continue
        buf.append(line)
        size += len(line)
    if current is not None:
        close(None)
    text, _ = _decode(b"".join(noise))
    # the blank line that precedes the first BEGIN is not noise
    out.noise = "".join(c if c.isprintable() or c in "\n\t" else "?" for c in text).strip()
    if out.started and not out.finished:
        out.problems.append("the output ended before the gatherer finished")
    return out
