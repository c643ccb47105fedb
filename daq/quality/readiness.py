"""``daq po-check``: is this SKU's process locked down well enough to approve bulk production?

The founder's question before approving a purchase order. Pure: it looks at the spec file, the
baselines and the lots it is given, and answers with a list of items, each locked or missing,
in plain words. Approving a sample approves the outcome, not the process; these items are what
it takes to have the process written down and checked.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from daq.lots import Baseline, Lot
from daq.skuspec import SpecFile

__all__ = ["ReadinessItem", "readiness"]

#: Categories worn with hardware (clasps, jump rings, bails) whose parts must be named.
_HARDWARE_CATEGORIES = {"necklace", "bracelet", "pendant", "earrings", "anklet"}
_CHAIN_CATEGORIES = {"necklace", "bracelet", "anklet"}


@dataclass(frozen=True, slots=True)
class ReadinessItem:
    name: str
    ok: bool
    detail: str


def readiness(
    sku: str,
    spec: SpecFile | None,
    baselines: Sequence[Baseline],
    lots: Sequence[Lot],
    revision_problem: str | None = None,
) -> list[ReadinessItem]:
    """Every item a purchase order needs, locked (ok) or missing, for one SKU."""
    if spec is None:
        return [ReadinessItem("spec", False, f"no spec file for {sku}: write one in config/specs/")]
    s = spec.spec
    items = [
        ReadinessItem(
            "spec revision",
            revision_problem is None,
            revision_problem or f"{sku} revision {s.revision} ({spec.path.name})",
        )
    ]
    missing = _missing_criteria(spec)
    items.append(
        ReadinessItem(
            "QC criteria",
            not missing,
            "every criterion has its limit" if not missing else "missing: " + "; ".join(missing),
        )
    )
    features = sorted(s.features())
    have = {(b.measurement, b.feature) for b in baselines}
    lacking = [f"{m} {f}" for m, f in features if (m, f) not in have]
    items.append(
        ReadinessItem(
            "golden-sample baseline",
            not lacking and bool(features),
            (
                f"baselines for all {len(features)} tested features"
                if not lacking
                else "no golden-sample baseline for: " + ", ".join(lacking)
            ),
        )
    )
    items.append(_pre_production(s.revision, lots))
    items.append(_hardware(spec))
    t = s.testing
    items.append(
        ReadinessItem(
            "testing agreed",
            t is not None,
            (
                f"agreed with {t.agreed_with} on {t.agreed_on.isoformat()}"
                f" ({len(t.requirements)} requirements)"
                if t is not None
                else "no [testing] section: agree the tests with the factory before the PO"
            ),
        )
    )
    p = s.process
    items.append(
        ReadinessItem(
            "process written",
            p is not None and bool(p.step),
            (
                f"{len(p.step)} steps, {sum(st.hand_finished for st in p.step)} hand-finished"
                if p is not None and p.step
                else "no [process] steps: write how the sample was built and how production"
                " will build it"
            ),
        )
    )
    return items


def _missing_criteria(spec: SpecFile) -> list[str]:
    s = spec.spec
    missing = []
    for stone in s.stone:
        if stone.retention_min is None:
            missing.append(f"retention minimum for the {stone.position} stone")
    if s.category in _CHAIN_CATEGORIES and s.mechanical.jump_ring_pull_min is None:
        missing.append("jump-ring pull minimum")
    if s.children and not s.hold:
        missing.append("use-and-abuse torque/tension holds for a children's item")
    if s.plating and s.corrosion is None:
        missing.append("salt-spray hours and rating for a plated item")
    if not s.defects.code:
        missing.append("defect codes with their classes")
    if not s.finishing and not s.children:
        missing.append("finishing standard")
    return missing


def _pre_production(revision: str, lots: Sequence[Lot]) -> ReadinessItem:
    pre = [lot for lot in lots if lot.phase == "pre-production" and lot.closed_ns is not None]
    current = [lot for lot in pre if lot.spec_rev == revision]
    if not pre:
        return ReadinessItem(
            "pre-production lot",
            False,
            "no pre-production lot measured: measure production-equivalent samples, not the"
            " showroom sample",
        )
    if not current:
        return ReadinessItem(
            "pre-production lot",
            False,
            f"no pre-production lot under the current revision {revision}",
        )
    good = [
        lot
        for lot in current
        if lot.decision == "accept" and not (lot.evidence or {}).get("drift_alarms")
    ]
    if not good:
        last = current[-1]
        why = "rejected" if last.decision != "accept" else "drifted from the golden sample"
        return ReadinessItem("pre-production lot", False, f"lot {last.lot} {why}")
    return ReadinessItem(
        "pre-production lot",
        True,
        f"lot {good[-1].lot} accepted under revision {revision}, within the baseline",
    )


def _hardware(spec: SpecFile) -> ReadinessItem:
    s = spec.spec
    if s.category not in _HARDWARE_CATEGORIES and not s.hardware:
        return ReadinessItem("hardware", True, f"no hardware on a {s.category}")
    if not s.hardware:
        return ReadinessItem(
            "hardware", False, "no [[hardware]] parts named: clasps and findings get swapped"
        )
    loose = [h.part for h in s.hardware if not h.no_substitution]
    if loose:
        return ReadinessItem("hardware", False, "substitution allowed for: " + ", ".join(loose))
    return ReadinessItem(
        "hardware",
        True,
        ", ".join(f"{h.part} {h.part_number}" for h in s.hardware) + " (no substitution)",
    )
