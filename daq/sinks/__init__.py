"""Where the forwarder writes: InfluxDB 1.x (``/write``) and the InfluxDB v2 write API.

Each sink is a small synchronous object (``open``, ``write``, ``close``) behind the ``Sink``
protocol, so the forwarder is written once and the database can change by configuration.
Failures come out as the sink errors of ``daq/errors.py``, already classified as retry later,
split the batch, or quarantine the data.
"""

from daq.sinks.base import Sink
from daq.sinks.influx_v1 import InfluxV1Sink
from daq.sinks.influx_v2 import InfluxV2Sink

__all__ = ["InfluxV1Sink", "InfluxV2Sink", "Sink"]
