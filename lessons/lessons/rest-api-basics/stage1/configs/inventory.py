"""Stage 1: load the inventory service with this stage's devices through its own REST API."""

import json
import os
import urllib.request

base = f"http://{os.environ['SYRINGE_TARGET_HOST']}:{os.environ['SYRINGE_TARGET_PORT']}/api/devices"
devices = [{"name": f"r{i}", "stage": 1} for i in range(1, 4 + 1)]
request = urllib.request.Request(
    base, data=json.dumps(devices).encode(), method="PUT", headers={"Content-Type": "application/json"}
)
urllib.request.urlopen(request, timeout=10).read()
