from datetime import date

from daq.judging import JudgeStage
from daq.model import Limits, LotContext, Reading, Sample
from daq.specs import ConfiguredLimits

SPEC = ConfiguredLimits({"xrf": {"layer_Au": Limits(low=2.5, uncertainty=0.125)}})


def reading(value, scaled=(), instrument="xrf"):
    s = Sample(instrument, "thickness", "layer_Au", "length", value, "µm", 1, scaled=scaled)
    return Reading(s, value, "µm", scaled)


def test_stated_uncertainty_widens_the_guard_band():
    stage = JudgeStage("b", SPEC)
    assert stage.judge(reading(2.7), LotContext()).verdict.status == "pass"
    wide = stage.judge(reading(2.7, (("uncertainty", 0.3),)), LotContext())
    assert wide.verdict.status == "marginal"
    narrow = stage.judge(reading(2.7, (("uncertainty", 0.05),)), LotContext())
    assert narrow.verdict.status == "pass"  # the spec's 0.125 still applies


def test_overdue_calibration_cannot_pass():
    stage = JudgeStage(
        "b", SPEC, calibration_due={"xrf": date(2026, 1, 1)}, today=lambda: date(2026, 1, 2)
    )
    m = stage.judge(reading(3.0), LotContext())
    assert m.verdict.status == "suspect"
    assert m.verdict.reason == "instrument calibration was due 2026-01-01"
    assert stage.judge(reading(2.0), LotContext()).verdict.status == "fail"
    on_time = JudgeStage(
        "b", SPEC, calibration_due={"xrf": date(2026, 1, 1)}, today=lambda: date(2026, 1, 1)
    )
    assert on_time.judge(reading(3.0), LotContext()).verdict.status == "pass"


def test_spec_rev_is_tagged():
    stage = JudgeStage("b", ConfiguredLimits({}, rev="C"))
    m = stage.judge(reading(3.0), LotContext(sku="S", lot="L"))
    assert m.context.spec_rev == "C"
    assert m.to_point().tags["spec_rev"] == "C"


def test_a_hold_that_did_not_hold_fails():
    spec = ConfiguredLimits({"tt": {"charm_torque": Limits(low=0.45)}})
    s = Sample(
        "tt",
        "torque",
        "charm_torque",
        "torque",
        0.5,
        "N·m",
        1,
        extra=(("held", False), ("test_reason", "released after 6.2 s of 10 s")),
    )
    m = JudgeStage("b", spec).judge(Reading(s, 0.5, "N·m"), LotContext())
    assert m.verdict.status == "fail"
    assert m.verdict.reason == "released after 6.2 s of 10 s"
    ok = Sample("tt", "torque", "charm_torque", "torque", 0.5, "N·m", 1, extra=(("held", True),))
    assert (
        JudgeStage("b", spec).judge(Reading(ok, 0.5, "N·m"), LotContext()).verdict.status == "pass"
    )
