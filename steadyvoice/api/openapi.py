"""The OpenAPI schema names the bearer-key scheme and, per operation, the role it needs."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from steadyvoice.api.policy import ROLE

SCHEME = "apiKey"


def install_openapi(app: FastAPI) -> None:
    """Replace ``app.openapi`` with one that marks every keyed operation as needing a key."""

    def schema() -> dict[str, Any]:
        if app.openapi_schema is None:
            doc = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            doc.setdefault("components", {})["securitySchemes"] = {
                SCHEME: {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An API key: 'Authorization: Bearer sv_...'.",
                }
            }
            for operations in doc.get("paths", {}).values():
                for operation in operations.values():
                    if isinstance(operation, dict) and ROLE in operation:
                        operation["security"] = [{SCHEME: []}]
            app.openapi_schema = doc
        return app.openapi_schema

    app.openapi = schema  # type: ignore[method-assign]
