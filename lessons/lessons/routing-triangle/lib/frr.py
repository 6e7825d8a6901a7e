"""Shared by this lesson's configurators: address the links, and in later stages run OSPF, through vtysh.

Each stage's configs/<router>.py calls configure() with its router and stage; the target's address,
port and credentials come from the environment, the wiring from topology.json.
"""

import asyncio
import json
import os
import shlex

import asyncssh


def commands(topology: dict, router: str, stage: int) -> list[str]:
    lines = ["configure terminal"]
    for interface in topology["endpoints"][router]["interfaces"]:
        lines += [f"interface {interface['name']}", f"ip address {interface['address']}", "exit"]
    if stage >= 1:
        lines.append("router ospf")
        mine = [link for link in topology["connections"] if router in (link["a"], link["b"])]
        lines += [f"network {link['subnet']} area 0" for link in mine]
    return lines


async def _apply(lines: list[str]) -> None:
    vtysh = "vtysh " + " ".join(f"-c {shlex.quote(line)}" for line in lines)
    async with asyncssh.connect(
        os.environ["SYRINGE_TARGET_HOST"],
        int(os.environ["SYRINGE_TARGET_PORT"]),
        username=os.environ["SYRINGE_TARGET_USER"],
        password=os.environ["SYRINGE_TARGET_PASSWORD"],
        known_hosts=None,
    ) as connection:
        result = await connection.run(vtysh, check=True)
        print(result.stdout, end="")


def configure(router: str, stage: int) -> None:
    with open(os.environ["SYRINGE_TOPOLOGY"]) as topology_file:
        topology = json.load(topology_file)
    asyncio.run(_apply(commands(topology, router, stage)))
