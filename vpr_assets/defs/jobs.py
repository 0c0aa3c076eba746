"""Jobs for the distributed path: the per-batch assets, one step per asset, on Celery or Kubernetes.

The assets, resources and partitions are the same as on a single machine; only the executor
changes. A run still covers one `scan_batches` partition (one batch), so a backfill of N batches is N
runs, and the steps of every run (ingest, checks, OCR, embeddings, ...) go to whichever worker is free.

- `per_batch_celery_job`: each step is a Celery task on the `dagster` queue. Workers:
  `dagster-celery worker start -A dagster_celery.app -y deploy/celery/celery_config.yaml`.
- `per_batch_k8s_job`: each step is a Kubernetes Job; OCR and image embeddings go to the GPU pool.

Their executor settings are the jobs' default run config, so runs launched by sensors, backfills
and the UI carry them; deploy/celery/celery_config.yaml and deploy/k8s/run_config_k8s_executor.yaml
hold the same settings for command-line launches and for the workers (a test keeps them equal).
Every worker must see the same Dagster instance (DAGSTER_HOME: Postgres in production) and the same
data root (VPR_HOME). See docs/scaling.md.
"""

import dagster as dg
from dagster_celery import celery_executor
from dagster_k8s import k8s_job_executor

from vpr_assets.defs import curation, ingestion, text, vision
from vpr_assets.defs.partitions import scan_batches


def per_batch_asset_keys() -> list:
    """Every asset of the code location partitioned by scan batch (raw_scans, ..., text_embeddings)."""
    keys = []
    for domain in (ingestion, curation, text, vision):
        for a in domain.assets:
            if a.partitions_def == scan_batches:
                keys.extend(a.keys)
    return sorted(keys, key=lambda k: k.to_user_string())


# partitioned by scan_batches, as the selected assets are (define_asset_job infers it)
PER_BATCH_ASSETS = dg.AssetSelection.assets(*per_batch_asset_keys())

# Broker and backend from the environment (same names on the launching host and the workers).
CELERY_EXECUTION = {
    "broker": {"env": "DAGSTER_CELERY_BROKER_URL"},
    "backend": {"env": "DAGSTER_CELERY_BACKEND_URL"},
    "retries": {"enabled": {}},
    "config_source": {
        # a worker takes a task only when free: with acks_late + prefetch 1 a busy worker holds
        # no second task that an idle worker could run now (steps last seconds to hours)
        "task_acks_late": True,
        "worker_prefetch_multiplier": 1,
        # Redis redelivers an unacknowledged task after visibility_timeout: keep it above the
        # longest step (OCR of a 50k-scan batch on CPU takes hours)
        "broker_transport_options": {
            "visibility_timeout": 43200,
            "max_retries": 3,
            "interval_start": 0,
            "interval_step": 0.2,
            "interval_max": 0.5,
        },
        "result_expires": 86400,
        "worker_send_task_events": True,
    },
}

# The steps that need a GPU: EasyOCR and the EfficientNet embedder (both use CUDA when present).
GPU_STEPS = ("ocr_text", "image_embeddings")
_GPU_POD = {
    "container_config": {
        "resources": {
            "requests": {"cpu": "6", "memory": "24Gi", "nvidia.com/gpu": "1"},
            "limits": {"memory": "32Gi", "nvidia.com/gpu": "1"},
        },
    },
    "pod_spec_config": {
        "nodeSelector": {"vpr/pool": "gpu"},
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
    },
}
K8S_EXECUTION = {
    "job_namespace": "dagster",
    "max_concurrent": 8,  # step pods at once per run (per batch); the instance pools bound GPUs
    "retries": {"enabled": {}},
    "step_k8s_config": {
        "container_config": {
            "resources": {"requests": {"cpu": "2", "memory": "8Gi"}, "limits": {"memory": "12Gi"}},
        },
        "pod_spec_config": {"nodeSelector": {"vpr/pool": "cpu"}},
        "job_spec_config": {"ttlSecondsAfterFinished": 3600, "backoffLimit": 0},
    },
    "per_step_k8s_config": {step: _GPU_POD for step in GPU_STEPS},
}

per_batch_celery_job = dg.define_asset_job(
    name="per_batch_celery_job",
    selection=PER_BATCH_ASSETS,
    executor_def=celery_executor,
    config={"execution": {"config": CELERY_EXECUTION}},
    description="All per-batch assets of one scan batch, each step a Celery task on the `dagster` "
    "queue (broker from DAGSTER_CELERY_BROKER_URL).",
)

per_batch_k8s_job = dg.define_asset_job(
    name="per_batch_k8s_job",
    selection=PER_BATCH_ASSETS,
    executor_def=k8s_job_executor,
    config={"execution": {"config": K8S_EXECUTION}},
    description="All per-batch assets of one scan batch, each step a Kubernetes Job; ocr_text and "
    "image_embeddings on the GPU node pool.",
)

# Training through a job: its runs carry the run tag `vpr/heavy`, which the run queue limits
# (dagster_home/dagster.yaml tag_concurrency_limits); asset and op tags never become run tags.
train_models_job = dg.define_asset_job(
    name="train_models",
    selection=dg.AssetSelection.assets("vpr_model", "champion_model"),
    tags={"vpr/heavy": "true"},
    description="Train a model variant (one partition per variant), check it, and move the champion alias "
    "when the blocking check passes; runs are tagged vpr/heavy.",
)

jobs = [per_batch_celery_job, per_batch_k8s_job, train_models_job]
