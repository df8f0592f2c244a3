"""``/auth/token``: the dashboard's password exchanged for a signed access token that expires."""

from __future__ import annotations

from fastapi import APIRouter

from engine.api.deps import LibraryDep
from engine.api.models import TokenRequest, TokenResponse

router = APIRouter(prefix="/auth", tags=["auth"])


@router.post("/token", response_model=TokenResponse)
def access_token(library: LibraryDep, body: TokenRequest):
    """An access token for the dashboard's password (TRAUM_AUTH_PASSWORD_HASH), valid for
    TRAUM_ACCESS_TOKEN_EXPIRE_MINUTES; send it as ``Authorization: Bearer ...``. Scripts can use an
    API key instead (``python -m engine api-key create NAME``)."""
    return TokenResponse(**library.issue_token(body.password))
