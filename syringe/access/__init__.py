"""Reaching endpoints: readiness probes, the terminal bridge, the HTTP proxy and the NETCONF client."""
