"""MLflow tracking and registry under the data root, with champion/candidate aliases.

The backend store is `$VPR_HOME/mlflow.db` (SQLite) and artifacts go to `$VPR_HOME/mlartifacts`
(set explicitly: with a bare sqlite URI MLflow would write to ./mlruns of the current folder).
Registry stages are deprecated in MLflow 3, so promotion uses aliases: every new version becomes
`candidate`; `champion` moves only when the candidate beats it, and the decision is recorded as
version tags.
"""

from __future__ import annotations

import json
import logging
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping

log = logging.getLogger(__name__)

EXPERIMENT = "vpr_models"
CANDIDATE, CHAMPION = "candidate", "champion"
PROMOTION_METRICS = ("mAP_at_5", "landmark_accuracy")


def mlflow_metric_name(name: str) -> str:
    """MLflow metric names cannot hold '@': "mAP@5" is logged as "mAP_at_5"."""
    return name.replace("@", "_at_").replace("-", "_")


def mlflow_metrics(metrics: Mapping[str, float]) -> dict[str, float]:
    import math

    return {mlflow_metric_name(k): float(v) for k, v in metrics.items()
            if isinstance(v, (int, float)) and not math.isnan(float(v))}


def tracking_uri(home: Path) -> str:
    return f"sqlite:///{Path(home).resolve() / 'mlflow.db'}"


def artifact_root(home: Path) -> Path:
    p = Path(home).resolve() / "mlartifacts"
    p.mkdir(parents=True, exist_ok=True)
    return p


def client(home: Path):
    """An MlflowClient on this data root's store; the process-wide tracking URI is left alone."""
    from mlflow import MlflowClient

    uri = tracking_uri(home)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


@contextmanager
def active_store(home: Path) -> Iterator[str]:
    """MLflow's fluent API (`start_run`, `log_*`, `pyfunc.log_model`, `models:/` URIs) on this data
    root's store for the block only; the URI that was set before (or none) comes back after it, so
    two data roots in one process (tests, a CLI beside a run) never log into each other's store.
    Yields the URI."""
    import mlflow

    uri = tracking_uri(home)
    previous = mlflow.get_tracking_uri() if mlflow.is_tracking_uri_set() else None
    mlflow.set_tracking_uri(uri)  # an unset registry URI follows it (models:/ URIs, log_model)
    try:
        yield uri
    finally:
        mlflow.set_tracking_uri(previous)  # None unsets it again


def experiment_id(home: Path, name: str = EXPERIMENT) -> str:
    c = client(home)
    exp = c.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    try:
        return c.create_experiment(name, artifact_location=artifact_root(home).as_uri())
    except Exception:  # created concurrently by another process
        return c.get_experiment_by_name(name).experiment_id


@dataclass(frozen=True)
class UiLinks:
    """Base URLs of the MLflow and Dagster UIs, so each side links to the other (configurable: the
    defaults are `mlflow ui` and `dagster dev` on this machine)."""

    mlflow_ui: str = "http://127.0.0.1:5000"
    dagster_ui: str = "http://127.0.0.1:3000"

    def mlflow_run(self, experiment_id: str, run_id: str) -> str:
        return f"{self.mlflow_ui.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"

    def mlflow_model_version(self, name: str, version: str) -> str:
        return f"{self.mlflow_ui.rstrip('/')}/#/models/{name}/versions/{version}"

    def dagster_run(self, run_id: str) -> str:
        return f"{self.dagster_ui.rstrip('/')}/runs/{run_id}"


def log_dataset(frame, name: str, source: str, context: str, targets: str | None = None) -> None:
    """Log a table of inputs (paths and labels, not pixels) as an MLflow dataset of the active run."""
    import mlflow

    ds = mlflow.data.from_pandas(frame, source=source, name=name, targets=targets)
    mlflow.log_input(ds, context=context)


@dataclass
class PromotionDecision:
    promoted: bool
    candidate_version: str
    champion_version: str | None
    candidate_metrics: dict
    champion_metrics: dict
    reason: str

    @property
    def changes_champion(self) -> bool:
        """Promoted and not already the champion: applying it moves the alias."""
        return self.promoted and self.champion_version != self.candidate_version

    def as_tags(self) -> dict[str, str]:
        kept = "kept_champion" if self.champion_version and not self.champion_version.startswith("pretrained:") \
            else "kept_pretrained"
        return {"promotion_decision": "promoted" if self.promoted else kept,
                "promotion_reason": self.reason,
                "promotion_vs_version": str(self.champion_version),
                "promotion_figures": json.dumps({"candidate": self.candidate_metrics, "champion": self.champion_metrics})}


def beats(candidate: Mapping[str, float], champion: Mapping[str, float] | None,
          metrics: tuple[str, ...] = PROMOTION_METRICS, min_gain: float = 0.0) -> tuple[bool, str]:
    """A candidate wins if it is no worse on every metric and better on at least one."""
    if not champion:
        return True, "no champion yet"
    missing = [m for m in metrics if m not in candidate]
    if missing:
        return False, f"candidate lacks {missing}"
    worse = [m for m in metrics if candidate[m] < champion.get(m, float("-inf")) - 1e-9]
    better = [m for m in metrics if candidate[m] > champion.get(m, float("-inf")) + min_gain]
    parts = ", ".join(f"{m} {candidate[m]:.4f} vs {champion.get(m, float('nan')):.4f}" for m in metrics)
    if worse:
        return False, f"worse on {worse}: {parts}"
    if not better:
        return False, f"not better on any metric: {parts}"
    return True, f"better on {better}: {parts}"


class ModelRegistry:
    """Registered models of one data root: versions, tags, aliases and promotion."""

    def __init__(self, home: Path):
        self.home = Path(home)
        self.client = client(self.home)

    def ensure_model(self, name: str, description: str = "") -> None:
        from mlflow.exceptions import MlflowException

        try:
            self.client.get_registered_model(name)
        except MlflowException:
            try:
                self.client.create_registered_model(name, description=description)
            except MlflowException:
                pass  # created concurrently

    def register(self, name: str, run_id: str, artifact_path: str, tags: Mapping[str, Any],
                 source: str | None = None) -> str:
        """Register a run's artifact folder (or `source`, e.g. a logged model's `models:/m-...` URI)
        as a new version, tagged, and alias it `candidate`."""
        self.ensure_model(name)
        with active_store(self.home):  # the registry resolves a models:/m-... source in the fluent store
            mv = self.client.create_model_version(name, source=source or f"runs:/{run_id}/{artifact_path}",
                                                  run_id=run_id, tags={k: str(v) for k, v in tags.items()})
        self.client.set_registered_model_alias(name, CANDIDATE, mv.version)
        return str(mv.version)

    def version_by_alias(self, name: str, alias: str):
        from mlflow.exceptions import MlflowException

        try:
            return self.client.get_model_version_by_alias(name, alias)
        except MlflowException:
            return None

    def metrics_of(self, name: str, version: str) -> dict[str, float]:
        mv = self.client.get_model_version(name, version)
        return dict(self.client.get_run(mv.run_id).data.metrics) if mv.run_id else {}

    def decide(self, name: str, version: str, candidate_metrics: Mapping[str, float],
               metrics: tuple[str, ...] = PROMOTION_METRICS,
               baseline: Mapping[str, float] | None = None, baseline_label: str | None = None) -> PromotionDecision:
        """Would `version` become champion? Read-only: the registry is not changed.

        The bar is the current champion's logged figures; before any champion it is `baseline`
        (the pretrained embedder's figures on the same dev set) when given."""
        champ = self.version_by_alias(name, CHAMPION)
        champ_metrics = {m: v for m, v in (self.metrics_of(name, champ.version) if champ else {}).items() if m in metrics}
        cand = {m: float(candidate_metrics[m]) for m in metrics if m in candidate_metrics}
        if champ is not None and str(champ.version) == str(version):
            return PromotionDecision(True, str(version), str(champ.version), cand, champ_metrics, "already champion")
        if champ is None and baseline is not None:
            bar = {m: float(baseline[m]) for m in metrics if m in baseline}
            ok, reason = beats(cand, bar, metrics) if bar else (False, "no baseline figures")
            return PromotionDecision(ok, str(version), baseline_label, cand, bar,
                                     f"{'beats' if ok else 'does not beat'} the pretrained embedder: {reason}")
        ok, reason = beats(cand, champ_metrics or None, metrics)
        return PromotionDecision(ok, str(version), str(champ.version) if champ else None, cand, champ_metrics, reason)

    def apply(self, name: str, decision: PromotionDecision) -> None:
        """Record a decision on the candidate version and move `champion` if it won."""
        for k, v in decision.as_tags().items():
            self.client.set_model_version_tag(name, decision.candidate_version, k, v)
        if decision.promoted:
            self.client.set_registered_model_alias(name, CHAMPION, decision.candidate_version)

    def promote_if_better(self, name: str, version: str, candidate_metrics: Mapping[str, float],
                          metrics: tuple[str, ...] = PROMOTION_METRICS) -> PromotionDecision:
        """`decide` then `apply`."""
        decision = self.decide(name, version, candidate_metrics, metrics)
        self.apply(name, decision)
        return decision

    def download(self, name: str, version: str, dst: Path) -> Path:
        """The version's artifact folder, copied under `dst` (cached: downloaded once)."""
        import mlflow

        dst = Path(dst)
        target = dst / f"{name}-v{version}"
        if not target.exists():
            mv = self.client.get_model_version(name, version)
            tmp = dst / f".{name}-v{version}.partial"
            tmp.mkdir(parents=True, exist_ok=True)
            with active_store(self.home):  # runs:/ and models:/ sources resolve in this store
                local = mlflow.artifacts.download_artifacts(artifact_uri=mv.source, dst_path=str(tmp))
            Path(local).rename(target)
            tmp.rmdir() if tmp.exists() and not any(tmp.iterdir()) else None
        return target

    def versions(self, name: str | None = None) -> list[dict]:
        """Every registered version with aliases, tags and its run's metrics (for `vpr models`)."""
        out = []
        models = [self.client.get_registered_model(name)] if name else self.client.search_registered_models()
        for rm in models:
            aliases: dict[str, list[str]] = {}
            for alias, v in (rm.aliases or {}).items():
                aliases.setdefault(str(v), []).append(alias)
            for mv in self.client.search_model_versions(f"name='{rm.name}'"):
                out.append({"model": rm.name, "version": str(mv.version), "aliases": sorted(aliases.get(str(mv.version), [])),
                            "run_id": mv.run_id, "source": mv.source, "tags": dict(mv.tags or {}),
                            "metrics": self.metrics_of(rm.name, mv.version) if mv.run_id else {},
                            "created": mv.creation_timestamp})
        return sorted(out, key=lambda r: (r["model"], int(r["version"])))
