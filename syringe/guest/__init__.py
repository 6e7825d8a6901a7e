"""Programs that run inside lesson endpoints (the tiny VM's flavours and the example images), not in
Syringe: Python's standard library only, plus the NETCONF framing of syringe.access.netconf_framing, which
the tiny VM carries along with them."""
