"""The local NDIF stack's API (ndif 0.1.2's app), served as an authenticated deployment serves its
keys, without the Postgres key table: a request sent with the stack's trusted key
(``ANCHORS_NDIF_TRUSTED_KEY``) runs trusted, in the model actor's own process; every other request,
with any key or none, is an ordinary user's and runs in ndif's process sandbox (``trusted=False``),
as a key without the ``trusted`` tag is served on a real deployment.

Imported by gunicorn in the stack :mod:`.ndif` starts, never by the client.
"""

from __future__ import annotations

import os
from typing import Optional

from fastapi import Form, Header
from ndif.common.schema.request import BackendRequestModel
from ndif.services.api import app as ndif_app
from ndif.services.api.auth import validate_request

app = ndif_app.app
TRUSTED_KEY = os.environ.get("ANCHORS_NDIF_TRUSTED_KEY", "")


async def validate_as_keyed(
    data: str = Form(..., description="JSON-encoded BackendRequestModel data"),
    api_key: Optional[str] = Header(default=None, alias="ndif-api-key"),
) -> BackendRequestModel:
    """ndif's own envelope checks, then the trust a key table would give: the trusted key's tag."""
    request = await validate_request(data, api_key)
    request.trusted = bool(TRUSTED_KEY) and api_key == TRUSTED_KEY
    return request


app.dependency_overrides[validate_request] = validate_as_keyed
