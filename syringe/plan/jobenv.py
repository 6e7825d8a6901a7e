"""What a Job's container is given and what it gives back: every variable a configuration or verification
Job's process reads, and its termination message.

The plan writes the variables (plan/jobs.py), the configurators read them (configure/), and whatever runs a
Job's pod off-cluster (runtime/local/jobs.py, the tests' pod stand-in) rewrites them. This module is their
one home. Pure: names and how to spell them, nothing else. ENDPOINT, LESSON_DIR and TOPOLOGY are given to
endpoint pods too; plan/podenv.py, the endpoint pods' contract, takes them from here.
"""

from __future__ import annotations

from collections.abc import Mapping

# The endpoint a configuration Job configures: its Service name and port in a cluster.
TARGET_HOST = "SYRINGE_TARGET_HOST"
TARGET_PORT = "SYRINGE_TARGET_PORT"
# The protocol of the presentation on that port (ssh, netconf, http, tcp): what a Job started while its
# endpoint boots waits to answer.
TARGET_PROTOCOL = "SYRINGE_TARGET_PROTOCOL"
# The login, from the credentials Secret by secretKeyRef.
TARGET_USER = "SYRINGE_TARGET_USER"
TARGET_PASSWORD = "SYRINGE_TARGET_PASSWORD"

# Where the lesson's files are mounted, and two files in them.
LESSON_DIR = "SYRINGE_LESSON_DIR"
TOPOLOGY = "SYRINGE_TOPOLOGY"
CHECKS = "SYRINGE_CHECKS"  # a verification Job's checks, by stage

# A verification Job's mounted credentials Secret: <endpoint>.username, <endpoint>.password.
CREDENTIALS_DIR = "SYRINGE_CREDENTIALS_DIR"

# Set by the configurator for the lesson's own scripts and checks it runs.
ENDPOINT = "SYRINGE_ENDPOINT"
STAGE = "SYRINGE_STAGE"

# A configuration Job's word that it succeeded, ahead of its pod's status. The configurator's last line of
# output is done_line(token), with the token the plan put in DONE_TOKEN; it takes the token out of the
# environment before it runs the lesson's scripts, so that neither they nor the endpoint they talk to can
# print the line (a script could still read it from /proc, but only to call its own lesson configured). The
# Kubernetes runtime follows the pod's log and reports the Job succeeded as the line is written: the kubelet
# notices an exited container only on its next relist (every second), then the status travels through the
# API server to Syringe's watch.
DONE_TOKEN = "SYRINGE_DONE_TOKEN"
DONE_PREFIX = "SYRINGE-JOB-DONE "


def done_line(token: str) -> str:
    """The line a configurator prints last when it succeeded: DONE_PREFIX and the Job's token."""
    return DONE_PREFIX + token


# Off-cluster only: where the process writes its termination message, instead of TERMINATION_MESSAGE_PATH.
TERMINATION_LOG = "SYRINGE_TERMINATION_LOG"

# Where a container writes its termination message: Kubernetes' default terminationMessagePath, which the
# plan's Jobs keep.
TERMINATION_MESSAGE_PATH = "/dev/termination-log"
# How much of a Job's termination message Syringe keeps, wherever it comes from (the end of it). The kubelet
# keeps 4096 bytes of what a container writes to its terminationMessagePath, and a verification Job's report
# must arrive whole (configure/verify.py shortens it until its UTF-8 fits), so the cap sits a little under
# that. Off-cluster runs (runtime/local/jobs.py), the tests' pod stand-in and the lifecycle cap at the same
# place.
TERMINATION_MESSAGE_LIMIT = 4000

_HOST_PREFIX = "SYRINGE_HOST_"
_PORTS_PREFIX = "SYRINGE_PORTS_"


def _suffix(endpoint: str) -> str:
    return endpoint.upper().replace("-", "_")


def host_variable(endpoint: str) -> str:
    """The variable a checker finds an endpoint's address in: SYRINGE_HOST_<ENDPOINT>."""
    return _HOST_PREFIX + _suffix(endpoint)


def ports_variable(endpoint: str) -> str:
    """Where a checker finds an endpoint's ports when they are not the ones it serves ("22=40022,80=40080"):
    set only off-cluster, where every endpoint shares one address."""
    return _PORTS_PREFIX + _suffix(endpoint)


def format_ports(ports: Mapping[int, int]) -> str:
    """The value of a ports variable: "served=reached,..." by served port."""
    return ",".join(f"{served}={reached}" for served, reached in sorted(ports.items()))


def parse_ports(value: str) -> dict[int, int]:
    """A ports variable's value, back: served port -> the port to dial."""
    ports = {}
    for pair in filter(None, value.split(",")):
        served, _, reached = pair.partition("=")
        ports[int(served)] = int(reached)
    return ports
