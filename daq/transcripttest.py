"""A recorded session turned into a test: replay a transcript to a driver and keep what it read.

    daq replay SESSION.jsonl --make-test DRIVER [--options JSON] [--polls N]

replays the transcript (strictly: any request the recording does not hold is an error) to the
named driver, connects it, polls it ``N`` times and writes ``SESSION.expected.json`` beside the
transcript: the driver, its options, the address form, and every sample it produced (channel,
value, unit, raw text, flags). ``tests/drivers/test_transcript_fixtures.py`` replays every
transcript in ``tests/fixtures/transcripts/`` that has such a file and fails on any difference,
so a session captured at a real bench (``daq record``) becomes a regression test with two
commands and no code.

This module is a composition root, like daq/cli.py: it joins the drivers and the replay
simulators, which the rest of the core never imports.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from daq.errors import HallmarkError
from daq.instrument import InstrumentSettings
from daq.model import Sample
from daq.transcript import read_transcript
from drivers.registry import REGISTRY
from simulators.replay import replaying_pty, replaying_tcp

__all__ = ["TranscriptCase", "make_case", "replay_case", "sidecar_path"]

#: How a driver's address is written for each transport, by default.
ADDRESS_FORMS = {"tcp": "tcp://{host}:{port}", "serial": "{path}"}


@dataclass(frozen=True, slots=True)
class TranscriptCase:
    """What a transcript test replays and expects."""

    transcript: Path
    driver: str
    options: dict[str, Any]
    polls: int
    address: str
    timeout: float
    samples: list[list[Any]]

    def to_json(self) -> str:
        return json.dumps(
            {
                "transcript": self.transcript.name,
                "driver": self.driver,
                "options": self.options,
                "polls": self.polls,
                "address": self.address,
                "timeout": self.timeout,
                "samples": self.samples,
            },
            indent=1,
            ensure_ascii=False,
        )

    @classmethod
    def load(cls, sidecar: Path) -> TranscriptCase:
        try:
            data = json.loads(sidecar.read_text(encoding="utf-8"))
            return cls(
                sidecar.parent / str(data["transcript"]),
                str(data["driver"]),
                dict(data["options"]),
                int(data["polls"]),
                str(data["address"]),
                float(data["timeout"]),
                list(data["samples"]),
            )
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise HallmarkError(f"{sidecar}: not a transcript test: {exc}") from exc


def sidecar_path(transcript: Path) -> Path:
    """``SESSION.jsonl`` → ``SESSION.expected.json``."""
    return transcript.with_name(transcript.name.removesuffix(".jsonl") + ".expected.json")


def _row(s: Sample) -> list[Any]:
    return [s.channel, s.value, s.unit, s.raw, list(s.flags)]


def replay_case(
    transcript: Path,
    driver: str,
    *,
    options: dict[str, Any],
    polls: int,
    address: str,
    timeout: float = 1.0,
) -> list[list[Any]]:
    """Replay ``transcript`` strictly to ``driver``: connect, poll ``polls`` times, close.
    Returns the samples as rows; raises HallmarkError when the driver asked for anything the
    recording does not hold, or the driver is unknown."""
    entry = REGISTRY.get(driver)
    if entry is None:
        raise HallmarkError(f"no driver called '{driver}' (known: {', '.join(sorted(REGISTRY))})")
    opts = entry.options.model_validate(options)
    session = read_transcript(transcript)
    rows: list[list[Any]] = []
    replay = replaying_tcp if session.header.transport == "tcp" else replaying_pty
    with replay(transcript, strict=True) as server:
        where = {
            "host": getattr(server, "host", ""),
            "port": getattr(server, "port", 0),
            "path": getattr(server, "path", ""),
        }
        instrument = entry.build(
            InstrumentSettings("replayed", address.format(**where), timeout), opts
        )
        try:
            instrument.connect()
            for _ in range(polls):
                rows.extend(_row(s) for s in instrument.poll())
        except HallmarkError as exc:
            found = "; ".join(m.describe() for m in server.mismatches)
            raise HallmarkError(
                f"{driver} did not replay {transcript.name}: {exc}"
                + (f" ({found})" if found else "")
            ) from exc
        finally:
            instrument.close()
        if server.mismatches:
            raise HallmarkError(
                f"{transcript.name}: " + "; ".join(m.describe() for m in server.mismatches)
            )
    return rows


def make_case(
    transcript: Path,
    driver: str,
    *,
    options: dict[str, Any],
    polls: int,
    address: str | None = None,
    timeout: float = 1.0,
) -> TranscriptCase:
    """Replay the transcript to the driver and write its ``.expected.json`` beside it."""
    session = read_transcript(transcript)
    form = address or ADDRESS_FORMS.get(session.header.transport, "{path}")
    rows = replay_case(
        transcript, driver, options=options, polls=polls, address=form, timeout=timeout
    )
    case = TranscriptCase(transcript, driver, options, polls, form, timeout, rows)
    sidecar_path(transcript).write_text(case.to_json() + "\n", encoding="utf-8")
    return case
