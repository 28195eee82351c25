"""Protobuf durations in the text form Envoy's JSON config takes."""

from google.protobuf import duration_pb2


def duration(d: duration_pb2.Duration) -> str:
    return f"{d.seconds + d.nanos / 1e9:.9f}".rstrip("0").rstrip(".") + "s"
