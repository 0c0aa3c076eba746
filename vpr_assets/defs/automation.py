"""Automation switch: sensors run by default in `dagster dev`; VPR_AUTOMATION=off starts them stopped
(maintenance windows, tests that drive runs by hand). Either way they can be toggled in the UI."""

import os

import dagster as dg


def default_sensor_status() -> dg.DefaultSensorStatus:
    off = os.environ.get("VPR_AUTOMATION", "on").strip().lower() in {"off", "0", "false", "no"}
    return dg.DefaultSensorStatus.STOPPED if off else dg.DefaultSensorStatus.RUNNING
