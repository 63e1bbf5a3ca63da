"""Azure specifics: clients from settings, compute, training jobs, the retraining pipeline and its schedule.

Every module here imports the Azure SDKs inside its functions, so the local paths never load them.
"""
