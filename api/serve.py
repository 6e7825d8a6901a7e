"""`syringe serve`: the REST API. It lives in api/ (the core never imports the API) and joins the
`syringe` command through the entry point group `syringe.commands` (pyproject.toml)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from syringe.cli.common import CURRICULUM_HELP, print_problems
from syringe.cli.livelessons import runtime_problems
from syringe.settings import Settings


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from api.app import CurriculumRefused, create_app

    overrides = {"curriculum": args.curriculum} if args.curriculum else {}
    settings = Settings(**overrides)
    try:
        app = create_app(settings)
    except CurriculumRefused as refused:
        print_problems(refused.tree)
        print("refusing to serve a curriculum with problems", file=sys.stderr)
        return 1
    problems = runtime_problems(settings, app.state.catalog.tree)
    if problems:
        for problem in problems:
            print(f"error: {problem}", file=sys.stderr)
        print("refusing to serve: live lessons cannot run here", file=sys.stderr)
        return 1
    from syringe.observability.logs import configure

    configure()
    # No access log: browser terminals and proxied pages carry the learner's token in their URL. No proxy
    # headers: uvicorn would trust X-Forwarded-For from 127.0.0.1; SYRINGE_API__TRUSTED_PROXIES decides.
    uvicorn.run(
        app,
        host=args.host or settings.host,
        port=args.port or settings.port,
        log_config=None,
        access_log=False,
        proxy_headers=False,
        # The only WebSockets are terminals. The terminal refuses a message over its cap (1009); the server
        # refuses one over twice that from its header, and inflates compressed ones no further, so a huge
        # frame or a deflate bomb is never read into memory. Twice: a frame's compression overhead is not
        # what decides.
        ws_max_size=2 * settings.access.terminal_max_frame_bytes,
    )
    return 0



def register(commands: Any) -> None:
    serve = commands.add_parser("serve", help="serve the REST API")
    serve.add_argument("--curriculum", help=CURRICULUM_HELP)
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.set_defaults(func=cmd_serve)
