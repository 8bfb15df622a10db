"""One error body everywhere: handlers turn every failure into an ``ErrorResponse``."""

from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

import redis
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from kombu.exceptions import OperationalError
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException

from fpg_api.schemas import ErrorResponse


class ApiError(StarletteHTTPException):
    """An error answer with its code. An ``HTTPException`` so that one raised while FastAPI
    parses a body (the upload limit, counted as the body streams in) reaches its handler as it
    is, instead of becoming FastAPI's 400 "error parsing the body"."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        headers: dict[str, str] | None = None,
        details: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(status, message, headers)
        self.status, self.code, self.message = status, code, message
        self.details = details


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` entry documenting these error statuses with the shared schema."""
    return {
        status: {"model": ErrorResponse, "description": HTTPStatus(status).phrase}
        for status in statuses
    }


def _answer(
    status: int, body: ErrorResponse, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(body.model_dump(exclude_none=True), status_code=status, headers=headers)


def error_answer(error: ApiError) -> JSONResponse:
    return _answer(
        error.status,
        ErrorResponse(code=error.code, message=error.message, details=error.details),
        headers=error.headers,
    )


def framework_error_code(status: int) -> str:
    """The code of an error FastAPI or Starlette raise themselves (an unknown path, a method
    the path does not take, a body that cannot be parsed): their status phrase, snake-cased."""
    return HTTPStatus(status).phrase.lower().replace(" ", "_").replace("-", "_")


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, error: ApiError) -> JSONResponse:
        return error_answer(error)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, error: StarletteHTTPException) -> JSONResponse:
        return _answer(
            error.status_code,
            ErrorResponse(code=framework_error_code(error.status_code), message=str(error.detail)),
            headers=error.headers,
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, error: RequestValidationError) -> JSONResponse:
        details = [
            {"field": ".".join(str(part) for part in item["loc"][1:]), "problem": item["msg"]}
            for item in error.errors()
        ]
        fields = ", ".join(detail["field"] or "body" for detail in details)
        return _answer(
            422,
            ErrorResponse(
                code="validation_error", message=f"invalid request: {fields}", details=details
            ),
        )

    @app.exception_handler(SQLAlchemyError)
    async def _audit_down(_request: Request, error: Exception) -> JSONResponse:
        return _answer(
            503,
            ErrorResponse(
                code="audit_unreachable",
                message="the audit database is unreachable, try again shortly",
            ),
            headers={"Retry-After": "5"},
        )

    @app.exception_handler(redis.RedisError)
    @app.exception_handler(OperationalError)
    async def _store_down(_request: Request, error: Exception) -> JSONResponse:
        return _answer(
            503,
            ErrorResponse(
                code="broker_unreachable",
                message=f"the job store is unreachable, try again shortly: {error}",
            ),
            headers={"Retry-After": "5"},
        )
