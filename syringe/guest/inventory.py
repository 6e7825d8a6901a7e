"""The example lessons' inventory service: devices over a REST API, a web page that lists them, and the
API's OpenAPI document. The api-server image runs it on port 8080 (and so does the tiny VM's inventory
flavour); a stage's configurator loads its devices through the same API a learner calls.

    python3 -m syringe.guest.inventory [--port 8080] [--address 0.0.0.0]

    GET    /                      the web page
    GET    /openapi.json          the API, described
    GET    /api/devices           every device          PUT  /api/devices  replace them all (a JSON array)
    POST   /api/devices           add one (409 if its name is taken)
    GET    /api/devices/{name}    one device             PUT  replace or create it
    PATCH  /api/devices/{name}    change some fields     DELETE  remove it

Learners are untrusted: bodies are capped, devices validated field by field, and every refusal is a 4xx
with a JSON body that says what is wrong.
"""

from __future__ import annotations

import argparse
import html
import ipaddress
import json
import re
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

MAX_BODY = 256 * 1024
MAX_DEVICES = 500
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
FIELDS: dict[str, dict[str, Any]] = {
    "name": {"type": "string", "pattern": NAME.pattern, "description": "unique; the device's key"},
    "role": {"type": "string", "maxLength": 64, "description": "router, switch, firewall, host..."},
    "platform": {"type": "string", "maxLength": 64, "description": "what runs on it"},
    "address": {"type": "string", "description": "its management address, IPv4 or IPv6, with or without a prefix"},
    "site": {"type": "string", "maxLength": 64},
    "stage": {"type": "integer", "minimum": 0, "maximum": 1000, "description": "the lesson stage that set it"},
}


class Refused(Exception):
    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status


def validate(device: object, name: str | None = None, partial: bool = False) -> dict[str, Any]:
    """A device as the API accepts it, or Refused(400) naming the field and what is wrong with it."""
    if not isinstance(device, dict):
        raise Refused(HTTPStatus.BAD_REQUEST, "a device is a JSON object")
    unknown = sorted(set(device) - set(FIELDS))
    if unknown:
        raise Refused(HTTPStatus.BAD_REQUEST, f"unknown field {unknown[0]!r}; a device has {', '.join(FIELDS)}")
    if name is not None:
        if device.get("name", name) != name:
            raise Refused(HTTPStatus.BAD_REQUEST, f"the body names {device['name']!r}, the path {name!r}")
        device = {**device, "name": name}
    if not partial and "name" not in device:
        raise Refused(HTTPStatus.BAD_REQUEST, "name: required")
    for field, value in device.items():
        rule = FIELDS[field]
        if rule["type"] == "integer":
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= rule["maximum"]:
                raise Refused(HTTPStatus.BAD_REQUEST, f"{field}: an integer from 0 to {rule['maximum']}")
            continue
        if not isinstance(value, str):
            raise Refused(HTTPStatus.BAD_REQUEST, f"{field}: a string")
        if field == "name" and not NAME.match(value):
            raise Refused(HTTPStatus.BAD_REQUEST, "name: letters, digits, '.', '_' and '-', at most 63")
        if field == "address":
            try:
                ipaddress.ip_interface(value)
            except ValueError:
                raise Refused(HTTPStatus.BAD_REQUEST, f"address: {value[:64]!r} is not an IP address") from None
        elif len(value) > rule.get("maxLength", 63):
            raise Refused(HTTPStatus.BAD_REQUEST, f"{field}: at most {rule['maxLength']} characters")
    return dict(device)


class Inventory:
    """The devices, by name, in the order they were added. Thread-safe."""

    def __init__(self) -> None:
        self._devices: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def all(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._devices.values())

    def get(self, name: str) -> dict[str, Any]:
        with self._lock:
            if name not in self._devices:
                raise Refused(HTTPStatus.NOT_FOUND, f"no device {name!r}")
            return self._devices[name]

    def replace_all(self, devices: object) -> list[dict[str, Any]]:
        if not isinstance(devices, list):
            raise Refused(HTTPStatus.BAD_REQUEST, "PUT /api/devices takes a JSON array of devices")
        if len(devices) > MAX_DEVICES:
            raise Refused(HTTPStatus.BAD_REQUEST, f"at most {MAX_DEVICES} devices")
        checked = [validate(device) for device in devices]
        names = [device["name"] for device in checked]
        if len(set(names)) != len(names):
            raise Refused(HTTPStatus.BAD_REQUEST, "two devices have the same name")
        with self._lock:
            self._devices = {device["name"]: device for device in checked}
            return list(self._devices.values())

    def put(self, device: dict[str, Any], create_only: bool = False) -> bool:
        """Store a validated device; True when it is new."""
        with self._lock:
            new = device["name"] not in self._devices
            if create_only and not new:
                raise Refused(HTTPStatus.CONFLICT, f"device {device['name']!r} exists; PUT or PATCH changes it")
            if new and len(self._devices) >= MAX_DEVICES:
                raise Refused(HTTPStatus.INSUFFICIENT_STORAGE, f"the inventory holds at most {MAX_DEVICES} devices")
            self._devices[device["name"]] = device
            return new

    def patch(self, name: str, changes: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            if name not in self._devices:
                raise Refused(HTTPStatus.NOT_FOUND, f"no device {name!r}")
            self._devices[name] = {**self._devices[name], **changes}
            return self._devices[name]

    def delete(self, name: str) -> None:
        with self._lock:
            if self._devices.pop(name, None) is None:
                raise Refused(HTTPStatus.NOT_FOUND, f"no device {name!r}")


def openapi() -> dict[str, Any]:
    device = {"type": "object", "required": ["name"], "additionalProperties": False, "properties": FIELDS}
    ref = {"$ref": "#/components/schemas/Device"}
    error = {
        "description": "refused",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }

    def body(schema: dict[str, Any]) -> dict[str, Any]:
        return {"required": True, "content": {"application/json": {"schema": schema}}}

    def answer(description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
        return {"description": description, **({"content": {"application/json": {"schema": schema}}} if schema else {})}

    name = [{"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}]
    many = {"type": "array", "items": ref}
    return {
        "openapi": "3.0.3",
        "info": {"title": "Inventory", "version": "1.0", "description": "The lesson's network devices."},
        "paths": {
            "/api/devices": {
                "get": {"summary": "List the devices", "responses": {"200": answer("the devices", many)}},
                "put": {"summary": "Replace every device", "requestBody": body(many),
                        "responses": {"200": answer("the devices now", many), "400": error}},
                "post": {"summary": "Add a device", "requestBody": body(ref),
                         "responses": {"201": answer("added", ref), "400": error, "409": error}},
            },
            "/api/devices/{name}": {
                "parameters": name,
                "get": {"summary": "One device", "responses": {"200": answer("the device", ref), "404": error}},
                "put": {"summary": "Replace or create a device", "requestBody": body(ref),
                        "responses": {"200": answer("replaced", ref), "201": answer("created", ref), "400": error}},
                "patch": {"summary": "Change some of a device's fields", "requestBody": body({"type": "object"}),
                          "responses": {"200": answer("the device now", ref), "400": error, "404": error}},
                "delete": {"summary": "Remove a device", "responses": {"204": answer("removed"), "404": error}},
            },
        },
        "components": {
            "schemas": {
                "Device": device,
                "Error": {"type": "object", "properties": {"error": {"type": "string"}}},
            }
        },
    }  # fmt: skip


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Inventory: {host}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{{font:15px/1.5 system-ui,sans-serif;margin:2rem;color:#1a1a1a}}table{{border-collapse:collapse}}
th,td{{border:1px solid #999;padding:.3rem .7rem;text-align:left}}th{{background:#eee}}
code{{background:#f3f3f3}}</style>
</head><body><h1>Inventory</h1>
<p>{count} device(s). The same data as <a href="/api/devices"><code>GET /api/devices</code></a>; the API is
described in <a href="/openapi.json"><code>/openapi.json</code></a>.</p>
<table><thead><tr>{header}</tr></thead><tbody>{rows}</tbody></table></body></html>
"""


def page(devices: list[dict[str, Any]], host: str) -> str:
    header = "".join(f"<th scope=col>{html.escape(field)}</th>" for field in FIELDS)
    rows = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(device.get(field, '')))}</td>" for field in FIELDS) + "</tr>"
        for device in devices
    )
    return PAGE.format(host=html.escape(host), count=len(devices), header=header, rows=rows or "")


class Handler(BaseHTTPRequestHandler):
    inventory: Inventory
    server_version = "inventory/1.0"
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # the stdlib's signature
        pass  # the console is the VM's: keep it for the boot

    def _send(self, status: HTTPStatus, payload: object = None, content_type: str = "application/json") -> None:
        body = (
            b"" if payload is None else (payload.encode() if isinstance(payload, str) else json.dumps(payload).encode())
        )
        self.send_response(status)
        if payload is not None:
            self.send_header(
                "Content-Type", f"{content_type}; charset=utf-8" if content_type.startswith("text") else content_type
            )
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _body(self) -> object:
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
            raise Refused(HTTPStatus.LENGTH_REQUIRED, "send the body with a Content-Length")
        if int(length) > MAX_BODY:
            raise Refused(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"a body is at most {MAX_BODY} bytes")
        try:
            return json.loads(self.rfile.read(int(length)))
        except (ValueError, UnicodeDecodeError) as exc:
            raise Refused(HTTPStatus.BAD_REQUEST, f"the body is not JSON: {exc}") from None

    def _route(self) -> None:
        path = urlsplit(self.path).path
        devices = self.server.inventory  # type: ignore[attr-defined]
        method = "GET" if self.command == "HEAD" else self.command
        if path == "/" and method == "GET":
            return self._send(HTTPStatus.OK, page(devices.all(), self.headers.get("Host", "")), "text/html")
        if path == "/openapi.json" and method == "GET":
            return self._send(HTTPStatus.OK, openapi())
        if path == "/api/devices":
            if method == "GET":
                return self._send(HTTPStatus.OK, devices.all())
            if method == "PUT":
                return self._send(HTTPStatus.OK, devices.replace_all(self._body()))
            if method == "POST":
                device = validate(self._body())
                devices.put(device, create_only=True)
                return self._send(HTTPStatus.CREATED, device)
            raise Refused(HTTPStatus.METHOD_NOT_ALLOWED, f"{self.command} {path}: use GET, PUT or POST")
        if path.startswith("/api/devices/"):
            name = unquote(path.removeprefix("/api/devices/"))
            if method == "GET":
                return self._send(HTTPStatus.OK, devices.get(name))
            if method == "PUT":
                device = validate(self._body(), name)
                created = devices.put(device)
                return self._send(HTTPStatus.CREATED if created else HTTPStatus.OK, device)
            if method == "PATCH":
                changes = validate(self._body(), name, partial=True)
                return self._send(HTTPStatus.OK, devices.patch(name, changes))
            if method == "DELETE":
                devices.delete(name)
                return self._send(HTTPStatus.NO_CONTENT)
            raise Refused(HTTPStatus.METHOD_NOT_ALLOWED, f"{self.command} {path}: use GET, PUT, PATCH or DELETE")
        raise Refused(HTTPStatus.NOT_FOUND, f"nothing at {path}; the API is under /api/devices")

    def _handle(self) -> None:
        try:
            self._route()
        except Refused as exc:
            self.close_connection = True  # the body may not have been read
            self._send(exc.status, {"error": str(exc)})

    do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _handle


def make_server(address: str, port: int) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer((address, port), Handler)
    server.daemon_threads = True
    server.inventory = Inventory()  # type: ignore[attr-defined]
    return server


def main() -> None:
    parser = argparse.ArgumentParser(description="The example lessons' inventory service")
    parser.add_argument("--address", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args()
    make_server(args.address, args.port).serve_forever()


if __name__ == "__main__":
    main()
