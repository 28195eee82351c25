"""`istioctl bug-report`: everything a bug report needs, in one .tar.gz.

    bug-report/
      versions.json              istioctl's, Pilot's and every proxy's versions
      logs/<process>.log         every process of the local mesh (run/logs/)
      logs/pods/<pod>/<name>.log every pod's Envoy log (run/pods/)
      proxies/<pod>.<ns>/        each proxy's config_dump.json (with EDS), server_info.json,
                                 clusters.json, stats.txt (from its admin API)
      pilot/<view>.json          Pilot's syncz, adsz, registryz, endpointz, configz
      resources/<kind>.yaml      every resource in the config store
      errors.txt                 what could not be collected, and why

Each source is collected on its own: a Pilot or store that does not answer, a proxy gone
mid-way, is written to errors.txt and the rest is still collected. The proxies are read
side by side (threads under asyncio), each request with a deadline.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import io
import json
import pathlib
import sys
import tarfile
import time
from typing import Any

from istioctl import target
from istioctl.proxy import admin
from pkg.config.kinds import ALL
from pkg.config.resource import dump_yaml
from pkg.kube import errors
from pkg.version import buildinfo

PILOT_VIEWS = ("syncz", "adsz", "registryz", "endpointz", "configz")
PREFIX = "bug-report"


class _Archive:
    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.errors: list[str] = []

    def add(self, name: str, content: bytes | str | Any) -> None:
        if isinstance(content, str):
            content = content.encode()
        elif not isinstance(content, bytes):
            content = (json.dumps(content, indent=2) + "\n").encode()
        self.files[f"{PREFIX}/{name}"] = content

    def failed(self, what: str, error: object) -> None:
        self.errors.append(f"{what}: {error}")

    def write(self, path: pathlib.Path) -> None:
        now = time.time()
        with tarfile.open(path, "w:gz") as tar:
            for name, content in sorted(self.files.items()):
                info = tarfile.TarInfo(name)
                info.size, info.mtime, info.mode = len(content), now, 0o644
                tar.addfile(info, io.BytesIO(content))


async def bug_report(args: argparse.Namespace) -> int:
    archive = _Archive()
    output = pathlib.Path(args.output_dir) / args.filename
    print(f"Creating an archive at {output}.", file=sys.stderr)
    pilot_version, proxies = await asyncio.to_thread(_pilot, args, archive)
    await asyncio.gather(
        asyncio.to_thread(_logs, pathlib.Path(args.run_dir), archive),
        asyncio.to_thread(_resources, args, archive),
        *(asyncio.to_thread(_proxy, p, args.timeout, archive) for p in proxies),
    )
    archive.add(
        "versions.json",
        {
            "clientVersion": buildinfo.get().to_json(),
            "meshVersion": [{"Component": "pilot", "Info": pilot_version}] if pilot_version else [],
            "dataPlaneVersion": [
                {
                    "ID": f"{p['pod']}.{p['namespace']}",
                    "IstioVersion": p.get("istio_version", "unknown"),
                }
                for p in proxies
            ],
            "collected": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        },
    )
    archive.add("errors.txt", "".join(f"{e}\n" for e in archive.errors))
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        archive.write(output)
    except OSError as error:
        print(f"error: cannot write {output}: {error.strerror}", file=sys.stderr)
        return 1
    for problem in archive.errors:
        print(f"Warning: not collected: {problem}", file=sys.stderr)
    print(
        f"Wrote {output}: {len(archive.files)} files ({len(proxies)} proxies), "
        f"{len(archive.errors)} not collected (see errors.txt).",
        file=sys.stderr,
    )
    print(output)
    return 0


def _pilot(
    args: argparse.Namespace, archive: _Archive
) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """Pilot's version and views, and the proxies it serves, to be read next."""
    pilot_version = None
    try:
        pilot_version = admin.get_json(f"{args.pilot}/version")
        archive.add("pilot/version.json", pilot_version)
    except admin.ProxyError as error:
        archive.failed("Pilot's version", error)
    proxies: list[dict[str, Any]] = []
    for view in PILOT_VIEWS:
        try:
            data = admin.get_json(f"{args.pilot}/debug/{view}", timeout=args.timeout)
        except admin.ProxyError as error:
            archive.failed(f"Pilot's /debug/{view}", error)
            continue
        archive.add(f"pilot/{view}.json", data)
        if view == "syncz":
            proxies = list(data.get("proxies", []))
    return pilot_version, proxies


def _proxy(proxy: dict[str, Any], timeout: float, archive: _Archive) -> None:
    folder = f"proxies/{proxy['pod']}.{proxy['namespace']}"
    address = str(proxy.get("ip", ""))
    for name, path, params in (
        ("config_dump.json", "/config_dump", {"include_eds": "true"}),
        ("server_info.json", "/server_info", {}),
        ("clusters.json", "/clusters", {"format": "json"}),
        ("stats.txt", "/stats", {}),
    ):
        url = admin.admin_url(address, path, **params)
        try:
            status, body = admin.get(url, timeout=timeout)
        except admin.ProxyError as error:
            archive.failed(f"{proxy['pod']}.{proxy['namespace']} {path}", error)
            continue
        if status != 200:
            archive.failed(f"{proxy['pod']}.{proxy['namespace']} {path}", f"answered {status}")
            continue
        archive.add(f"{folder}/{name}", body)
        if name == "server_info.json":
            try:
                metadata = json.loads(body).get("node", {}).get("metadata", {})
                proxy["istio_version"] = str(metadata.get("ISTIO_VERSION") or "unknown")
            except ValueError:
                pass


def _logs(run_dir: pathlib.Path, archive: _Archive) -> None:
    logs = run_dir / "logs"
    if not logs.is_dir():
        archive.failed("logs", f"no folder {logs} (give the mesh's run folder with --run-dir)")
    else:
        for log in sorted(logs.glob("*.log")):
            _read(log, f"logs/{log.name}", archive)
    for log in sorted((run_dir / "pods").glob("*/*.log")):
        _read(log, f"logs/pods/{log.parent.name}/{log.name}", archive)


def _read(path: pathlib.Path, name: str, archive: _Archive) -> None:
    try:
        archive.add(name, path.read_bytes())
    except OSError as error:
        archive.failed(str(path), error.strerror)


def _resources(args: argparse.Namespace, archive: _Archive) -> None:
    try:
        with target.store_client(args, timeout=args.timeout) as client:
            for schema in ALL:
                listed = client.list(schema).items
                if listed:
                    archive.add(f"resources/{schema.plural}.yaml", dump_yaml(listed))
    except errors.ApiError as error:
        archive.failed("the config store's resources", error)
