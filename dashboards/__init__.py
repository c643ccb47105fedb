"""Hallmark's Grafana dashboards, written as code (``dashboards/build.py``).

``python -m dashboards.build`` regenerates the JSON under ``dashboards/json/`` and the Grafana
provisioning files under ``dashboards/provisioning/``. The queries are InfluxQL over the schema
of ``docs/schema.md``; see ``docs/decisions/0005-dashboards-as-code.md``.
"""
