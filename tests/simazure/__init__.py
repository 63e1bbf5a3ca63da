"""A simulated Azure on loopback for whole-path tests; see ``service.SimAzure`` and docs/azure.md."""
