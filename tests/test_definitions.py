"""The code location loads and names what the data team relies on."""

from dagster import AssetKey

from lowincome.feeds import FEEDS
from pipelines.definitions import defs


def test_definitions_load_with_jobs_schedules_sensors():
    assert defs.resolve_job_def("nightly") is not None
    assert defs.resolve_schedule_def("nightly_0200").cron_schedule == "0 2 * * *"
    assert defs.resolve_schedule_def("nightly_0200").execution_timezone == "Asia/Shanghai"
    assert defs.resolve_sensor_def("inbox_sensor") is not None
    keys = set(defs.resolve_asset_graph().get_all_asset_keys())
    for feed in FEEDS:
        assert AssetKey(["staging", feed]) in keys
    assert AssetKey(["publish", "warehouse"]) in keys


def test_every_asset_has_group_description_and_partitions():
    graph = defs.resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        assert node.group_name and node.group_name != "default", key
        assert node.description, key
        assert node.partitions_def is not None, key
