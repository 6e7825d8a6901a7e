"""Reaching endpoints: readiness probes (and, later, the terminal bridge and the HTTP proxy)."""
