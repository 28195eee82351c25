"""istio-ca: the CA process. Loads (or creates) its keys, then serves CreateCertificate.

Listeners:
- `address` (TLS): the CA's serving certificate is one it issues itself at start, for DNS
  `istio-ca`, `localhost` and the listening IP, so clients verify it with root-cert.pem.
  Callers prove themselves with a bearer token.
- `mtls_address` (TLS, client certificate required): renewal with a certificate this CA
  issued. Istio serves both on one port by asking for a client certificate without
  requiring it; grpcio offers only "don't ask" or "ask and require" (its
  `require_client_auth=False` sends no CertificateRequest at all), hence two listeners.
- `health_address` (HTTP): `/ready` (200 with the root's SHA-256 once serving) and `/metrics`.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging

import grpc
from aiohttp import web

from api.security.v1alpha1 import ca_pb2
from pkg.grpcserver.requests import add_unary_service
from pkg.grpcserver.server import UNARY, new_server
from security.ca import cadir
from security.ca.auth import Authenticator
from security.ca.authority import CertificateAuthority, IssuePolicy, ServerCert
from security.ca.bundle import CaConfigError, KeyCertBundle
from security.ca.identity import IdentityError, SpiffeId
from security.ca.metrics import CaMetrics
from security.ca.options import CaOptions
from security.ca.service import CertificateService
from security.ca.tokens import TokenFile

log = logging.getLogger("security.ca")

CA_SERVICE = ca_pb2.DESCRIPTOR.services_by_name["IstioCertificateService"]
SERVER_NAMES = ("istio-ca", "localhost")
_STOP_GRACE = 1.0


class CaServer:
    def __init__(self, options: CaOptions) -> None:
        self.options = options
        self.ready = asyncio.Event()
        self.metrics = CaMetrics()
        self.authority: CertificateAuthority | None = None  # once keys are loaded
        # The bound addresses once serving (ports resolved when ":0" was asked for).
        self.address = options.address
        self.mtls_address = options.mtls_address
        self.health_address = options.health_address

    @property
    def bundle(self) -> KeyCertBundle:
        assert self.authority is not None, "the CA has not started"
        return self.authority.bundle

    async def run(self) -> None:
        """Serve until cancelled; `ready` is set once every listener is open.

        Raises CaConfigError or TokenFileError (before serving anything) when the key
        material or the token file is unusable.
        """
        _check_trust_domain(self.options.trust_domain)
        tokens = TokenFile(self.options.tokens)
        bundle = await asyncio.to_thread(
            cadir.load_or_create,
            self.options.ca_dir,
            cadir.RootOptions(
                trust_domain=self.options.trust_domain,
                ttl=self.options.self_signed_ca_cert_ttl,
                key_type=self.options.key_type,
            ),
        )
        authority = CertificateAuthority(
            bundle,
            IssuePolicy(
                trust_domain=self.options.trust_domain,
                default_ttl=self.options.workload_cert_ttl,
                max_ttl=self.options.max_workload_cert_ttl,
                custom_dns_names=self.options.custom_dns_names,
            ),
        )
        self.authority = authority
        self.metrics.set_root_expiry(bundle.root.not_valid_after_utc)
        serving = authority.issue_server_cert(*self._server_names(), self.options.server_cert_ttl)

        grpc_server = new_server(UNARY)
        add_unary_service(
            grpc_server,
            CA_SERVICE,
            CertificateService(authority, Authenticator(tokens, bundle), self.metrics),
            on_undecodable=self._undecodable,
        )
        self.address = _bind(grpc_server, self.options.address, _tls(serving, None))
        if self.options.mtls_address:
            self.mtls_address = _bind(
                grpc_server, self.options.mtls_address, _tls(serving, bundle.root_pem())
            )
        runner = web.AppRunner(self._http_app(), access_log=None)
        try:
            await grpc_server.start()
            await runner.setup()
            host, port = _split(self.options.health_address)
            try:
                await web.TCPSite(runner, host, port).start()
            except OSError as e:
                raise CaConfigError(
                    f"cannot listen on {self.options.health_address}: {e}"
                ) from None
            self.health_address = "{}:{}".format(*runner.addresses[0][:2])
            self.ready.set()
            log.info(
                "istio-ca ready: gRPC TLS on %s, mTLS on %s, HTTP on %s; %s CA for %s, "
                "root sha256 %s",
                self.address,
                self.mtls_address or "(off)",
                self.health_address,
                bundle.mode.value,
                self.options.trust_domain,
                bundle.root_fingerprint(),
            )
            await asyncio.Event().wait()  # until cancelled
        finally:
            self.ready.clear()
            await grpc_server.stop(_STOP_GRACE)
            await runner.cleanup()
            log.info("istio-ca stopped")

    def _undecodable(self, method: str) -> None:
        # A request that is not an IstioCertificateRequest is a CSR that cannot be parsed.
        self.metrics.csr_count.inc()
        self.metrics.refused(grpc.StatusCode.INVALID_ARGUMENT)

    def _server_names(self) -> tuple[list[str], list[str]]:
        dns, ips = list(SERVER_NAMES), ["127.0.0.1", "::1"]
        for address in (self.options.address, self.options.mtls_address):
            if not address:
                continue
            host = _split(address)[0].strip("[]")
            try:
                ip = ipaddress.ip_address(host)
            except ValueError:
                dns.append(host)
                continue
            if not ip.is_unspecified:
                ips.append(str(ip))
        return dns, ips

    def _http_app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/ready", self._handle_ready)
        app.router.add_get("/metrics", self._handle_metrics)
        return app

    async def _handle_ready(self, _: web.Request) -> web.Response:
        if not self.ready.is_set() or self.authority is None:
            return web.json_response({"ready": False}, status=503)
        root = self.bundle.root
        return web.json_response(
            {
                "ready": True,
                "mode": self.bundle.mode.value,
                "trustDomain": self.options.trust_domain,
                "rootSha256": self.bundle.root_fingerprint(),
                "rootNotAfter": root.not_valid_after_utc.isoformat(),
                "issued": self.authority.issued,
            }
        )

    async def _handle_metrics(self, _: web.Request) -> web.Response:
        return web.Response(body=self.metrics.render(), content_type="text/plain")


def _tls(serving: ServerCert, client_roots: bytes | None) -> grpc.ServerCredentials:
    return grpc.ssl_server_credentials(
        [(serving.key_pem, serving.chain_pem)],
        root_certificates=client_roots,
        require_client_auth=client_roots is not None,
    )


def _bind(server: grpc.aio.Server, address: str, credentials: grpc.ServerCredentials) -> str:
    try:
        port = server.add_secure_port(address, credentials)
    except RuntimeError as e:
        raise CaConfigError(f"cannot listen on {address}: {e}") from None
    return f"{_split(address)[0]}:{port}"


def _split(address: str) -> tuple[str, int]:
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise CaConfigError(f"invalid address {address!r}; want host:port")
    return host, int(port)


def _check_trust_domain(trust_domain: str) -> None:
    try:
        SpiffeId.parse(f"spiffe://{trust_domain}/ns/default/sa/default")
    except IdentityError:
        raise CaConfigError(f"invalid trust domain {trust_domain!r}") from None
