"""The one exception a CA request handler raises to refuse: a gRPC status and its message."""

from __future__ import annotations

import grpc


class Refusal(Exception):
    """Why a CreateCertificate call was refused; the servicer turns it into the call's status."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    @classmethod
    def invalid(cls, message: str) -> Refusal:
        return cls(grpc.StatusCode.INVALID_ARGUMENT, message)

    @classmethod
    def unauthenticated(cls, message: str) -> Refusal:
        return cls(grpc.StatusCode.UNAUTHENTICATED, message)

    @classmethod
    def denied(cls, message: str) -> Refusal:
        return cls(grpc.StatusCode.PERMISSION_DENIED, message)
