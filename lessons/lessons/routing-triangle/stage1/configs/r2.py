"""Stage 1 configuration of r2: run by the python configurator with the target in the environment."""

import json
import os
import subprocess

host = os.environ["SYRINGE_TARGET_HOST"]
user = os.environ["SYRINGE_TARGET_USER"]
with open(os.environ["SYRINGE_TOPOLOGY"]) as topology_file:
    topology = json.load(topology_file)
me = topology["endpoints"]["r2"]

commands = ["configure terminal"]
for interface in me["interfaces"]:
    commands += [f"interface {interface['name']}", f"ip address {interface['address']}", "exit"]
if 1 >= 1:
    commands += ["router ospf"] + [
        f"network {link['subnet']} area 0" for link in topology["connections"] if "r2" in (link["a"], link["b"])
    ]
vtysh = "vtysh " + " ".join(f"-c '{c}'" for c in commands)
subprocess.run(["ssh", "-o", "StrictHostKeyChecking=no", f"{user}@{host}", vtysh], check=True)
