"""Where the judge gets its limits: the seam between the pipeline and the written spec.

The runtime asks a ``SpecSource`` for the limits of each feature in the lot context of the
moment. This first cut, ``ConfiguredLimits``, takes per-instrument, per-channel limits from the
bench config. Per-SKU spec files with revisions, golden-sample baselines and drift plug in here
as another ``SpecSource`` without touching the runtime.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from daq.model import Limits, LotContext

__all__ = ["ConfiguredLimits", "SpecSource"]


class SpecSource(Protocol):
    """Gives the limits in force for one feature of one instrument in a lot context."""

    def limits_for(
        self, instrument: str, measurement: str, feature: str, context: LotContext
    ) -> Limits | None:
        """The limits for this feature, or None when the feature is recorded, not judged."""
        ...

    def revision(self, context: LotContext) -> str | None:
        """The spec revision in force for this context (tagged as ``spec_rev``)."""
        ...


class ConfiguredLimits:
    """Limits written in the bench config: ``{instrument: {channel: Limits}}``."""

    def __init__(self, limits: Mapping[str, Mapping[str, Limits]], rev: str | None = None) -> None:
        self._limits = {name: dict(chans) for name, chans in limits.items()}
        self._rev = rev

    def limits_for(
        self, instrument: str, measurement: str, feature: str, context: LotContext
    ) -> Limits | None:
        return self._limits.get(instrument, {}).get(feature)

    def revision(self, context: LotContext) -> str | None:
        return context.spec_rev or self._rev
