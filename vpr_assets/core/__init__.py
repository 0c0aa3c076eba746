"""The framework-free core: plain functions and small classes, each testable without Dagster."""
