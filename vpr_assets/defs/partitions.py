"""Partitions: one per scan batch (never per card: Dagster slows past ~40k partitions)."""

import dagster as dg

SCAN_BATCHES = "scan_batches"

scan_batches = dg.DynamicPartitionsDefinition(name=SCAN_BATCHES)
