"""Stage 0 configuration of r1, run by the python configurator (syringe configure) in a Job.

The target's address, port and credentials come from the environment; the wiring from topology.json.
"""

import asyncio
import json
import os
import shlex

import asyncssh

STAGE = 0
ME = "r1"


def commands(topology: dict) -> list[str]:
    lines = ["configure terminal"]
    for interface in topology["endpoints"][ME]["interfaces"]:
        lines += [f"interface {interface['name']}", f"ip address {interface['address']}", "exit"]
    if STAGE >= 1:
        lines.append("router ospf")
        mine = [link for link in topology["connections"] if ME in (link["a"], link["b"])]
        lines += [f"network {link['subnet']} area 0" for link in mine]
    return lines


async def main(topology: dict) -> None:
    vtysh = "vtysh " + " ".join(f"-c {shlex.quote(line)}" for line in commands(topology))
    async with asyncssh.connect(
        os.environ["SYRINGE_TARGET_HOST"], int(os.environ["SYRINGE_TARGET_PORT"]),
        username=os.environ["SYRINGE_TARGET_USER"], password=os.environ["SYRINGE_TARGET_PASSWORD"],
        known_hosts=None,
    ) as connection:
        result = await connection.run(vtysh, check=True)
        print(result.stdout, end="")


with open(os.environ["SYRINGE_TOPOLOGY"]) as topology_file:
    asyncio.run(main(json.load(topology_file)))
