"""The management API instance: auth, error shape, and one router per resource."""

from __future__ import annotations

from aigateway.api.management import (
    audit,
    breakers,
    keys,
    limits,
    me,
    members,
    routes,
    teams,
    tokens,
    usage,
)
from aigateway.api.management.errors import install_error_handlers
from aigateway.api.management.openapi import GatewayAPI
from aigateway.api.management.security import AUTH

api = GatewayAPI(
    title="aigateway API",
    version="1",
    urls_namespace="management",
    openapi_url="/schema",
    docs_url="/docs",
    auth=AUTH,
)
install_error_handlers(api)
api.add_router("/v1", me.router)
api.add_router("/v1/teams", teams.router)
api.add_router("/v1/teams", members.router)
api.add_router("/v1/teams", keys.router)
api.add_router("/v1/limits", limits.router)
api.add_router("/v1/usage", usage.router)
api.add_router("/v1", routes.router)
api.add_router("/v1", breakers.router)
api.add_router("/v1", audit.router)
api.add_router("/v1", tokens.router)
