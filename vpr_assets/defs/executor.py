"""How the steps of a run execute, for every job of the code location without its own executor
(UI and CLI materialisations, sensors, backfills).

`forkserver` (default): steps are forked from a server process that imported the code location
once, instead of each step starting Python and importing Dagster, torch and the project again
(seconds per step). `bench/bench_run_overhead.py` measures a 6-step per-batch chain: spawn
282 s, forkserver 64 s, in-process 31 s (3 cards, loaded 2-core machine). Steps keep their own
processes (a crash stays in its step; pools and retries work as before). `spawn` is the plain
multiprocess way; `in_process` runs every step in the run's process (fastest, no isolation).
Choose per run in the launchpad: `execution: {config: {mode: in_process}}`.
"""

import dagster as dg

PRELOAD = ["vpr_assets.definitions"]


@dg.configured(
    dg.multi_or_in_process_executor,
    config_schema={
        "mode": dg.Field(dg.Enum("ExecutionMode", [dg.EnumValue("forkserver"), dg.EnumValue("spawn"),
                                                   dg.EnumValue("in_process")]), default_value="forkserver"),
        "max_concurrent": dg.Field(int, default_value=0, description="steps at once (0: one per CPU)"),
    },
)
def step_executor(config):
    mode = config.get("mode", "forkserver")
    if mode == "in_process":
        return {"in_process": {}}
    start = {"forkserver": {"preload_modules": PRELOAD}} if mode == "forkserver" else {"spawn": {}}
    return {"multiprocess": {"max_concurrent": config.get("max_concurrent", 0), "start_method": start}}
