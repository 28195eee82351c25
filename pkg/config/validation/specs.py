"""Dispatch: the semantic validator of each kind's spec, and the few rules on a kind's name."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from pkg.config.validation import (
    authentication,
    authorization,
    broker,
    destinationrule,
    gateway,
    mixerclient,
    policy,
    serviceentry,
    sidecar,
    virtualservice,
)
from pkg.config.validation.result import FieldPath, ValidationResult

if TYPE_CHECKING:
    from pkg.config.resource import Resource

Validator = Callable[..., None]

VALIDATORS: dict[str, Validator] = {
    "istio.networking.v1alpha3.VirtualService": virtualservice.validate_virtual_service,
    "istio.networking.v1alpha3.DestinationRule": destinationrule.validate_destination_rule,
    "istio.networking.v1alpha3.Gateway": gateway.validate_gateway,
    "istio.networking.v1alpha3.ServiceEntry": serviceentry.validate_service_entry,
    "istio.networking.v1alpha3.WorkloadEntry": serviceentry.validate_workload_entry,
    "istio.networking.v1alpha3.Sidecar": sidecar.validate_sidecar,
    "istio.security.v1beta1.PeerAuthentication": authentication.validate_peer_authentication,
    "istio.security.v1beta1.AuthorizationPolicy": authorization.validate_authorization_policy,
    "istio.security.v1beta1.RequestAuthentication": authentication.validate_request_authentication,
    "istio.policy.v1beta1.Rule": policy.validate_rule,
    "istio.policy.v1beta1.Handler": policy.validate_handler,
    "istio.policy.v1beta1.Instance": policy.validate_instance,
    "istio.policy.v1beta1.AttributeManifest": policy.validate_attribute_manifest,
    "istio.mixer.v1.config.client.QuotaSpec": mixerclient.validate_quota_spec,
    "istio.mixer.v1.config.client.QuotaSpecBinding": mixerclient.validate_quota_spec_binding,
    "istio.broker.v1alpha1.ServiceClass": broker.validate_service_class,
    "istio.broker.v1alpha1.ServicePlan": broker.validate_service_plan,
    "istio.broker.v1alpha1.ServiceInstance": broker.validate_service_instance,
    "istio.broker.v1alpha1.ServiceBinding": broker.validate_service_binding,
}

# Kinds whose names are narrower than Kubernetes' (a Gateway is referenced as ns/name).
NAME_CHECKS: dict[str, Validator] = {
    "istio.networking.v1alpha3.Gateway": gateway.check_gateway_name,
}


def validate(resource: Resource, out: ValidationResult) -> None:
    """Adds the problems of a resource's spec to `out`; every kind must have a validator."""
    message = resource.schema.message
    if message in NAME_CHECKS:
        NAME_CHECKS[message](resource.metadata.name, FieldPath("metadata.name"), out)
    VALIDATORS[message](resource.spec, FieldPath("spec"), out)
