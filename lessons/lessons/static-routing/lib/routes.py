"""Shared by this lesson's configurators. In stage 1 each router learns a route to the subnet it is not on,
and the router in the middle forwards between its links; stage 0 takes them away again, so that going back
a stage shows the lesson's starting point.

Each stage's configs/<router>.py calls configure() with its router and stage; the target's address, port
and credentials come from the environment, the wiring from topology.json.
"""

import asyncio
import ipaddress
import json
import os

import asyncssh


def commands(topology: dict, router: str, stage: int) -> list[str]:
    """The shell commands that give ``router`` (stage 1), or take from it (stage 0), a route to every subnet
    it is not on, through its neighbour, or forwarding when it sits between two links."""
    mine = [link for link in topology["connections"] if router in (link["a"], link["b"])]
    if len(mine) > 1:
        return [f"echo {1 if stage >= 1 else 0} > /proc/sys/net/ipv4/ip_forward"]
    link = mine[0]
    neighbour = link["b"] if link["a"] == router else link["a"]
    via = next(
        i["address"].split("/")[0]
        for i in topology["endpoints"][neighbour]["interfaces"]
        if ipaddress.ip_interface(i["address"]) in ipaddress.ip_network(link["subnet"])
    )
    others = [c["subnet"] for c in topology["connections"] if c is not link]
    if stage >= 1:
        return [f"ip route replace {subnet} via {via}" for subnet in others]
    return [f"ip route del {subnet} 2>/dev/null || true" for subnet in others]


async def _apply(lines: list[str]) -> None:
    async with asyncssh.connect(
        os.environ["SYRINGE_TARGET_HOST"],
        int(os.environ["SYRINGE_TARGET_PORT"]),
        username=os.environ["SYRINGE_TARGET_USER"],
        password=os.environ["SYRINGE_TARGET_PASSWORD"],
        known_hosts=None,
    ) as connection:
        for line in lines:
            result = await connection.run(line, check=True)
            print(f"$ {line}\n{result.stdout}", end="")


def configure(router: str, stage: int) -> None:
    with open(os.environ["SYRINGE_TOPOLOGY"]) as topology_file:
        topology = json.load(topology_file)
    asyncio.run(_apply(commands(topology, router, stage)))
