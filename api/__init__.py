"""Syringe's HTTP API: routers that translate HTTP to calls into the syringe core."""
