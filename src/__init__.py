"""indi-deband: INDI debanding with a spectral loss, Lightning + Hydra."""
