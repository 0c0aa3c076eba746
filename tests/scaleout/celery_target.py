"""The reconstructable target of the Celery test, and its launcher (`python -m tests.scaleout.celery_target`).

Celery workers rebuild the job from a code pointer (this module's `per_batch_celery_job_def`), so the
job must be importable by name in every process: the launcher, each worker.
"""

import json
import sys

import dagster as dg

JOB_NAME = "per_batch_celery_job"


def code_location() -> dg.Definitions:
    """The code location with the distributed jobs (added here while definitions.py does not list them)."""
    from vpr_assets.definitions import defs
    from vpr_assets.defs.jobs import jobs

    if any(getattr(j, "name", None) == JOB_NAME for j in (defs.jobs or [])):
        return defs
    return dg.Definitions.merge(defs, dg.Definitions(jobs=jobs))


def per_batch_celery_job_def() -> dg.JobDefinition:
    return code_location().resolve_job_def(JOB_NAME)


def main(argv: list) -> int:
    """Run one partition of the job through the Celery executor; print the run id and outcome as JSON."""
    from dagster._utils.merger import deep_merge_dicts
    from dagster_shared.yaml_utils import load_yaml_from_path

    from tests.scaleout.celery_target import per_batch_celery_job_def as target  # by module name, not __main__

    partition, config_yaml, assets = argv[0], argv[1], argv[2].split(",")
    run_config = load_yaml_from_path(config_yaml)
    run_config = deep_merge_dicts(run_config, {"ops": {"image_embeddings": {"config": {"num_workers": 0}}}}) \
        if "image_embeddings" in assets else run_config
    with dg.DagsterInstance.get() as instance:
        result = dg.execute_job(
            dg.reconstructable(target), instance=instance, run_config=run_config,
            tags={"dagster/partition": partition}, asset_selection=[dg.AssetKey(a) for a in assets],
        )
        print(json.dumps({"run_id": result.run_id, "success": result.success}), flush=True)
    return 0 if result.success else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
