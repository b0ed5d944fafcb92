"""The northbound REST API (``/api/v1``): endpoints declared as data (:mod:`.routing`), checked
by the access policy, documented as OpenAPI 3.1 (:mod:`.openapi`), with an event stream and
outgoing webhooks."""

from .service import ApiService, mount

__all__ = ["ApiService", "mount"]
