"""Shipped weights: default.pt is the default model (see MODEL_CARD.md), loaded by `deband` as "default"."""
