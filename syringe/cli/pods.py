"""What runs inside pods: the configurator's and verifier's entrypoints (configuration and verification
Jobs), and the QEMU wrapper's launcher and its readiness probe."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

COMMANDS = ("configure", "verify", "launch")


def cmd_configure(args: argparse.Namespace) -> int:
    """The configurator image's entrypoint: configure one endpoint for one stage, then exit 0 or 1."""
    from syringe.configure.runners import RUNNERS, run_napalm
    from syringe.configure.target import ConfigTarget, wait_for
    from syringe.errors import ConfigureError
    from syringe.plan import jobenv

    done_token = os.environ.pop(jobenv.DONE_TOKEN, "")  # before any script of the lesson's runs
    try:
        target = ConfigTarget.from_environment(args.endpoint, args.stage)
        if args.wait_for_target:
            wait_for(target, args.type, args.wait_for_target)
        if args.type == "napalm":
            run_napalm(target, args.timeout, args.napalm_mode)
        else:
            RUNNERS[args.type](target, args.timeout)
    except ConfigureError as exc:
        print(f"error: configuring {args.endpoint} for stage {args.stage} ({args.type}): {exc}", file=sys.stderr)
        return 1
    print(f"configured {args.endpoint} for stage {args.stage} ({args.type})")
    if done_token:
        print(jobenv.done_line(done_token), flush=True)
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    """The verification Job's entrypoint: run a stage's learner checks; failed checks are results."""
    from syringe.configure.verify import verify
    from syringe.errors import ConfigureError

    try:
        results = verify(args.stage, args.timeout)
    except ConfigureError as exc:
        print(f"error: verifying stage {args.stage}: {exc}", file=sys.stderr)
        return 1
    for result in results:
        print(f"{'PASS' if result['passed'] else 'FAIL'} {result['name']}: {result['message']}")
    return 0


def cmd_launch(args: argparse.Namespace) -> int:
    """The QEMU wrapper container's entrypoint (stage 1 of an image), or its readiness probe."""
    from syringe.launcher import main as launcher

    if args.health:
        return launcher.health(os.environ.get("SYRINGE_VM_HEALTH_FILE", launcher.HEALTH_FILE))
    return launcher.main()


def register(commands: Any) -> None:
    configure = commands.add_parser("configure", help="configure one endpoint for one stage (configuration Jobs)")
    configure.add_argument("--type", required=True, choices=["python", "ansible", "napalm", "netconf"])
    configure.add_argument("--endpoint", required=True)
    configure.add_argument("--stage", type=int, required=True)
    configure.add_argument("--timeout", type=float, default=300.0, help="seconds for the whole configuration")
    configure.add_argument("--napalm-mode", choices=["merge", "replace"], default="merge")
    configure.add_argument(
        "--wait-for-target",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="first wait this long for the target to answer (a Job started while its endpoint boots)",
    )
    configure.set_defaults(func=cmd_configure)
    verify = commands.add_parser("verify", help="run a stage's learner checks (verification Jobs)")
    verify.add_argument("--stage", type=int, required=True)
    verify.add_argument("--timeout", type=float, default=60.0, help="seconds per check")
    verify.set_defaults(func=cmd_verify)
    launch = commands.add_parser("launch", help="run as PID 1 of a QEMU wrapper container (settings from env)")
    launch.add_argument("--health", action="store_true", help="the readiness probe: exit 0 when the VM is ready")
    launch.set_defaults(func=cmd_launch)
