"""Deployment: the scoring bundle, images, targets (local, ACI, AKS) and the smoke test."""
