"""The Syringe app plus one trivial endpoint, on one uvicorn worker: the server side of bench/status_load.py.

python bench/status_server.py PORT   (settings from the environment, as for syringe serve)
"""

from __future__ import annotations

import sys
from pathlib import Path

import uvicorn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from api.app import create_app

app = create_app()


@app.get("/bench/trivial")
async def trivial() -> dict[str, bool]:
    return {"ok": True}


if __name__ == "__main__":
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=int(sys.argv[1]),
        workers=1,
        loop="uvloop",
        http="httptools",
        log_level="warning",
        access_log=False,
    )
