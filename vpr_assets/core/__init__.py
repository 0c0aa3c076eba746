"""The framework-free core: plain functions and small classes, each testable without Dagster."""

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent.parent  # the checkout: committed data sets live under data/
