"""Composition: a validated bench config turned into a running Runtime.

This is the one module of the core that knows the drivers exist (through drivers/registry.py);
the runtime, journal, judge and forwarder below it never import them.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

from daq.benchstate import BenchState
from daq.config import Config, load_config, read_secret
from daq.driftwatch import DriftWatch
from daq.errors import ConfigError, ConfigProblem, HallmarkError
from daq.forwarder import Forwarder
from daq.journal import Journal
from daq.judging import JudgeStage
from daq.lots import LotStore
from daq.model import Limits, Measurement, Point
from daq.quality.drift import DriftSettings
from daq.runs import RunStore, cabinets
from daq.runtime import Runtime, RuntimeSettings, Scheduled
from daq.runwatch import RunWatch
from daq.sinks import InfluxV1Sink, InfluxV2Sink, Sink
from daq.skuspec import SpecLibrary
from daq.specs import ConfiguredLimits
from daq.status import notify, status_path, write_status
from drivers.registry import build_driver, check_instrument, check_rtu_lines
from drivers.transport.rtu_line import line_stats

__all__ = ["build_sink", "configure_logging", "load", "run_bench"]

log = logging.getLogger(__name__)


def configure_logging(level: int = logging.INFO) -> None:
    """One line per message, with the time, the level and the part that speaks."""
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        datefmt="%Y-%m-%dT%H:%M:%S",
    )
    # pymodbus logs every failed transaction at ERROR; the runtime already says it in words.
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)


def load(path: Path) -> Config:
    """Load a bench config, checking every instrument with its driver and every RS-485 line
    (conflicting serial settings are problems; a line polled beyond its capacity is logged)."""
    config = load_config(path, check_instrument)
    findings = check_rtu_lines(config.instrument)
    errors = [ConfigProblem(str(path), "address", str(f)) for f in findings if f.level == "error"]
    if errors:
        raise ConfigError(errors)
    for f in findings:
        if f.level == "warning":
            log.warning("%s", f)
        else:
            log.info("%s", f)
    return config


def line_findings(config: Config) -> list[str]:
    """The RS-485 lines' capacity warnings and notes, in words (for ``daq check``)."""
    return [f"{f.level}: {f}" for f in check_rtu_lines(config.instrument) if f.level != "error"]


def build_sink(config: Config) -> Sink | None:
    """The database sink the config asks for, or None when the journal is the store."""
    influx = config.influx
    if influx is None:
        return None
    if influx.api == "v1":
        assert influx.database is not None
        return InfluxV1Sink(
            influx.url,
            influx.database,
            retention_policy=influx.retention_policy,
            username=influx.username,
            password=read_secret(influx.password_env, influx.password_file),
            timeout=influx.timeout,
            create_database=influx.create_database,
            verify_tls=influx.verify_tls,
        )
    token = read_secret(influx.token_env, influx.token_file)
    assert influx.bucket is not None and influx.org is not None and token is not None
    return InfluxV2Sink(
        influx.url,
        influx.bucket,
        influx.org,
        token,
        timeout=influx.timeout,
        verify_tls=influx.verify_tls,
    )


def build_runtime(
    config: Config,
    base: Path,
    journal: Journal,
    observer: Callable[[Measurement], None] | None = None,
) -> Runtime:
    instruments = [
        Scheduled(build_driver(inst), inst.poll_interval)
        for inst in config.instrument
        if inst.enabled
    ]
    sink = build_sink(config)
    forwarders = []
    if sink is not None and config.influx is not None:
        forwarders.append(
            Forwarder(
                journal,
                sink,
                batch_size=config.influx.batch_size,
                flush_interval=config.influx.flush_interval,
            )
        )
    state = BenchState(LotStore(journal.path), config.lot.context())
    periodic: list[Callable[[], list[Point]]] = [partial(rtu_line_health, config.bench.id)]
    if cabinets(config):
        periodic.append(RunWatch(config, journal, RunStore(journal.path)).tick)
    zones = {(c.zone, c.zone_channel) for c in config.cabinet} if config.cabinet else None
    return Runtime(
        RuntimeSettings(
            bench=config.bench.id,
            health_interval=config.bench.health_interval,
            reconnect_cap=config.bench.reconnect_max,
            retention_days=config.journal.retention_days,
        ),
        instruments,
        journal=journal,
        judge=judge_stage(config, base, state),
        context=state.context,
        forwarders=forwarders,
        observer=observer,
        drift=drift_watch(config, state, journal),
        periodic=periodic,
        exposure_zones=zones,
    )


def rtu_line_health(bench: str) -> list[Point]:
    """``daq_health`` points for each shared RS-485 line in use (component ``rtu_line``)."""
    now = time.time_ns()
    return [
        Point(
            "daq_health",
            {"bench": bench, "component": "rtu_line", "line": s.device},
            {
                "users": s.users,
                "transactions": s.transactions,
                "timeouts": s.timeouts,
                "failures": s.failures,
                "queued": s.queued,
                "busy_fraction": s.busy_fraction,
            },
            now,
        )
        for s in line_stats()
        if s.open
    ]


def drift_watch(config: Config, state: BenchState, journal: Journal) -> DriftWatch | None:
    """The drift watch the config asks for, or None when it is switched off."""
    d = config.drift
    if not d.enabled:
        return None
    settings = DriftSettings(
        cusum_k=d.cusum_k,
        cusum_h=d.cusum_h,
        ewma_lambda=d.ewma_lambda,
        ewma_L=d.ewma_L,
        rules=d.rules,  # type: ignore[arg-type]  # validated against the rule ids above
    )
    return DriftWatch(config.bench.id, state.baseline_figures, journal.lot_points, settings)


def judge_stage(config: Config, base: Path, state: BenchState) -> JudgeStage:
    """The judge for this bench: SKU spec files first, then the config's instrument limits."""
    limits: dict[str, dict[str, Limits]] = {
        inst.name: {ch: lc.limits() for ch, lc in inst.limits.items()} for inst in config.instrument
    }
    specs = SpecLibrary.load(
        config.specs_path(base), fallback=ConfiguredLimits(limits, rev=config.lot.spec_rev)
    )
    due = {i.name: i.calibration_due for i in config.instrument if i.calibration_due}
    return JudgeStage(config.bench.id, specs, calibration_due=due, baseline=state.baseline)


async def run_bench(
    config: Config,
    base: Path,
    duration: float | None = None,
    *,
    observer: Callable[[Measurement], None] | None = None,
    on_started: Callable[[Runtime], None] | None = None,
    reload: Callable[[], Config] | None = None,
) -> Runtime:
    """Run a bench until SIGTERM/SIGINT or ``duration``; returns the last runtime.

    With ``reload``, SIGHUP re-reads the config: a config with problems is refused in the log
    and the bench goes on as it was; a good one replaces the running instruments after the
    current runtime has committed every accepted reading to the journal (nothing buffered is
    lost, and the forwarders continue from their cursors). The journal's path cannot change on
    a reload.
    """
    loop = asyncio.get_running_loop()
    deadline = None if duration is None else loop.time() + duration
    stopping = asyncio.Event()
    pending: list[Config] = []  # a re-read config waiting to replace the running one
    current: list[Runtime] = []
    checks: set[asyncio.Task[None]] = set()

    def stop() -> None:
        stopping.set()
        for rt in current:
            rt.stop()

    async def check_new_config() -> None:
        assert reload is not None
        notify("RELOADING=1")
        new = await asyncio.to_thread(_reloaded, config, reload)
        if new is not None and not stopping.is_set():
            pending[:] = [new]
            for rt in current:
                rt.stop()
        else:
            notify("READY=1")

    def hangup() -> None:
        task = loop.create_task(check_new_config())
        checks.add(task)
        task.add_done_callback(checks.discard)

    # Handlers in place before: put back after (remove_signal_handler would leave the default
    # action, so a late second SIGTERM would kill a process that has already stopped cleanly).
    handled = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
    previous = {sig: signal.getsignal(sig) for sig in handled}
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop)
    if reload is not None:
        loop.add_signal_handler(signal.SIGHUP, hangup)
    try:
        while True:
            remaining = None if deadline is None else max(0.0, deadline - loop.time())
            runtime = await _run_once(
                config, base, remaining, observer=observer, on_started=on_started, current=current
            )
            if stopping.is_set() or not pending:
                return runtime
            config = pending.pop()
            on_started = None
    finally:
        notify("STOPPING=1")
        for sig in handled:
            loop.remove_signal_handler(sig)
            if previous[sig] is not None:
                signal.signal(sig, previous[sig])
        for task in list(checks):
            task.cancel()


def _reloaded(config: Config, reload: Callable[[], Config]) -> Config | None:
    """The re-read config, or None (said in the log) when it cannot replace the running one."""
    try:
        new = reload()
    except ConfigError as exc:
        for problem in exc.problems:
            log.error("reload refused: %s", problem)
        log.error("reload refused: the bench keeps running with its previous config")
        return None
    except HallmarkError as exc:
        log.error("reload refused: %s; the bench keeps running with its previous config", exc)
        return None
    if new.journal.path != config.journal.path:
        log.error(
            "reload refused: the journal path changed (%s -> %s); restart the service to move"
            " the journal",
            config.journal.path,
            new.journal.path,
        )
        return None
    log.info("config reloaded: %d instrument(s)", sum(1 for i in new.instrument if i.enabled))
    return new


async def _run_once(
    config: Config,
    base: Path,
    duration: float | None,
    *,
    observer: Callable[[Measurement], None] | None,
    on_started: Callable[[Runtime], None] | None,
    current: list[Runtime],
) -> Runtime:
    path = config.journal_path(base)
    with Journal(path, synchronous=config.journal.synchronous) as journal:
        runtime = build_runtime(config, base, journal, observer)
        where = status_path(path)

        def report(rt: Runtime) -> None:
            write_status(where, rt.status())
            notify("WATCHDOG=1")

        runtime.on_health = report
        log.info(
            "bench %s: %d instrument(s), journal %s, %s",
            config.bench.id,
            len(runtime.instruments),
            path,
            "forwarding to " + runtime.forwarders[0].key
            if runtime.forwarders
            else "no database (the journal is the store)",
        )
        if on_started is not None:
            on_started(runtime)
        notify(f"READY=1\nSTATUS=bench {config.bench.id}: {len(runtime.instruments)} instrument(s)")
        current[:] = [runtime]
        # What start-up loaded (modules, config, drivers, spec files) lives as long as the
        # runtime: kept out of the garbage collector's scans, so a collection costs what the
        # readings allocate, not what the daemon holds (gc.freeze, for long-lived processes).
        gc.freeze()
        try:
            await runtime.run(duration)
        finally:
            current.clear()
            gc.unfreeze()  # a reload's old runtime can be collected
        for name, h in runtime.health.items():
            log.info(
                "%s: %d polls, %d measurements, %d errors, %d reconnects, %d missed polls",
                name,
                h.polls,
                h.measurements,
                h.errors,
                h.reconnects,
                h.missed,
            )
        for f in runtime.forwarders:
            log.info(
                "%s: %d written, %d quarantined, %d still waiting in the journal",
                f.key,
                f.stats.written,
                f.stats.quarantined,
                journal.backlog(f.key),
            )
    return runtime
