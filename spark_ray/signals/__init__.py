"""Signals: features written once and computed both over the lake (batch) and from the live
stream (incremental), so a model behaves live as it did in research."""
