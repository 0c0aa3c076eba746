"""The deployment files under deploy/ load and validate against Dagster's (and Celery's) own schemas.

Every validator here is also run on a copy with one key misspelled, which must fail: a typo in a
deploy file has to break this test, not a production rollout.
"""

import copy
import importlib
from pathlib import Path

import dagster as dg
import pytest
import yaml
from dagster._config import convert_potential_field, validate_config
from dagster._core.errors import DagsterInvalidConfigError
from dagster._core.instance.config import dagster_instance_config

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S_INSTANCE = DEPLOY / "k8s" / "dagster.yaml"
CELERY_INSTANCE = DEPLOY / "celery" / "dagster.yaml"
CELERY_CONFIG = DEPLOY / "celery" / "celery_config.yaml"
K8S_RUN_CONFIG = DEPLOY / "k8s" / "run_config_k8s_executor.yaml"
HELM_VALUES = DEPLOY / "k8s" / "values.yaml"

# Config classes whose packages are not installed here: their schema written out from the package
# (dagster-aws 0.29 S3ComputeLogManager.config_type) so a misspelled key still fails.
_NOT_INSTALLED_SCHEMAS = {
    ("dagster_aws.s3.compute_log_manager", "S3ComputeLogManager"): {
        "bucket": dg.StringSource,
        "local_dir": dg.Field(dg.StringSource, is_required=False),
        "prefix": dg.Field(dg.StringSource, is_required=False),
        "use_ssl": dg.Field(bool, is_required=False),
        "verify": dg.Field(bool, is_required=False),
        "verify_cert_path": dg.Field(dg.StringSource, is_required=False),
        "endpoint_url": dg.Field(dg.StringSource, is_required=False),
        "skip_empty_files": dg.Field(bool, is_required=False),
        "upload_interval": dg.Field(dg.Noneable(int), is_required=False),
        "upload_extra_args": dg.Field(dg.Permissive(), is_required=False),
        "show_url_only": dg.Field(bool, is_required=False),
        "region": dg.Field(dg.StringSource, is_required=False),
    },
}
_CLASS_SECTIONS = ("run_launcher", "compute_logs", "local_artifact_storage", "run_coordinator", "scheduler",
                   "run_storage", "event_log_storage", "schedule_storage", "secrets")


def _load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def _check(schema, value, what: str) -> None:
    """validate_config (no env lookups: values may be {env: NAME}); raise on any error."""
    result = validate_config(convert_potential_field(schema).config_type, value)
    if not result.success:
        raise DagsterInvalidConfigError(f"invalid {what}", result.errors, value)


def validate_instance(config: dict, tmp_path: Path) -> dict:
    """Dagster's instance schema, then each configurable class's own config schema."""
    folder = tmp_path / f"instance_{len(list(tmp_path.iterdir()))}"
    folder.mkdir()
    (folder / "dagster.yaml").write_text(yaml.safe_dump(config))
    validated, _ = dagster_instance_config(str(folder))
    for section in _CLASS_SECTIONS:
        if section not in config:
            continue
        module, cls_name = config[section]["module"], config[section]["class"]
        try:
            klass = getattr(importlib.import_module(module), cls_name)
            schema = klass.config_type()
        except ImportError:
            assert (module, cls_name) in _NOT_INSTALLED_SCHEMAS, f"{module}.{cls_name} not importable"
            schema = _NOT_INSTALLED_SCHEMAS[(module, cls_name)]
        _check(schema, config[section].get("config") or {}, f"{section} config ({cls_name})")
    return validated


def validate_celery_run_config(config: dict) -> None:
    """The executor's schema; config_source keys must be settings Celery knows."""
    from celery.app.defaults import NAMESPACES, flatten
    from dagster_celery import celery_executor

    assert set(config) == {"execution"} and set(config["execution"]) == {"config"}, config.keys()
    _check(celery_executor.config_schema.config_type, config["execution"]["config"], "celery executor config")
    known = {name for name, _ in flatten(NAMESPACES)}
    unknown = set(config["execution"]["config"].get("config_source") or {}) - known
    if unknown:
        raise DagsterInvalidConfigError(f"unknown Celery settings {sorted(unknown)}", [], config)


def _job(name: str) -> dg.JobDefinition:
    from tests.scaleout.celery_target import code_location

    return code_location().resolve_job_def(name)


def validate_job_run_config(job_name: str, config: dict) -> None:
    dg.validate_run_config(_job(job_name), config)


# --- the Helm values: the chart's key names (helm/dagster/schema in dagster-io/dagster, 1.13) ---
HELM_TOP = {"global", "dagsterWebserver", "dagster-user-deployments", "postgresql", "generatePostgresqlPasswordSecret",
            "generateCeleryConfigSecret", "rabbitmq", "redis", "flower", "ingress", "imagePullSecrets",
            "computeLogManager", "scheduler", "runLauncher", "pythonLogs", "dagsterDaemon", "busybox", "migrate",
            "telemetry", "serviceAccount", "retention", "concurrency", "additionalInstanceConfig"}
HELM_REFERENCE_ONLY = {"gpuStepPool"}  # the chart allows extra top-level keys; documented as ignored
HELM_USER_DEPLOYMENT = {"name", "image", "port", "dagsterApiGrpcArgs", "codeServerArgs", "includeConfigInLaunchedRuns",
                        "env", "envConfigMaps", "envSecrets", "annotations", "nodeSelector", "affinity", "tolerations",
                        "podSecurityContext", "securityContext", "resources", "livenessProbe", "readinessProbe",
                        "startupProbe", "labels", "volumeMounts", "volumes", "schedulerName"}
HELM_K8S_RUN_LAUNCHER = {"image", "imagePullPolicy", "jobNamespace", "loadInclusterConfig", "kubeconfigFile",
                         "envConfigMaps", "envSecrets", "envVars", "volumeMounts", "volumes", "labels",
                         "failPodOnRunFailure", "resources", "schedulerName", "securityContext", "runK8sConfig"}
HELM_RUN_K8S_CONFIG = {"containerConfig", "podSpecConfig", "podTemplateSpecMetadata", "jobSpecConfig", "jobMetadata"}
HELM_POSTGRES = {"postgresqlScheme", "image", "enabled", "postgresqlHost", "postgresqlUsername", "postgresqlPassword",
                 "postgresqlDatabase", "postgresqlParams", "service"}
HELM_S3_LOGS = {"localDir", "prefix", "useSsl", "verify", "verifyCertPath", "endpointUrl", "skipEmptyFiles",
                "uploadInterval", "uploadExtraArgs", "showUrlOnly", "region", "bucket"}
HELM_CONCURRENCY = {"enabled", "pools", "runs"}
HELM_CONCURRENCY_RUNS = {"maxConcurrentRuns", "tagConcurrencyLimits"}
HELM_CONCURRENCY_POOLS = {"defaultLimit", "granularity", "opGranularityRunBuffer"}


def _keys_within(mapping: dict, allowed: set, where: str) -> None:
    extra = set(mapping) - allowed
    if extra:
        raise ValueError(f"{where}: keys not in the chart's schema: {sorted(extra)}")


def validate_helm_values(values: dict) -> None:
    _keys_within(values, HELM_TOP | HELM_REFERENCE_ONLY, "values")
    deployments = values["dagster-user-deployments"]["deployments"]
    for d in deployments:
        _keys_within(d, HELM_USER_DEPLOYMENT, f"deployment {d.get('name')}")
    launcher = values["runLauncher"]
    assert launcher["type"] == "K8sRunLauncher"
    _keys_within(launcher["config"], {"k8sRunLauncher"}, "runLauncher.config")
    _keys_within(launcher["config"]["k8sRunLauncher"], HELM_K8S_RUN_LAUNCHER, "k8sRunLauncher")
    _keys_within(launcher["config"]["k8sRunLauncher"].get("runK8sConfig", {}), HELM_RUN_K8S_CONFIG, "runK8sConfig")
    _keys_within(values["postgresql"], HELM_POSTGRES, "postgresql")
    _keys_within(values["computeLogManager"]["config"]["s3ComputeLogManager"], HELM_S3_LOGS, "s3ComputeLogManager")
    _keys_within(values["concurrency"], HELM_CONCURRENCY, "concurrency")
    _keys_within(values["concurrency"]["runs"], HELM_CONCURRENCY_RUNS, "concurrency.runs")
    _keys_within(values["concurrency"]["pools"], HELM_CONCURRENCY_POOLS, "concurrency.pools")


# ------------------------------------------------------------------------------------------------


def test_k8s_instance_validates_and_matches_dagster_k8s(tmp_path):
    config = _load(K8S_INSTANCE)
    validated = validate_instance(config, tmp_path)
    assert "postgres" in validated["storage"]
    db = validated["storage"]["postgres"]["postgres_db"]
    assert db["password"] == {"env": "DAGSTER_PG_PASSWORD"}  # never a literal secret in the file
    from dagster_k8s import K8sRunLauncher

    assert config["run_launcher"]["class"] == K8sRunLauncher.__name__
    _check(K8sRunLauncher.config_type(), config["run_launcher"]["config"], "K8sRunLauncher")


def test_celery_instance_validates_and_builds_a_real_instance(tmp_path):
    config = _load(CELERY_INSTANCE)
    validate_instance(config, tmp_path)
    # build the instance for real, with the Postgres storage swapped for SQLite and /shared for tmp
    local = copy.deepcopy(config)
    local["storage"] = {"sqlite": {"base_dir": str(tmp_path / "storage")}}
    local["local_artifact_storage"]["config"]["base_dir"] = str(tmp_path / "artifacts")
    local["compute_logs"]["config"]["base_dir"] = str(tmp_path / "compute_logs")
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text(yaml.safe_dump(local))
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert type(instance.run_launcher).__name__ == "DefaultRunLauncher"
        assert type(instance.compute_log_manager).__name__ == "LocalComputeLogManager"
        assert instance.get_concurrency_config().pool_config.default_pool_limit == 4


def test_celery_executor_config_is_valid_and_is_the_jobs_default(monkeypatch):
    from vpr_assets.defs.jobs import CELERY_EXECUTION

    monkeypatch.setenv("DAGSTER_CELERY_BROKER_URL", "redis://127.0.0.1:6379/0")
    monkeypatch.setenv("DAGSTER_CELERY_BACKEND_URL", "redis://127.0.0.1:6379/1")

    config = _load(CELERY_CONFIG)
    validate_celery_run_config(config)
    assert config["execution"]["config"] == CELERY_EXECUTION
    validate_job_run_config("per_batch_celery_job", config)
    # the worker CLI reads the same file the same way
    from dagster_celery.cli import get_config_value_from_yaml

    assert get_config_value_from_yaml(str(CELERY_CONFIG))["config_source"]["task_acks_late"] is True


def test_k8s_executor_run_config_is_valid_and_is_the_jobs_default():
    from vpr_assets.defs.jobs import GPU_STEPS, K8S_EXECUTION

    config = _load(K8S_RUN_CONFIG)
    validate_job_run_config("per_batch_k8s_job", config)
    assert config["execution"]["config"] == K8S_EXECUTION
    job = _job("per_batch_k8s_job")
    steps = {n.name for n in job.graph.node_defs}
    assert set(GPU_STEPS) <= steps, "per_step_k8s_config names steps the job does not have"
    gpu = config["execution"]["config"]["per_step_k8s_config"]["image_embeddings"]
    assert gpu["container_config"]["resources"]["limits"]["nvidia.com/gpu"] == "1"


def test_jobs_cover_every_per_batch_asset_with_the_distributed_executors():
    for name, executor in (("per_batch_celery_job", "celery"), ("per_batch_k8s_job", "k8s")):
        job = _job(name)
        assert job.executor_def.name == executor
        assert job.partitions_def is not None and job.partitions_def.name == "scan_batches"
    keys = {k.to_user_string() for k in _job("per_batch_celery_job").asset_layer.executable_asset_keys}
    assert {"raw_scans", "scan_rejects", "image_embeddings", "ocr_text", "scan_quality"} <= keys
    assert not keys & {"landmark_clusters", "vpr_model", "faiss_index", "evaluations"}  # collection-wide


def test_helm_values_name_this_code_location_and_agree_with_the_instance():
    values = _load(HELM_VALUES)
    validate_helm_values(values)
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    args = deployment["dagsterApiGrpcArgs"]
    module = args[args.index("--module-name") + 1]
    assert module == "vpr_assets.definitions"
    assert isinstance(importlib.import_module(module).defs, dg.Definitions)
    instance = _load(K8S_INSTANCE)
    runs = values["concurrency"]["runs"]
    assert runs["maxConcurrentRuns"] == instance["concurrency"]["runs"]["max_concurrent_runs"]
    assert values["concurrency"]["pools"]["defaultLimit"] == instance["concurrency"]["pools"]["default_limit"]
    assert values["postgresql"]["enabled"] is False and values["global"]["postgresqlSecretName"]
    from vpr_assets.defs.jobs import K8S_EXECUTION

    gpu_pod = K8S_EXECUTION["per_step_k8s_config"]["image_embeddings"]
    assert values["gpuStepPool"]["nodeSelector"] == gpu_pod["pod_spec_config"]["nodeSelector"]
    assert values["gpuStepPool"]["resources"] == gpu_pod["container_config"]["resources"]


# --- a misspelled key must fail each validator ----------------------------------------------------


def _rename(config: dict, path: tuple, new_key: str) -> dict:
    bad = copy.deepcopy(config)
    node = bad
    for k in path[:-1]:
        node = node[k]
    node[new_key] = node.pop(path[-1])
    return bad


@pytest.mark.parametrize("path,typo", [
    (("concurrency", "runs", "max_concurrent_runs"), "max_concurent_runs"),
    (("storage", "postgres", "postgres_db", "hostname"), "host_name"),
    (("run_launcher", "config", "service_account_name"), "service_acount_name"),
    (("run_launcher", "config", "run_k8s_config", "pod_spec_config"), "pod_spec"),
    (("compute_logs", "config", "bucket"), "buckett"),
    (("run_monitoring", "start_timeout_seconds"), "start_timeout_secs"),
])
def test_misspelled_key_in_k8s_instance_fails(tmp_path, path, typo):
    with pytest.raises(DagsterInvalidConfigError):
        validate_instance(_rename(_load(K8S_INSTANCE), path, typo), tmp_path)


@pytest.mark.parametrize("path,typo", [
    (("local_artifact_storage", "config", "base_dir"), "basedir"),
    (("compute_logs", "config", "base_dir"), "base_directory"),
    (("concurrency", "pools", "default_limit"), "defaul_limit"),
])
def test_misspelled_key_in_celery_instance_fails(tmp_path, path, typo):
    with pytest.raises(DagsterInvalidConfigError):
        validate_instance(_rename(_load(CELERY_INSTANCE), path, typo), tmp_path)


@pytest.mark.parametrize("path,typo", [
    (("execution", "config", "broker"), "brokr"),
    (("execution", "config", "config_source", "task_acks_late"), "task_ack_late"),
])
def test_misspelled_key_in_celery_config_fails(path, typo):
    with pytest.raises(DagsterInvalidConfigError):
        validate_celery_run_config(_rename(_load(CELERY_CONFIG), path, typo))


@pytest.mark.parametrize("path,typo", [
    (("execution", "config", "per_step_k8s_config", "ocr_text", "pod_spec_config"), "pod_spec_confg"),
    (("execution", "config", "max_concurrent"), "max_concurrency"),
])
def test_misspelled_key_in_k8s_run_config_fails(path, typo):
    with pytest.raises(DagsterInvalidConfigError):
        validate_job_run_config("per_batch_k8s_job", _rename(_load(K8S_RUN_CONFIG), path, typo))


@pytest.mark.parametrize("path,typo", [
    (("dagster-user-deployments", "deployments", 0, "dagsterApiGrpcArgs"), "dagsterApiGRPCArgs"),
    (("runLauncher", "config", "k8sRunLauncher", "runK8sConfig"), "runK8SConfig"),
    (("concurrency", "runs", "maxConcurrentRuns"), "maxConcurentRuns"),
    (("postgresql", "postgresqlHost"), "postgresHost"),
    (("dagsterWebserver",), "dagsterWebServer"),
])
def test_misspelled_key_in_helm_values_fails(path, typo):
    with pytest.raises(ValueError):
        validate_helm_values(_rename(_load(HELM_VALUES), path, typo))
