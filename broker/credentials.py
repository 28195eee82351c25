"""What a binding hands to an app: the OSB binding response, from the binding's record and
its instance's service, with the servers' identities as the registry knows them now."""

from __future__ import annotations

import datetime
from collections.abc import Iterable

from cryptography import x509

from api.broker.v1alpha1 import service_binding_pb2, service_instance_pb2
from broker import target
from broker.osb import model
from pkg.config.resource import Resource


def binding_view(
    record: service_binding_pb2.ServiceBinding,
    found: service_instance_pb2.Target,
    workload_entries: Iterable[Resource],
    service_entries: Iterable[Resource],
    trust_domain: str,
) -> model.BindingView:
    """`credentials`: the service's URL in the mesh, the binding's SPIFFE id, its certificate
    and key, the root, and the SPIFFE ids the app should accept from the server."""
    port = found.ports[0] if found.ports else 0
    web = found.protocol.startswith(("HTTP", "GRPC")) or not found.protocol
    scheme = "http" if web else "tcp"
    issued = record.credentials
    credentials = {
        "uri": f"{scheme}://{found.host}:{port}" if port else f"{scheme}://{found.host}",
        "host": found.host,
        "port": port,
        "spiffe_id": record.spiffe_id,
        "certificate": issued.certificate_chain,
        "private_key": issued.private_key,
        "ca_certificate": issued.root_certificate,
        "server_identities": target.server_identities(
            found, workload_entries, service_entries, trust_domain
        ),
        "expires_at": issued.expires_at,
    }
    endpoints = (
        (model.Endpoint(found.host, tuple(str(p) for p in found.ports)),) if found.ports else ()
    )
    return model.BindingView(
        credentials=credentials,
        endpoints=endpoints,
        expires_at=issued.expires_at or None,
        renew_before=_renew_before(issued.certificate_chain),
    )


def _renew_before(chain: str) -> str | None:
    """Half way through the certificate's life, as the node agent renews."""
    if not chain:
        return None
    leaf = x509.load_pem_x509_certificate(chain.encode())
    start, end = leaf.not_valid_before_utc, leaf.not_valid_after_utc
    half = start + (end - start) / 2
    return half.astimezone(datetime.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
