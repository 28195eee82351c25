"""Wire compatibility with Istio's published API: field numbers, encodings, service names.

The expected bytes are written out by hand from Istio's protos, so a renumbered field fails
here even if our own round trips still agree with themselves.
"""

import yaml
from google.protobuf import json_format

from api.mesh.v1alpha1 import config_pb2
from api.mixer.v1 import attributes_pb2, check_pb2, service_pb2
from api.networking.v1alpha3 import virtual_service_pb2
from api.security.v1alpha1 import ca_pb2


def test_check_request_header_fields():
    request = check_pb2.CheckRequest(global_word_count=178, deduplication_id="x")
    # field 2 varint 178, field 3 string "x"
    assert request.SerializeToString() == b"\x10\xb2\x01\x1a\x01x"


def test_compressed_attributes_use_sint32_indexes():
    attributes = attributes_pb2.CompressedAttributes(words=["reviews"], strings={3: -1})
    # words: field 1; strings: field 2, an entry {1: sint32 3 -> 6, 2: sint32 -1 -> 1}
    assert attributes.SerializeToString() == b"\n\x07reviews\x12\x04\x08\x06\x10\x01"


def test_attribute_value_oneof_numbers():
    value = attributes_pb2.Attributes.AttributeValue(int64_value=7)
    assert value.SerializeToString() == b"\x18\x07"  # int64_value = 3
    value = attributes_pb2.Attributes.AttributeValue(string_value="a")
    assert value.SerializeToString() == b"\x12\x01a"  # string_value = 2


def test_mixer_and_ca_service_names():
    assert service_pb2.DESCRIPTOR.services_by_name["Mixer"].full_name == "istio.mixer.v1.Mixer"
    ca = ca_pb2.DESCRIPTOR.services_by_name["IstioCertificateService"]
    assert ca.full_name == "istio.v1.auth.IstioCertificateService"
    assert [m.name for m in ca.methods] == ["CreateCertificate"]


def test_certificate_request_fields():
    request = ca_pb2.IstioCertificateRequest(csr="c", validity_duration=3600)
    assert request.SerializeToString() == b"\n\x01c\x18\x90\x1c"  # csr = 1, validity_duration = 3


def test_virtual_service_fields():
    route = virtual_service_pb2.HTTPRouteDestination(
        destination=virtual_service_pb2.Destination(host="r", subset="v1"), weight=80
    )
    # destination = 1 {host = 1, subset = 2}, weight = 2
    assert route.SerializeToString() == b"\n\x07\n\x01r\x12\x02v1\x10P"
    vs = virtual_service_pb2.VirtualService(hosts=["r"], gateways=["g"])
    assert vs.SerializeToString() == b"\n\x01r\x12\x01g"


def test_mesh_config_reads_istio_yaml():
    mesh = json_format.ParseDict(
        yaml.safe_load(
            """
            accessLogFile: /dev/stdout
            enableTracing: true
            defaultConfig:
              discoveryAddress: 127.0.0.1:15012
              proxyAdminPort: 15000
              statusPort: 15020
              drainDuration: 45s
            outboundTrafficPolicy: {mode: ALLOW_ANY}
            defaultHttpRetryPolicy: {attempts: 2, retryOn: "connect-failure"}
            """
        ),
        config_pb2.MeshConfig(),
    )
    assert mesh.default_config.discovery_address == "127.0.0.1:15012"
    assert mesh.default_config.drain_duration.seconds == 45
    # MeshConfig reuses the networking types, as Istio's does.
    retry = mesh.default_http_retry_policy
    assert retry.DESCRIPTOR.full_name == "istio.networking.v1alpha3.HTTPRetry"
