"""Envoy's access log in every listener, from MeshConfig `accessLogFile`, `accessLogEncoding`
and `accessLogFormat`, as Istio's Pilot configures it without a Telemetry resource
(pilot/pkg/model/telemetry_logging.go, its mesh-config path).

    accessLogFile: /dev/stdout     # "" (Istio's default profile): no access log at all
    accessLogEncoding: JSON        # TEXT (default) or JSON
    accessLogFormat: ""            # "": Istio's format for the encoding

An empty `accessLogFile` costs nothing per request: no logger is configured. Otherwise every
HTTP connection manager and every TCP proxy writes one line per request or connection to that
file (Envoy's file access logger), in Istio's text format or its JSON fields unless
`accessLogFormat` says otherwise. For JSON, `accessLogFormat` is a JSON object of field names
to command operators; one that does not parse falls back to Istio's fields, as Istio does.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from api.mesh.v1alpha1 import config_pb2

log = logging.getLogger(__name__)

_FILE_LOG = "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog"
_LOGGED = ("envoy.filters.network.http_connection_manager", "envoy.filters.network.tcp_proxy")

# Istio's text line (1.9 onwards): the request, the response and its flags, sizes, timing,
# the peers and the route, on one line.
TEXT_FORMAT = (
    '[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" '
    "%RESPONSE_CODE% %RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS% "
    '"%UPSTREAM_TRANSPORT_FAILURE_REASON%" %BYTES_RECEIVED% %BYTES_SENT% %DURATION% '
    '%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%" '
    '"%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%" %UPSTREAM_CLUSTER_RAW% '
    "%UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS% "
    "%REQUESTED_SERVER_NAME% %ROUTE_NAME%\n"
)

# The same facts as Istio's JSON fields.
JSON_FORMAT: dict[str, str] = {
    "start_time": "%START_TIME%",
    "route_name": "%ROUTE_NAME%",
    "method": "%REQ(:METHOD)%",
    "path": "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%",
    "protocol": "%PROTOCOL%",
    "response_code": "%RESPONSE_CODE%",
    "response_flags": "%RESPONSE_FLAGS%",
    "response_code_details": "%RESPONSE_CODE_DETAILS%",
    "connection_termination_details": "%CONNECTION_TERMINATION_DETAILS%",
    "bytes_received": "%BYTES_RECEIVED%",
    "bytes_sent": "%BYTES_SENT%",
    "duration": "%DURATION%",
    "upstream_service_time": "%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%",
    "x_forwarded_for": "%REQ(X-FORWARDED-FOR)%",
    "user_agent": "%REQ(USER-AGENT)%",
    "request_id": "%REQ(X-REQUEST-ID)%",
    "authority": "%REQ(:AUTHORITY)%",
    "upstream_host": "%UPSTREAM_HOST%",
    "upstream_cluster": "%UPSTREAM_CLUSTER_RAW%",
    "upstream_local_address": "%UPSTREAM_LOCAL_ADDRESS%",
    "downstream_local_address": "%DOWNSTREAM_LOCAL_ADDRESS%",
    "downstream_remote_address": "%DOWNSTREAM_REMOTE_ADDRESS%",
    "requested_server_name": "%REQUESTED_SERVER_NAME%",
    "upstream_transport_failure_reason": "%UPSTREAM_TRANSPORT_FAILURE_REASON%",
}


def file_access_log(mesh: config_pb2.MeshConfig) -> list[dict[str, Any]]:
    """The `access_log` list every HCM and TCP proxy gets; empty when `accessLogFile` is."""
    path = mesh.access_log_file
    if not path:
        return []
    if mesh.access_log_encoding == config_pb2.MeshConfig.JSON:
        log_format: dict[str, Any] = {"json_format": _json_fields(mesh.access_log_format)}
    else:
        text = mesh.access_log_format or TEXT_FORMAT
        if not text.endswith("\n"):
            text += "\n"  # Envoy writes exactly the format: one line per entry needs the newline
        log_format = {"text_format_source": {"inline_string": text}}
    return [
        {
            "name": "envoy.access_loggers.file",
            "typed_config": {"@type": _FILE_LOG, "path": path, "log_format": log_format},
        }
    ]


def _json_fields(text: str) -> dict[str, Any]:
    if not text:
        return dict(JSON_FORMAT)
    try:
        fields = json.loads(text)
    except ValueError as error:
        log.error("accessLogFormat is not a JSON object (%s): using Istio's fields", error)
        return dict(JSON_FORMAT)
    if not isinstance(fields, dict) or not fields:
        log.error("accessLogFormat is not a non-empty JSON object: using Istio's fields")
        return dict(JSON_FORMAT)
    return fields


def config_key(config: list[dict[str, Any]]) -> str:
    """`config` as a key: proxies whose access logs are equal may share listeners."""
    return json.dumps(config, sort_keys=True)


def apply_access_log(
    listeners: list[dict[str, Any]], config: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Set `config` (file_access_log's) on every HCM and TCP proxy of `listeners` (in place;
    returned); an empty config leaves them without a logger."""
    if not config:
        return listeners
    for listener in listeners:
        for chain in listener.get("filter_chains", ()):
            for network_filter in chain.get("filters", ()):
                if network_filter.get("name") in _LOGGED:
                    network_filter["typed_config"]["access_log"] = config
    return listeners
