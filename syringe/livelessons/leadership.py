"""Which replica leads (collects garbage): the runtime's lease where replicas share one, else this one."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket

from syringe.runtime.base import Runtime, SharedState

log = logging.getLogger(__name__)


class Leadership:
    def __init__(self, runtime: Runtime, lease_seconds: float) -> None:
        self.shared = runtime if isinstance(runtime, SharedState) else None
        self.lease_seconds = lease_seconds
        self.identity = f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
        self.is_leader = False

    async def hold_forever(self) -> None:
        """Hold, or wait for, the leader Lease; renew it three times per lease duration."""
        while True:
            was = self.is_leader
            try:
                self.is_leader = await self.shared.try_lead(self.identity, self.lease_seconds) if self.shared else True
            except Exception as exc:  # noqa: BLE001 - an unreachable API server means no leadership
                log.warning("leader election: %s", exc)
                self.is_leader = False
            if self.is_leader != was:
                log.info("%s leadership (%s)", "took" if self.is_leader else "lost", self.identity)
            await asyncio.sleep(self.lease_seconds / 3)
