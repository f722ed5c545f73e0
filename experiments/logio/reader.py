"""Reading import files: format detection, a validation scan, and the record stream.

An import reads its file twice: :func:`scan` parses every line and collects the invalid
ones (so a bad line aborts the import before anything is written, or is skipped knowingly
with ``skip_invalid``), then :func:`read` streams the records to the importer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from experiments.logio import dsjson, jsonl
from experiments.logio.records import (
    ActionChecker,
    LineError,
    LoggedRecord,
    json_lines,
    load_line,
    open_text,
)

Format = Literal["jsonl", "dsjson"]
FORMATS = ("auto", "jsonl", "dsjson")
MAX_MESSAGES = 20

Check = Callable[[int, LoggedRecord], None]


@dataclass
class Scan:
    """What a validation pass found.

    Attributes:
        format: The file's format.
        lines: Non-blank lines.
        invalid: Line numbers that cannot be imported.
        messages: The first ``MAX_MESSAGES`` errors, each naming its line.
    """

    format: Format
    lines: int = 0
    invalid: set[int] = field(default_factory=set)
    messages: list[str] = field(default_factory=list)

    def add_error(self, error: LineError) -> None:
        self.invalid.add(error.line)
        if len(self.messages) < MAX_MESSAGES:
            self.messages.append(str(error))


def detect(path: str | Path) -> Format:
    """``dsjson`` when the first JSON line has VW's ``c``/``_label_*`` fields, else ``jsonl``."""
    with open_text(path) as handle:
        for text in handle:
            if text.strip():
                return "dsjson" if '"_label_' in text or '"_multi"' in text else "jsonl"
    return "jsonl"


def resolve_format(path: str | Path, fmt: str) -> Format:
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}")
    return detect(path) if fmt == "auto" else fmt  # type: ignore[return-value]


def _parse(fmt: Format, obj: Any, line: int, checker: ActionChecker) -> LoggedRecord | None:
    if fmt == "dsjson":
        return dsjson.parse(obj, line, checker)
    return jsonl.parse(obj, line, checker)


def scan(path: str | Path, fmt: Format, check: Check | None = None) -> Scan:
    """Parse every line; collect (rather than raise) the errors."""
    result, checker = Scan(fmt), ActionChecker()
    with open_text(path) as handle:
        for line, text in json_lines(handle):
            result.lines += 1
            try:
                record = _parse(fmt, load_line(line, text), line, checker)
                if record is not None and check is not None:
                    check(line, record)
            except LineError as exc:
                result.add_error(exc)
    return result


def read(path: str | Path, fmt: Format, skip: set[int] | None = None
         ) -> Iterator[tuple[int, LoggedRecord | None]]:
    """``(line, record)`` pairs (a None record: a never-activated decision), skipping
    the line numbers in ``skip``.

    Raises:
        LineError: On an invalid line not in ``skip``.
    """
    checker = ActionChecker()
    with open_text(path) as handle:
        for line, text in json_lines(handle):
            if skip and line in skip:
                continue
            yield line, _parse(fmt, load_line(line, text), line, checker)
