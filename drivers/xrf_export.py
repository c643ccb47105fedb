"""XRF coating-thickness gauges through their result files: a watched export folder.

Instruments: benchtop XRF (Fischer FISCHERSCOPE X-RAY with WinFTM, Hitachi FT / X-Strata,
Bowman, Thermo). They are PC-hosted and publish no protocol; the recommended integration is to
ingest the files their software exports into a folder or network share
(INSTRUMENTS_AND_STANDARDS.md §1.3, §6.3). The layout is read with a template
(drivers/xrf_parse.py, drivers/xrf_templates/); vendor field names are unverified, so each
instrument's template should be built from its own export files.

Address: the folder, as ``dir:///srv/xrf-exports`` (percent-escapes allowed, e.g. ``%20``) or
a plain absolute path ``/srv/xrf-exports`` (a mounted share such as ``/mnt/xrf``).

Push mode. Each ``receive(timeout)`` scans the folder (every ``scan_interval_s``) until a file
is ingested or ``timeout`` passes, and returns that file's samples (or []). Rules:

- A file is a candidate when its name matches ``patterns`` and none of ``ignore``
  (case-insensitive; hidden, ``~*``, ``*.tmp``, ``*.part`` are ignored, so software that
  writes a temporary name and renames it into place is handled). It is ready once its size and
  modification time have not changed for ``settle_s`` seconds (0: at once, for software that
  renames into place). Empty files wait. Oldest first (modification time, then name), so a
  backlog is ingested in order.
- Never twice: the SHA-256 of every ingested file is kept in a state file (``state_file``;
  default ``<folder>/.hallmark/xrf-export-state.json``, folder created 0700, file 0600,
  written atomically), so a restart does not ingest again and a re-save of the same content
  under another name is skipped as a duplicate. A file saved again with new content is new.
- ``after = "move"``: ingested files (and duplicates) go to ``processed/``; ``"mark"``: they
  stay where they are (a read-only share) and are remembered by name, size and time.
- A bad file (not parseable, binary, larger than ``max_bytes``, a symbolic link, not a regular
  file) is moved to ``rejected/`` with ``<name>.reason.txt`` beside it saying why in plain
  words (``mark``: left in place, the reason written under the state folder's ``rejected/``),
  and ``receive`` raises the parser's ``ProtocolError`` or ``UnitError`` naming the file. The
  runtime records it and carries on; nothing is ingested from that file.
- The folder missing (a share that went away) or unreadable raises ``TransportError``: the
  runtime reconnects with backoff, and what accumulated meanwhile is ingested in order.

Samples: one per layer per reading (drivers/xrf_parse.py ``to_samples``), with extra fields
``source`` (file name) and ``file_sha256`` (first 16 hex digits), and ``series`` when a file
holds more than one. Times: arrival, one nanosecond apart per reading.

Crash window: the hash is saved before the samples are returned; a crash between that save and
the journal commit loses that file's readings rather than duplicating them.
"""

from __future__ import annotations

import contextlib
import errno
import fnmatch
import hashlib
import json
import logging
import os
import stat
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import unquote

from pydantic import BaseModel, ConfigDict, Field, field_validator

from daq.errors import InstrumentError, ProtocolError, TransportError, UnitError
from daq.instrument import InstrumentSettings, Mode
from daq.model import FieldValue, Sample
from drivers.xrf_parse import (
    Template,
    UncertaintyRule,
    load_template,
    parse_export,
    to_samples,
)

__all__ = ["XrfExport", "XrfExportOptions", "build", "check_options", "parse_dir_address"]

log = logging.getLogger(__name__)

_STATE_NAME = "xrf-export-state.json"
_FOLDER_NAME = r"^[A-Za-z0-9_-][A-Za-z0-9_.-]*$"  # a plain name, not hidden, not ..


def parse_dir_address(address: str) -> Path:
    """The watched folder of an address (``dir:///path`` or ``/path``). Raises ValueError."""
    text = address.strip()
    if text.startswith("dir://"):
        rest = text[len("dir://") :]
        if not rest.startswith("/"):
            raise ValueError(
                f"'{address}': write dir:///absolute/path (three slashes), e.g. dir:///srv/xrf"
            )
        text = unquote(rest)
    elif "://" in text:
        raise ValueError(f"'{address}': an export folder is dir:///path or an absolute path")
    if not text or not os.path.isabs(text):
        raise ValueError(
            f"'{address}': give the export folder as an absolute path, e.g. /srv/xrf-exports"
        )
    return Path(text)


class XrfExportOptions(BaseModel):
    """Options under ``[instrument.options]`` for a watched XRF export folder."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Template: a built-in name (``export-default``) or a path to a TOML file.
    template: str = "export-default"
    #: File names to ingest (fnmatch, case-insensitive).
    patterns: Annotated[list[str], Field(min_length=1)] = ["*.csv", "*.txt"]
    #: File names never to touch (temporary and hidden files).
    ignore: list[str] = [".*", "~*", "*.tmp", "*.part", "*.partial", "*.crdownload"]
    #: Seconds a file's size and modification time must stay unchanged before it is read.
    settle_s: Annotated[float, Field(ge=0, allow_inf_nan=False)] = 2.0
    #: Seconds between scans of the folder while waiting.
    scan_interval_s: Annotated[float, Field(gt=0, le=60, allow_inf_nan=False)] = 0.5
    #: ``move`` ingested files to ``processed_dir``; ``mark`` leaves them (read-only shares).
    after: Literal["move", "mark"] = "move"
    #: Folder (inside the watched one) for ingested files and duplicates.
    processed_dir: Annotated[str, Field(pattern=_FOLDER_NAME)] = "processed"
    #: Folder (inside the watched one) for files set aside, each with a .reason.txt.
    rejected_dir: Annotated[str, Field(pattern=_FOLDER_NAME)] = "rejected"
    #: Where the hashes of ingested files are kept. Default: <folder>/.hallmark/.
    state_file: Path | None = None
    #: Files larger than this are refused.
    max_bytes: Annotated[int, Field(gt=0)] = 5_000_000
    #: How many file hashes to remember (the oldest are forgotten first).
    remember: Annotated[int, Field(ge=100)] = 100_000
    #: Expanded uncertainty per application (first match wins), recorded as ``uncertainty``.
    uncertainty: list[UncertaintyRule] = Field(default_factory=lambda: [UncertaintyRule()])
    #: The measurement the samples are written under (docs/schema.md).
    measurement: str = "thickness"

    @field_validator("state_file")
    @classmethod
    def _absolute(cls, v: Path | None) -> Path | None:
        if v is not None and not v.is_absolute():
            raise ValueError("give an absolute path")
        return v


def check_options(options: XrfExportOptions) -> list[tuple[str, str]]:
    """Problems beyond the options model: the template must load."""
    try:
        load_template(options.template)
    except ValueError as exc:
        return [("options.template", str(exc))]
    return []


# -- the state file ----------------------------------------------------------------------------


class _State:
    """Hashes of ingested files, and (``mark`` mode) files left in place, on disk as JSON."""

    def __init__(self, path: Path, remember: int) -> None:
        self.path = path
        self.remember = remember
        #: sha256 -> {"name", "at"}; insertion-ordered, oldest first.
        self.hashes: dict[str, dict[str, str]] = {}
        #: file name -> [size, mtime_ns, status]
        self.marked: dict[str, list[Any]] = {}

    def load(self) -> None:
        try:
            raw = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return
        except OSError as exc:
            raise TransportError(f"cannot read the state file {self.path}: {exc}") from exc
        try:
            data = json.loads(raw)
            if not isinstance(data, dict) or data.get("schema") != 1:
                raise ValueError("not a schema-1 state file")
            hashes = data.get("hashes", {})
            marked = data.get("marked", {})
            if not isinstance(hashes, dict) or not isinstance(marked, dict):
                raise ValueError("hashes and marked must be tables")
        except ValueError as exc:
            # Refusing to start would stop a lab over a bookkeeping file; keep it for a look.
            aside = self.path.with_name(f"{self.path.name}.corrupt-{int(time.time())}")
            with contextlib.suppress(OSError):
                self.path.rename(aside)
            log.error("state file %s is unreadable (%s); moved to %s", self.path, exc, aside)
            return
        self.hashes = {str(k): v for k, v in hashes.items() if isinstance(v, dict)}
        self.marked = {str(k): v for k, v in marked.items() if isinstance(v, list)}

    def save(self) -> None:
        while len(self.hashes) > self.remember:
            del self.hashes[next(iter(self.hashes))]
        data = {"schema": 1, "hashes": self.hashes, "marked": self.marked}
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(data, fh, ensure_ascii=False)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except OSError as exc:
            raise TransportError(f"cannot write the state file {self.path}: {exc}") from exc


# -- the driver ----------------------------------------------------------------------------------


@dataclass
class _Watch:
    size: int
    mtime_ns: int
    since: float


class _Refused(Exception):
    """A file set aside before parsing (binary, huge, a link...)."""


class XrfExport:
    """A watched folder of XRF export files. The constructor does no I/O."""

    mode: Mode = "push"

    def __init__(
        self, settings: InstrumentSettings, options: XrfExportOptions, template: Template
    ) -> None:
        self.name = settings.name
        self.settings = settings
        self.options = options
        self.template = template
        self.directory = parse_dir_address(settings.address)
        self.state_path = options.state_file or self.directory / ".hallmark" / _STATE_NAME
        self._state: _State | None = None
        self._watch: dict[str, _Watch] = {}
        self._last_ns = 0
        self._units: dict[str, str] = {}
        self._unreadable: set[str] = set()
        # The file whose samples were handed out last: it is recorded as ingested (hash saved,
        # file moved) only when the runtime comes back for more, i.e. after it has taken them,
        # so a crash in between re-reads the file rather than losing it.
        self._pending: tuple[str, str, os.stat_result] | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def connect(self) -> None:
        """Check the folder is there and load the state. Raises TransportError."""
        self._require_folder()
        state_dir = self.state_path.parent
        try:
            state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise TransportError(
                f"{self.name}: cannot create {state_dir} for the state file ({exc}); set"
                " options.state_file to a writable place"
            ) from exc
        state = _State(self.state_path, self.options.remember)
        state.load()
        self._state = state
        self._watch.clear()
        self._unreadable.clear()
        log.info("%s: watching %s (%s)", self.name, self.directory, self.template.name)

    def close(self) -> None:
        """Record the last file handed out, forget the session. Never raises."""
        with contextlib.suppress(OSError, TransportError):
            self._finish_pending()
        self._state = None
        self._watch.clear()

    def _finish_pending(self) -> None:
        pending, self._pending = self._pending, None
        state = self._state
        if pending is None or state is None:
            return
        digest, name, st = pending
        state.hashes[digest] = {"name": name, "at": _utc_now()}
        self._done(name, st, "ingested")

    def poll(self) -> list[Sample]:
        raise InstrumentError(f"{self.name} pushes its results; it is not polled")

    def receive(self, timeout: float) -> list[Sample]:
        """Samples of the next ready export file, or [] when none is ready within ``timeout``.

        Raises TransportError (folder gone), ProtocolError / UnitError (a file set aside).
        """
        if self._state is None:
            raise TransportError(f"{self.name}: not connected")
        self._finish_pending()
        deadline = time.monotonic() + max(timeout, 0.0)
        while True:
            samples = self._step(deadline)
            if samples:
                return samples
            left = deadline - time.monotonic()
            if left <= 0:
                return []
            time.sleep(min(self.options.scan_interval_s, left))

    # -- scanning ----------------------------------------------------------------------------

    def _require_folder(self) -> None:
        try:
            st = os.stat(self.directory)
        except OSError as exc:
            raise TransportError(
                f"{self.name}: the export folder {self.directory} is not there ({exc.strerror});"
                " is the share mounted?"
            ) from exc
        if not stat.S_ISDIR(st.st_mode):
            raise TransportError(f"{self.name}: {self.directory} is not a folder")

    def _wanted(self, name: str) -> bool:
        low = name.casefold()
        if any(fnmatch.fnmatchcase(low, p.casefold()) for p in self.options.ignore):
            return False
        return any(fnmatch.fnmatchcase(low, p.casefold()) for p in self.options.patterns)

    def _scan(self) -> list[tuple[int, str, bool]]:
        """Ready files as (mtime_ns, name, refuse_now), oldest first."""
        state = self._state
        assert state is not None
        try:
            with os.scandir(self.directory) as it:
                entries = list(it)
        except OSError as exc:
            raise TransportError(
                f"{self.name}: cannot list the export folder {self.directory}"
                f" ({exc.strerror or exc}); is the share mounted?"
            ) from exc
        now = time.monotonic()
        ready: list[tuple[int, str, bool]] = []
        present: set[str] = set()
        for entry in entries:
            name = entry.name
            if not self._wanted(name):
                continue
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue  # gone between listing and looking
            if stat.S_ISDIR(st.st_mode):
                continue
            present.add(name)
            mark = state.marked.get(name)
            if mark is not None and mark[:2] == [st.st_size, st.st_mtime_ns]:
                continue
            if not stat.S_ISREG(st.st_mode):  # a link, a fifo, a device: refused at once
                ready.append((st.st_mtime_ns, name, True))
                continue
            seen = self._watch.get(name)
            if seen is None or (seen.size, seen.mtime_ns) != (st.st_size, st.st_mtime_ns):
                seen = _Watch(st.st_size, st.st_mtime_ns, now)
                self._watch[name] = seen
            if st.st_size > 0 and now - seen.since >= self.options.settle_s:
                ready.append((st.st_mtime_ns, name, False))
        for gone in set(self._watch) - present:
            del self._watch[gone]
        ready.sort()
        return ready

    def _step(self, deadline: float) -> list[Sample] | None:
        """Scan once and ingest ready files until one gives samples (or time is up)."""
        for _, name, refuse in self._scan():
            if refuse:
                self._refuse_link(name)
            samples = self._ingest(name)
            if samples:
                return samples
            if time.monotonic() >= deadline:
                break
        return None

    # -- one file ----------------------------------------------------------------------------

    def _read(self, name: str) -> tuple[bytes, os.stat_result] | None:
        """The file's bytes, or None when it is not ready after all. Raises _Refused."""
        path = self.directory / name
        flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0)
        flags |= getattr(os, "O_CLOEXEC", 0)
        try:
            fd = os.open(path, flags)
        except FileNotFoundError:
            self._watch.pop(name, None)
            return None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise _Refused("it is a symbolic link; Hallmark reads plain files only") from exc
            self._require_folder()
            if name not in self._unreadable:  # a writer holding a lock on a share, say
                log.warning("%s: cannot open %s yet (%s)", self.name, _shown(name), exc.strerror)
                self._unreadable.add(name)
            self._watch.pop(name, None)
            return None
        with os.fdopen(fd, "rb") as fh:
            before = os.fstat(fh.fileno())
            if not stat.S_ISREG(before.st_mode):
                raise _Refused("it is not a regular file")
            limit = self.options.max_bytes
            if before.st_size > limit:
                raise _Refused(
                    f"it is {before.st_size:,} bytes, larger than max_bytes ({limit:,}); an XRF"
                    " export is a few kilobytes"
                )
            try:
                data = fh.read(limit + 1)
            except OSError as exc:
                self._require_folder()
                log.warning("%s: cannot read %s yet (%s)", self.name, _shown(name), exc.strerror)
                self._watch.pop(name, None)
                return None
            after = os.fstat(fh.fileno())
        self._unreadable.discard(name)
        if len(data) > limit:
            raise _Refused(f"it grew past max_bytes ({limit:,} bytes)")
        if (before.st_size, before.st_mtime_ns) != (after.st_size, after.st_mtime_ns) or len(
            data
        ) != after.st_size:
            self._watch.pop(name, None)  # still being written: wait for it to settle again
            return None
        seen = self._watch.get(name)
        if seen is not None and (seen.size, seen.mtime_ns) != (after.st_size, after.st_mtime_ns):
            self._watch.pop(name, None)
            return None
        return data, after

    def _ingest(self, name: str) -> list[Sample]:
        state = self._state
        assert state is not None
        try:
            got = self._read(name)
        except _Refused as exc:
            self._reject(name, str(exc), None)
            raise ProtocolError(f"{_shown(name)}: set aside: {exc}") from None
        if got is None:
            return []
        data, st = got
        self._watch.pop(name, None)
        digest = hashlib.sha256(data).hexdigest()
        known = state.hashes.get(digest)
        if known is not None:
            log.info(
                "%s: %s is a duplicate of %s (ingested %s); skipped",
                self.name,
                _shown(name),
                _shown(str(known.get("name", "?"))),
                known.get("at", "?"),
            )
            self._done(name, st, "duplicate")
            return []
        try:
            series = parse_export(data, self.template)
        except (ProtocolError, UnitError) as exc:
            self._reject(name, str(exc), st)
            raise type(exc)(f"{_shown(name)}: set aside: {exc}") from exc
        samples: list[Sample] = []
        extra: list[tuple[str, FieldValue]] = [("source", name), ("file_sha256", digest[:16])]
        for k, one in enumerate(series, start=1):
            base = max(time.time_ns(), self._last_ns + 1)
            more = [("series", k)] if len(series) > 1 else []
            samples.extend(
                to_samples(
                    one,
                    instrument=self.name,
                    time_ns=base,
                    rules=self.options.uncertainty,
                    measurement=self.options.measurement,
                    extra=[*extra, *more],
                )
            )
            self._last_ns = base + len(one.readings) - 1
        self._pending = (digest, name, st)
        log.info("%s: ingested %s (%d samples)", self.name, _shown(name), len(samples))
        return self._flag_unit_changes(samples)

    def _flag_unit_changes(self, samples: list[Sample]) -> list[Sample]:
        out = []
        for s in samples:
            before = self._units.get(s.channel)
            self._units[s.channel] = s.unit
            if before is not None and before != s.unit:
                out.append(replace(s, flags=(*s.flags, f"unit_changed:{before}->{s.unit}")))
            else:
                out.append(s)
        return out

    # -- after: move, mark, reject -------------------------------------------------------------

    def _done(self, name: str, st: os.stat_result, status: str) -> None:
        """Record an ingested or duplicate file, then move it (or leave it marked)."""
        state = self._state
        assert state is not None
        if self.options.after == "mark":
            state.marked[name] = [st.st_size, st.st_mtime_ns, status]
            state.save()
            return
        state.save()
        target_dir = self.directory / self.options.processed_dir
        try:
            self._move(name, target_dir)
        except OSError as exc:
            self._require_folder()
            # The hash is saved, so the file is never ingested again; leave it marked in place
            # so that it is not tried again at every scan either.
            log.warning("%s: cannot move %s to %s: %s", self.name, _shown(name), target_dir, exc)
            state.marked[name] = [st.st_size, st.st_mtime_ns, status]
            state.save()

    def _move(self, name: str, target_dir: Path) -> str:
        target_dir.mkdir(exist_ok=True)
        final = _free_name(target_dir, name)
        os.rename(self.directory / name, target_dir / final)
        return final

    def _reject(self, name: str, reason: str, st: os.stat_result | None) -> None:
        """Set a bad file aside with a plain-words reason. Never raises for the file's sake."""
        state = self._state
        assert state is not None
        self._watch.pop(name, None)
        log.warning("%s: %s set aside: %s", self.name, _shown(name), reason)
        if self.options.after == "mark":
            if st is None:
                with contextlib.suppress(OSError):
                    st = os.lstat(self.directory / name)
            if st is not None:
                state.marked[name] = [st.st_size, st.st_mtime_ns, "rejected"]
                state.save()
            note_dir, final = self.state_path.parent / "rejected", name
        else:
            note_dir = self.directory / self.options.rejected_dir
            try:
                final = self._move(name, note_dir)
            except OSError as exc:
                self._require_folder()
                log.error("%s: cannot move %s to %s: %s", self.name, _shown(name), note_dir, exc)
                with contextlib.suppress(OSError):
                    st = st or os.lstat(self.directory / name)
                    state.marked[name] = [st.st_size, st.st_mtime_ns, "rejected"]
                    state.save()
                return
        try:
            note_dir.mkdir(parents=True, exist_ok=True)
            (note_dir / f"{final}.reason.txt").write_text(
                _reason_text(name, self.name, self.directory, reason), encoding="utf-8"
            )
        except OSError as exc:
            log.error("%s: cannot write the reason for %s: %s", self.name, _shown(name), exc)

    def _refuse_link(self, name: str) -> None:
        path = self.directory / name
        try:
            st = os.lstat(path)
        except OSError:
            return
        if stat.S_ISLNK(st.st_mode):
            try:
                target = os.path.realpath(path)
            except OSError:
                target = "?"
            inside = os.path.commonpath([target, os.path.realpath(self.directory)]) == str(
                os.path.realpath(self.directory)
            )
            where = "inside" if inside else "outside"
            reason = (
                f"it is a symbolic link (to {_shown(target)}, {where} the watched folder);"
                " Hallmark reads plain files only"
            )
        else:
            reason = "it is not a regular file (a pipe, socket or device)"
        self._reject(name, reason, st)
        raise ProtocolError(f"{_shown(name)}: set aside: {reason}")


def _free_name(folder: Path, name: str) -> str:
    """``name``, or ``stem-1.ext``, ``stem-2.ext``... whichever is free in ``folder``."""
    if not os.path.lexists(folder / name):
        return name
    stem, dot, ext = name.rpartition(".")
    if not dot:
        stem, ext = name, ""
    for i in range(1, 100_000):
        candidate = f"{stem}-{i}.{ext}" if dot else f"{stem}-{i}"
        if not os.path.lexists(folder / candidate):
            return candidate
    return f"{name}-{time.time_ns()}"


def _shown(name: str) -> str:
    """A file name fit for a log line or a message: as it is when plain, else quoted with its
    control characters escaped, so that a name holding a newline cannot forge log lines."""
    if name.isprintable():
        return name
    return repr(name)


def _utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _reason_text(name: str, instrument: str, folder: Path, reason: str) -> str:
    return (
        "Hallmark did not take the results in this file.\n\n"
        f"File:        {_shown(name)}\n"
        f"Instrument:  {instrument}\n"
        f"When:        {_utc_now()}\n"
        f"Why:         {reason}\n\n"
        "Nothing from this file was recorded. Correct it (or the instrument's template in the\n"
        f"Hallmark config) and copy it back into {folder}, or measure the part again.\n"
    )


def build(settings: InstrumentSettings, options: XrfExportOptions) -> XrfExport:
    """Build the driver with its template (no I/O beyond reading the template)."""
    return XrfExport(settings, options, load_template(options.template))
