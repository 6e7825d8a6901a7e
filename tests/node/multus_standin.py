#!/usr/bin/python3
"""The Multus stand-in: a CNI meta-plugin that does what Multus's thin plugin does, for the test node.

Multus is not packaged in Debian. scripts/k8s-node.sh installs this file as the node's only CNI network
(type ``multus-standin``), and containerd calls it for every pod sandbox. On ADD it:

1. runs the cluster's default network (``delegate``: the bridge plugin with host-local) for eth0;
2. reads the pod's ``k8s.v1.cni.cncf.io/networks`` annotation from the API server, in either form Multus
   accepts: the JSON list (``[{"name": ..., "namespace": ..., "interface": ..., "ips": [...], "mac": ...,
   "cni-args": {...}}]``) or the comma list (``ns/name@ifname, name``);
3. attaches each NetworkAttachmentDefinition's ``spec.config`` (one plugin or a conflist) through the real
   CNI plugins, with the requested interface name, else net1, net2... by position, as Multus does;
   ``ips`` and ``mac`` reach a plugin as runtimeConfig only if it declares those capabilities, as libcni does;
4. writes the ``k8s.v1.cni.cncf.io/network-status`` annotation, the default network first.

A failed attachment undoes the ones before it and fails the ADD, so the kubelet retries the sandbox and
the pod shows the error in its events, as with Multus. DEL is idempotent: it undoes what the state file
records, and succeeds when there is nothing left to undo.

The one difference a test could see on the node, never through the API: a host-local IPAM with no
``dataDir`` keeps its leases under ``ipam_dir`` (the node's run dir), not /var/lib/cni/networks, so that
the node's teardown can prove no address leaked.

Configuration (the plugin entry of the node's conflist):
  {"type": "multus-standin", "apiserver": URL, "token_file": PATH, "ca_file": PATH, "state_dir": PATH,
   "ipam_dir": PATH, "delegate": {the default network's plugin config}}
Only the standard library: it runs as a CNI plugin, outside any virtualenv.
"""

from __future__ import annotations

import contextlib
import copy
import fcntl
import json
import os
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

NETWORKS = "k8s.v1.cni.cncf.io/networks"
NETWORK_STATUS = "k8s.v1.cni.cncf.io/network-status"
NAD_PATH = "/apis/k8s.cni.cncf.io/v1/namespaces/{namespace}/network-attachment-definitions/{name}"
SUPPORTED_VERSIONS = ["0.3.0", "0.3.1", "0.4.0", "1.0.0"]


class CniError(Exception):
    def __init__(self, code: int, msg: str, details: str = "") -> None:
        super().__init__(msg)
        self.code, self.msg, self.details = code, msg, details


def log(conf: dict[str, Any], message: str) -> None:
    """One line per event in the node's stand-in log, for whoever debugs a sandbox that failed."""
    with contextlib.suppress(OSError), open(Path(conf["state_dir"]) / "multus-standin.log", "a") as out:
        out.write(f"{time.strftime('%H:%M:%S')} {os.environ.get('CNI_CONTAINERID', '')[:12]} {message}\n")


# ------------------------------------------------------------------------------------------- the API server
def api(conf: dict[str, Any], path: str, method: str = "GET", body: dict[str, Any] | None = None) -> Any:
    """One call to the API server, straight to 127.0.0.1: the node's dead proxy must not apply."""
    context = ssl.create_default_context(cafile=conf["ca_file"])
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context))
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(conf["apiserver"] + path, data=data, method=method)
    request.add_header("Authorization", "Bearer " + Path(conf["token_file"]).read_text().strip())
    request.add_header("Accept", "application/json")
    if body is not None:
        request.add_header("Content-Type", "application/merge-patch+json")
    with opener.open(request, timeout=10) as response:
        return json.loads(response.read())


def selections(annotation: str, namespace: str) -> list[dict[str, Any]]:
    """The pod's network selection elements, each with its namespace, from either annotation form."""
    text = annotation.strip()
    if not text:
        return []
    if text.startswith("["):
        try:
            elements = json.loads(text)
        except json.JSONDecodeError as exc:
            raise CniError(7, f"{NETWORKS}: not valid JSON: {exc}") from exc
        if not isinstance(elements, list) or not all(isinstance(e, dict) and e.get("name") for e in elements):
            raise CniError(7, f"{NETWORKS}: every element needs a name")
    else:
        elements = []
        for item in text.split(","):
            item = item.strip()
            if not item:
                continue
            element: dict[str, Any] = {}
            if "@" in item:
                item, element["interface"] = item.split("@", 1)
            if "/" in item:
                element["namespace"], item = item.split("/", 1)
            element["name"] = item
            elements.append(element)
    result = []
    for element in elements:
        chosen = dict(element)
        if "/" in chosen["name"]:
            chosen["namespace"], chosen["name"] = chosen["name"].split("/", 1)
        chosen.setdefault("namespace", namespace)
        result.append(chosen)
    return result


# ------------------------------------------------------------------------------------------- CNI plugins
def plugin_list(netconf: dict[str, Any]) -> list[dict[str, Any]]:
    """A NAD's config as the list of plugin configs to run: a conflist's plugins, or the one plugin."""
    if "plugins" in netconf:
        return [
            {**plugin, "name": netconf.get("name", ""), "cniVersion": netconf.get("cniVersion", "0.3.1")}
            for plugin in netconf["plugins"]
        ]
    return [netconf]


def run_plugin(conf: dict[str, Any], plugin: dict[str, Any], command: str, ifname: str) -> dict[str, Any]:
    """Run one CNI plugin the way libcni does: its binary from CNI_PATH, the config on stdin."""
    binary = next(
        (
            Path(d) / plugin["type"]
            for d in os.environ.get("CNI_PATH", "").split(":")
            if (Path(d) / plugin["type"]).is_file()
        ),
        None,
    )
    if binary is None:
        raise CniError(7, f"failed to find plugin {plugin['type']!r} in CNI_PATH {os.environ.get('CNI_PATH', '')}")
    env = {**os.environ, "CNI_COMMAND": command, "CNI_IFNAME": ifname}
    done = subprocess.run([str(binary)], input=json.dumps(plugin), env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        try:
            error = json.loads(done.stdout)
            raise CniError(
                int(error.get("code", 999)),
                f"{plugin['type']} {ifname}: {error.get('msg', '')}",
                str(error.get("details", "")),
            )
        except (json.JSONDecodeError, AttributeError):
            raise CniError(999, f"{plugin['type']} {ifname}: {done.stdout.strip()} {done.stderr.strip()}") from None
    return json.loads(done.stdout) if done.stdout.strip() else {}


def private_ipam(conf: dict[str, Any], plugin: dict[str, Any]) -> dict[str, Any]:
    """host-local without a dataDir keeps its leases in the node's run dir rather than /var/lib/cni."""
    ipam = plugin.get("ipam")
    if isinstance(ipam, dict) and ipam.get("type") == "host-local" and not ipam.get("dataDir"):
        plugin = {**plugin, "ipam": {**ipam, "dataDir": conf["ipam_dir"]}}
    return plugin


def runtime_config(plugin: dict[str, Any], element: dict[str, Any]) -> dict[str, Any]:
    """What Multus passes through libcni: only the capabilities the plugin declares receive runtimeConfig."""
    capabilities = plugin.get("capabilities") or {}
    wanted = {"ips": element.get("ips"), "mac": element.get("mac")}
    runtime = {key: value for key, value in wanted.items() if value and capabilities.get(key)}
    plugin = dict(plugin)
    if runtime:
        plugin["runtimeConfig"] = {**plugin.get("runtimeConfig", {}), **runtime}
    if element.get("cni-args"):
        plugin["args"] = {**plugin.get("args", {}), "cni": element["cni-args"]}
    return plugin


def add_chain(conf: dict[str, Any], plugins: list[dict[str, Any]], ifname: str) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for plugin in plugins:
        if result:
            plugin = {**plugin, "prevResult": result}
        result = run_plugin(conf, plugin, "ADD", ifname) or result
    return result


def del_chain(conf: dict[str, Any], plugins: list[dict[str, Any]], ifname: str) -> None:
    """Undo one attachment, last plugin first. DEL must succeed when there is nothing left to undo."""
    for plugin in reversed(plugins):
        try:
            run_plugin(conf, plugin, "DEL", ifname)
        except CniError as exc:
            log(conf, f"DEL {ifname} {plugin['type']}: {exc.msg} (ignored)")


def addresses(result: dict[str, Any]) -> list[str]:
    return [ip["address"].split("/")[0] for ip in result.get("ips", [])]


def mac_of(result: dict[str, Any], ifname: str) -> str:
    for interface in result.get("interfaces", []):
        if interface.get("name") == ifname and interface.get("sandbox"):
            return str(interface.get("mac", ""))
    return ""


# ------------------------------------------------------------------------------------------- commands
class State:
    """What this sandbox has attached, saved before each attachment so a DEL can undo a half-done ADD."""

    def __init__(self, conf: dict[str, Any], container: str) -> None:
        self.path = Path(conf["state_dir"]) / f"{container}.json"
        self.bridges = Path(conf["state_dir"]) / "bridges"

    def load(self) -> dict[str, Any] | None:
        try:
            return json.loads(self.path.read_text())
        except FileNotFoundError:
            return None

    def save(self, state: dict[str, Any]) -> None:
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps(state))
        temporary.replace(self.path)

    def remember_bridges(self, plugins: list[dict[str, Any]]) -> None:
        """The node's teardown removes the bridges attachments made (the bridge plugin never deletes one)."""
        known = set(self.bridges.read_text().split()) if self.bridges.exists() else set()
        new = {p["bridge"] for p in plugins if p.get("type") == "bridge" and p.get("bridge")} - known
        if new:
            with self.bridges.open("a") as out:
                out.writelines(f"{name}\n" for name in sorted(new))


def cmd_add(conf: dict[str, Any]) -> dict[str, Any]:
    args = dict(kv.split("=", 1) for kv in os.environ.get("CNI_ARGS", "").split(";") if "=" in kv)
    namespace, pod_name = args.get("K8S_POD_NAMESPACE", ""), args.get("K8S_POD_NAME", "")
    ifname = os.environ["CNI_IFNAME"]
    state = State(conf, os.environ["CNI_CONTAINERID"])
    default = [private_ipam(conf, conf["delegate"])]
    record: dict[str, Any] = {
        "netns": os.environ.get("CNI_NETNS", ""),
        "pod": f"{namespace}/{pod_name}",
        "attachments": [{"ifname": ifname, "plugins": default}],
    }
    state.save(record)
    state.remember_bridges(default)
    primary = add_chain(conf, default, ifname)
    status: list[dict[str, Any]] = [
        {
            "name": conf.get("name", "default"),
            "interface": ifname,
            "ips": addresses(primary),
            "mac": mac_of(primary, ifname),
            "default": True,
            "dns": {},
        }
    ]
    if namespace and pod_name:
        pod = api(conf, f"/api/v1/namespaces/{namespace}/pods/{pod_name}")
        chosen = selections((pod["metadata"].get("annotations") or {}).get(NETWORKS, ""), namespace)
        try:
            for position, element in enumerate(chosen, 1):
                status.append(attach(conf, state, record, element, element.get("interface") or f"net{position}"))
        except Exception:
            for attachment in reversed(record["attachments"]):
                del_chain(conf, attachment["plugins"], attachment["ifname"])
            state.path.unlink(missing_ok=True)
            raise
        if chosen:
            body = {"metadata": {"annotations": {NETWORK_STATUS: json.dumps(status, indent=1)}}}
            try:
                api(conf, f"/api/v1/namespaces/{namespace}/pods/{pod_name}", "PATCH", body)
            except (urllib.error.URLError, OSError) as exc:  # Multus logs and goes on, too
                log(conf, f"writing {NETWORK_STATUS} of {namespace}/{pod_name} failed: {exc}")
    log(conf, f"ADD {namespace}/{pod_name}: " + ", ".join(f"{s['interface']}={s['ips']}" for s in status))
    primary["cniVersion"] = conf["cniVersion"]
    return primary


def attach(
    conf: dict[str, Any], state: State, record: dict[str, Any], element: dict[str, Any], ifname: str
) -> dict[str, Any]:
    """Attach one NetworkAttachmentDefinition as ``ifname``; returns its network-status entry."""
    name, namespace = element["name"], element["namespace"]
    try:
        nad = api(conf, NAD_PATH.format(namespace=namespace, name=name))
    except urllib.error.HTTPError as exc:
        raise CniError(
            7,
            f"cannot find a network-attachment-definition ({name}) in namespace ({namespace}): {exc.code} {exc.reason}",
        ) from exc
    try:
        netconf = json.loads(nad.get("spec", {}).get("config", ""))
    except json.JSONDecodeError as exc:
        raise CniError(7, f"network-attachment-definition {namespace}/{name}: spec.config is not JSON: {exc}") from exc
    plugins = [runtime_config(private_ipam(conf, p), element) for p in plugin_list(copy.deepcopy(netconf))]
    record["attachments"].append({"ifname": ifname, "plugins": plugins})
    state.save(record)
    state.remember_bridges(plugins)
    result = add_chain(conf, plugins, ifname)
    return {
        "name": f"{namespace}/{name}",
        "interface": ifname,
        "ips": addresses(result),
        "mac": mac_of(result, ifname),
        "dns": {},
    }


def cmd_del(conf: dict[str, Any]) -> None:
    state = State(conf, os.environ["CNI_CONTAINERID"])
    record = state.load()
    if record is None:  # never added, or already deleted: only the default network could be left
        del_chain(conf, [private_ipam(conf, conf["delegate"])], os.environ["CNI_IFNAME"])
        return
    for attachment in reversed(record["attachments"]):
        del_chain(conf, attachment["plugins"], attachment["ifname"])
    state.path.unlink(missing_ok=True)
    log(conf, f"DEL {record.get('pod', '')}")


def main() -> None:
    conf = json.loads(sys.stdin.read())
    command = os.environ.get("CNI_COMMAND", "")
    version = conf.get("cniVersion", "1.0.0")
    if command == "VERSION":
        print(json.dumps({"cniVersion": version, "supportedVersions": SUPPORTED_VERSIONS}))
        return
    conf["delegate"] = {"cniVersion": version, "name": conf.get("name", "default"), **conf["delegate"]}
    Path(conf["state_dir"]).mkdir(parents=True, exist_ok=True)
    try:
        # One sandbox at a time: containerd may run a DEL while an ADD of the same sandbox is under way.
        with open(Path(conf["state_dir"]) / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if command == "ADD":
                print(json.dumps(cmd_add(conf)))
            elif command == "DEL":
                cmd_del(conf)
            elif command == "CHECK":
                run_plugin(conf, private_ipam(conf, conf["delegate"]), "CHECK", os.environ["CNI_IFNAME"])
            else:
                raise CniError(4, f"unknown CNI_COMMAND {command!r}")
    except CniError as exc:
        log(conf, f"{command} failed: {exc.msg}")
        print(json.dumps({"cniVersion": version, "code": exc.code, "msg": exc.msg, "details": exc.details}))
        sys.exit(1)
    except Exception as exc:  # noqa: BLE001 - a CNI plugin answers every failure in CNI's error format
        log(conf, f"{command} failed: {exc!r}")
        print(json.dumps({"cniVersion": version, "code": 999, "msg": f"multus-standin: {exc}"}))
        sys.exit(1)


if __name__ == "__main__":
    main()
