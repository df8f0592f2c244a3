"""``/auth``: the dashboard's password exchanged for a signed access token that expires, and the API
keys, which only the user who runs the server manages (``python -m engine api-key``)."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request

from engine.api.deps import LibraryDep
from engine.api.models import ApiKeyCreate, ApiKeyCreated, ApiKeyOut, ApiKeyRevoked, TokenRequest, TokenResponse
from engine.errors import AuthError

router = APIRouter(prefix="/auth", tags=["auth"])


@router.post("/token", response_model=TokenResponse)
def access_token(library: LibraryDep, body: TokenRequest):
    """An access token for the dashboard's password (TRAUM_AUTH_PASSWORD_HASH), valid for
    TRAUM_ACCESS_TOKEN_EXPIRE_MINUTES; send it as ``Authorization: Bearer ...``. Scripts can use an
    API key instead (``python -m engine api-key create NAME``)."""
    return TokenResponse(**library.issue_token(body.password))


def local_user(request: Request) -> None:
    """Keys open the API to scripts, so only the user who runs the server makes or revokes them: the
    bearer must be this start's token from the server's note, which only that user can read."""
    token = request.app.state.local_token()
    scheme, _, credential = request.headers.get("authorization", "").partition(" ")
    if token is None or scheme.lower() != "bearer" or not hmac.compare_digest(credential.strip().encode(),
                                                                                token.encode()):
        raise AuthError("API keys are managed only by the user who runs the server.",
                        hint="Run 'python -m engine api-key ...' on the server's machine, as that user.")


LocalUser = Annotated[None, Depends(local_user)]
KeyName = Annotated[str, Path(min_length=1, max_length=64)]


@router.get("/keys", response_model=list[ApiKeyOut])
def list_keys(library: LibraryDep, _: LocalUser):
    """The API keys' names and when each was made (never the keys)."""
    return [ApiKeyOut(**key) for key in library.api_keys()]


@router.post("/keys", status_code=201, response_model=ApiKeyCreated)
def create_key(library: LibraryDep, _: LocalUser, body: ApiKeyCreate):
    """A new key: shown in this answer only; the library keeps its digest."""
    return ApiKeyCreated(name=body.name, key=library.create_api_key(body.name))


@router.delete("/keys/{name}", response_model=ApiKeyRevoked)
def revoke_key(library: LibraryDep, _: LocalUser, name: KeyName):
    """Revoke a key: refused from the next request on."""
    library.revoke_api_key(name)
    return ApiKeyRevoked(revoked=name)
