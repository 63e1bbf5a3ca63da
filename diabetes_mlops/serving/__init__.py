"""The scoring service: our ASGI app, and the Azure ML entry script."""
