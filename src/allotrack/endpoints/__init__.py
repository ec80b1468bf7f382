"""Endpoint derivation: declarative endpoint definitions turned into one analysis row per patient, with an
explanation of which record set each date; counting-process and landmark datasets."""

from allotrack.endpoints.definitions import ENDPOINTS, Endpoint
from allotrack.endpoints.derive import DerivedEndpoints, derive_endpoints
from allotrack.endpoints.recovery import recovery_per_course
from allotrack.endpoints.timevarying import counting_process, landmark

__all__ = [
    "ENDPOINTS",
    "DerivedEndpoints",
    "Endpoint",
    "counting_process",
    "derive_endpoints",
    "landmark",
    "recovery_per_course",
]
