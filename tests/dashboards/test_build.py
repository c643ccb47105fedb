"""The committed dashboards are what dashboards/build.py makes, and they are well formed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from grafanalib import core as g
from grafanalib._gen import DashboardEncoder
from grafanalib.influxdb import InfluxDBTarget

from dashboards import build

DASHBOARD_FILES = sorted((build.ROOT / "json").glob("*.json"))


def _load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def test_committed_files_equal_the_builder_output():
    rendered = build.render()
    committed = {
        str(p.relative_to(build.ROOT)): p.read_text(encoding="utf-8")
        for p in [*DASHBOARD_FILES, *(build.ROOT / "provisioning").rglob("*.yaml")]
    }
    assert committed == rendered, "run `python -m dashboards.build` and commit the result"


def test_main_writes_the_same_files(tmp_path):
    assert build.main([str(tmp_path)]) == 0
    for rel, text in build.render().items():
        assert (tmp_path / rel).read_text(encoding="utf-8") == text


def test_six_dashboards_with_unique_uids_and_titles():
    boards = [_load(p) for p in DASHBOARD_FILES]
    assert len(boards) == 6
    assert len({b["uid"] for b in boards}) == 6
    assert len({b["title"] for b in boards}) == 6
    for path, board in zip(DASHBOARD_FILES, boards, strict=True):
        assert path.stem == board["uid"]


@pytest.mark.parametrize("path", DASHBOARD_FILES, ids=lambda p: p.stem)
def test_panels_have_datasource_targets_and_unique_ids(path):
    board = _load(path)
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    for panel in board["panels"]:
        assert panel["datasource"] == build.DATASOURCE, panel["title"]
        assert panel["targets"], panel["title"]
        refs = [t["refId"] for t in panel["targets"]]
        assert len(refs) == len(set(refs)), panel["title"]
        for t in panel["targets"]:
            assert t["datasource"] == build.DATASOURCE
            assert t["rawQuery"] is True
            assert "$timeFilter" in t["query"], t["query"]
        gp = panel["gridPos"]
        assert gp["x"] >= 0 and gp["x"] + gp["w"] <= 24


@pytest.mark.parametrize("path", DASHBOARD_FILES, ids=lambda p: p.stem)
def test_json_round_trips_through_grafanalib_models(path):
    board = _load(path)
    for panel in board["panels"]:
        for t in panel["targets"]:
            model = InfluxDBTarget(
                query=t["query"],
                refId=t["refId"],
                alias=t["alias"],
                format=t["resultFormat"],
                datasource=t["datasource"],
                measurement=t["measurement"],
                rawQuery=t["rawQuery"],
            )
            assert _as_json(model) == t
    templating = board["templating"]["list"]
    assert templating[0]["name"] == "datasource" and templating[0]["type"] == "datasource"
    for var in templating:
        model = g.Template(
            name=var["name"],
            query=var["query"],
            default=var["current"]["value"],
            dataSource=var["datasource"],
            label=var["label"],
            allValue=var["allValue"],
            includeAll=var["includeAll"],
            multi=var["multi"],
            options=var["options"],
            regex=var["regex"],
            refresh=var["refresh"],
            type=var["type"],
            hide=var["hide"],
            sort=var["sort"],
        )
        assert _as_json(model) == var
    rebuilt = g.Dashboard(
        title=board["title"],
        uid=board["uid"],
        description=board["description"],
        tags=board["tags"],
        panels=board["panels"],
        templating=g.Templating(list=board["templating"]["list"]),
        annotations=g.Annotations(list=board["annotations"]["list"]),
        time=g.Time(board["time"]["from"], board["time"]["to"]),
        timezone=board["timezone"],
        refresh=board["refresh"],
        schemaVersion=board["schemaVersion"],
        graphTooltip=board["graphTooltip"],
    )
    assert _as_json(rebuilt) == board


def test_query_variables_use_the_datasource_variable():
    for path in DASHBOARD_FILES:
        board = _load(path)
        for var in board["templating"]["list"][1:]:
            assert var["type"] == "query"
            assert var["datasource"] == build.DATASOURCE
            assert var["query"].startswith("SHOW TAG VALUES")
        for ann in board["annotations"]["list"]:
            assert ann["datasource"] == build.DATASOURCE


def test_provisioning_points_at_the_dashboards_and_the_datasource():
    files = build.render()
    datasource = files["provisioning/datasources/hallmark.yaml"]
    assert f"uid: {build.DATASOURCE_UID}" in datasource
    assert "version: InfluxQL" in datasource
    assert "${INFLUX_URL}" in datasource and "${INFLUX_DB}" in datasource
    assert "type: file" in files["provisioning/dashboards/hallmark.yaml"]


def _as_json(model: Any) -> Any:
    return json.loads(json.dumps(model, cls=DashboardEncoder))


def test_compose_mounts_match_the_provisioning():
    import yaml  # PyYAML comes with pyvisa-sim, a dev dependency

    compose = yaml.safe_load((build.ROOT.parent / "docker-compose.yml").read_text())
    grafana = compose["services"]["grafana"]
    mounts = {m.split(":")[1]: m.split(":")[0] for m in grafana["volumes"]}
    assert mounts["/etc/grafana/provisioning"] == "./dashboards/provisioning"
    provider = yaml.safe_load(build.render()["provisioning/dashboards/hallmark.yaml"])
    assert mounts[provider["providers"][0]["options"]["path"]] == "./dashboards/json"
    datasource = yaml.safe_load(build.render()["provisioning/datasources/hallmark.yaml"])
    (ds,) = datasource["datasources"]
    assert ds["uid"] == build.DATASOURCE_UID and ds["jsonData"]["version"] == "InfluxQL"
    for var in ("INFLUX_URL", "INFLUX_DB", "INFLUX_TOKEN"):
        assert var in grafana["environment"]
    influx = compose["services"]["influxdb"]
    assert influx["image"].startswith("influxdb:2")
    assert "./dashboards/influxdb-init:/docker-entrypoint-initdb.d:ro" in influx["volumes"]
    script = (build.ROOT / "influxdb-init" / "10-dbrp.sh").read_text()
    assert "influx v1 dbrp create" in script
    assert influx["environment"]["HALLMARK_INFLUX_DB"] == grafana["environment"]["INFLUX_DB"]


def test_compose_keeps_no_secret():
    text = (build.ROOT.parent / "docker-compose.yml").read_text()
    assert "${HALLMARK_INFLUX_TOKEN:?" in text and "${HALLMARK_INFLUX_PASSWORD:?" in text
    assert ":-" not in text.split("HALLMARK_INFLUX_TOKEN")[1].split("}")[0]
