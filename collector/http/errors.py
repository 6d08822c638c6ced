"""Errors become statuses at the collector's edge: 400 bad input, 401/403 keys, 404 unknown ids and
projects, 408/413/415 bodies, 409 a change from a replaced version, 503 store trouble or a full queue
(with Retry-After), 507 a full disk."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import Response

from tracehouse._errors import ConfigError, ConflictError, NotFoundError, StoreError
from tracehouse.collector.http.deps import AuthError, error_response, json_response
from tracehouse.collector.http.guard import BodyError, is_disk_full
from tracehouse.collector.ingest.batch_writer import Overloaded


async def _body(request: Request, error: Exception) -> Response:
    assert isinstance(error, BodyError)
    return error_response(error.status, str(error))


async def _auth(request: Request, error: Exception) -> Response:
    assert isinstance(error, AuthError)
    headers = {"WWW-Authenticate": "Bearer"} if error.status == 401 else None
    return json_response({"error": str(error)}, error.status, headers)


async def _bad_argument(request: Request, error: Exception) -> Response:
    return error_response(400, str(error))


async def _not_found(request: Request, error: Exception) -> Response:
    return error_response(404, str(error))


async def _conflict(request: Request, error: Exception) -> Response:
    return error_response(409, str(error))


async def _store_error(request: Request, error: Exception) -> Response:
    if is_disk_full(error):
        return error_response(507, f"the collector's disk is full: {error}")
    return error_response(503, str(error), retry_after=5)


async def _os_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, OSError)
    if is_disk_full(error):
        return error_response(507, f"the collector's disk is full ({error.strerror or error}); nothing of this "
                                   "request was kept, free some space and send it again")  # fmt: skip
    return error_response(503, f"the collector could not write: {error}", retry_after=5)


async def _overloaded(request: Request, error: Exception) -> Response:
    assert isinstance(error, Overloaded)
    return error_response(503, str(error), retry_after=error.retry_after)


def install_error_handlers(app: FastAPI) -> None:
    """Map tracehouse's errors (and a full disk) to statuses on every route of `app`."""
    for kind, handler in ((BodyError, _body), (AuthError, _auth), (ConfigError, _bad_argument),
                          (NotFoundError, _not_found), (StoreError, _store_error), (OSError, _os_error),
                          (Overloaded, _overloaded), (ConflictError, _conflict)):  # fmt: skip
        app.add_exception_handler(kind, handler)


__all__ = ["install_error_handlers"]
