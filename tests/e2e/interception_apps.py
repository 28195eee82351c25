"""The apps of interception_test.py, run inside its network namespaces (`python -m`).

    serve http:<address>:<port>:<name> echo:<address>:<port>:<prefix> tls:<address>:<port>:<name>
        HTTP servers that answer with their name, the caller's address and the Host they
        were sent; TCP servers that answer each line with `<prefix> <line>` (Istio's
        tcp-echo sample); TLS servers (certificate `<name>.pem`, key `<name>.key` in
        $TLS_DIR) that send their name once the handshake is done. Prints `ready` once
        every socket listens.
    get <url> [--host H] [--count N]
        N plain HTTP GETs, no proxy settings (urllib's proxies off): a JSON list of
        {"status", "body"} or {"error"}.
    tcp <address> <port> <count>
        <count> connections, one line each: a JSON object counting the answers.
    tls <address> <port> <sni>
        A TLS handshake naming <sni> (the certificate is not checked: the test looks at who
        answers): {"name"} of the server, or {"error"}.
    apply <store url> <file>
        The YAML's resources created or updated in the config store.
    delete <store url> <kind> <namespace> <name>

Everything is plain sockets and the standard library, as an app with no mesh code is.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import pathlib
import socket
import socketserver
import ssl
import sys
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def _http_server(address: str, port: int, name: str) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps(
                {"name": name, "peer": self.client_address[0], "host": self.headers.get("Host")}
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    return ThreadingHTTPServer((address, port), Handler)


def _echo_server(address: str, port: int, prefix: str) -> socketserver.ThreadingTCPServer:
    class Handler(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            for line in self.rfile:
                self.wfile.write(f"{prefix} {line.decode().strip()}\n".encode())

    socketserver.ThreadingTCPServer.allow_reuse_address = True
    return socketserver.ThreadingTCPServer((address, port), Handler)


def _tls_server(address: str, port: int, name: str) -> socketserver.ThreadingTCPServer:
    folder = pathlib.Path(os.environ["TLS_DIR"])
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(folder / f"{name}.pem", folder / f"{name}.key")

    class Handler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            try:
                with context.wrap_socket(self.request, server_side=True) as conn:
                    conn.sendall(f"{name}\n".encode())
            except (ssl.SSLError, OSError):
                pass

    socketserver.ThreadingTCPServer.allow_reuse_address = True
    return socketserver.ThreadingTCPServer((address, port), Handler)


_SERVERS = {"http": _http_server, "echo": _echo_server, "tls": _tls_server}


def serve(specs: list[str]) -> None:
    servers: list[socketserver.BaseServer] = []
    for spec in specs:
        kind, address, port, name = spec.split(":")
        servers.append(_SERVERS[kind](address, int(port), name))
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    print("ready", flush=True)
    threading.Event().wait()


def get(url: str, host: str | None, count: int) -> list[dict[str, object]]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    results: list[dict[str, object]] = []
    for _ in range(count):
        request = urllib.request.Request(url, headers={"Host": host} if host else {})
        try:
            with opener.open(request, timeout=5) as response:
                results.append({"status": response.status, "body": response.read().decode()})
        except urllib.error.HTTPError as error:
            results.append({"status": error.code, "body": error.read().decode(errors="replace")})
        except OSError as error:
            results.append({"error": f"{type(error).__name__}: {error}"})
    return results


def tcp(address: str, port: int, count: int) -> dict[str, int]:
    answers: collections.Counter[str] = collections.Counter()
    for i in range(count):
        try:
            with socket.create_connection((address, port), timeout=5) as conn:
                conn.sendall(f"hello-{i}\n".encode())
                reply = conn.makefile().readline().strip()
            answers[reply.split(" ")[0] if reply else "(closed)"] += 1
        except OSError as error:
            answers[type(error).__name__] += 1
    return dict(answers)


def tls(address: str, port: int, sni: str) -> dict[str, str]:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with (
            socket.create_connection((address, port), timeout=5) as raw,
            context.wrap_socket(raw, server_hostname=sni) as conn,
        ):
            return {"name": conn.makefile().readline().strip()}
    except OSError as error:
        return {"error": f"{type(error).__name__}: {error}"}


async def _apply(url: str, path: str) -> None:
    from pkg.config import loader
    from pkg.kube.client import ConfigClient

    text = pathlib.Path(path).read_text()  # noqa: ASYNC240 (one small file, before any I/O)
    async with ConfigClient(url) as client:
        for resource in loader.load_text(text, source=path):
            await client.apply(resource)


async def _delete(url: str, kind: str, namespace: str, name: str) -> None:
    from pkg.config.kinds import ALL
    from pkg.kube.client import ConfigClient

    async with ConfigClient(url) as client:
        await client.delete(ALL.by_name(kind.lower()), name, namespace)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="interception_apps")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve").add_argument("specs", nargs="+")
    getter = commands.add_parser("get")
    getter.add_argument("url")
    getter.add_argument("--host")
    getter.add_argument("--count", type=int, default=1)
    connector = commands.add_parser("tcp")
    connector.add_argument("address")
    connector.add_argument("port", type=int)
    connector.add_argument("count", type=int)
    handshake = commands.add_parser("tls")
    handshake.add_argument("address")
    handshake.add_argument("port", type=int)
    handshake.add_argument("sni")
    applier = commands.add_parser("apply")
    applier.add_argument("store")
    applier.add_argument("file")
    deleter = commands.add_parser("delete")
    for name in ("store", "kind", "namespace", "name"):
        deleter.add_argument(name)
    args = parser.parse_args(argv)
    if args.command == "serve":
        serve(args.specs)
    elif args.command == "get":
        print(json.dumps(get(args.url, args.host, args.count)))
    elif args.command == "tcp":
        print(json.dumps(tcp(args.address, args.port, args.count)))
    elif args.command == "tls":
        print(json.dumps(tls(args.address, args.port, args.sni)))
    elif args.command == "apply":
        asyncio.run(_apply(args.store, args.file))
    else:
        asyncio.run(_delete(args.store, args.kind, args.namespace, args.name))
    return 0


if __name__ == "__main__":
    sys.exit(main())
