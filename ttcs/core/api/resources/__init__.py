"""The API's resources, one module each; importing this package declares every endpoint."""

from . import (  # noqa: F401
    accounts,
    areas,
    audit,
    broadcasts,
    content,
    devices,
    events,
    groups,
    meta,
    monitoring,
    webhooks,
)
