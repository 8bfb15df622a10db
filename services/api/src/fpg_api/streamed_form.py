"""A multipart upload received straight into the blob store: its one file part is written as it
arrives, so the gateway holds a chunk of it at a time, never the whole (a 512 MiB ZIP stays out
of its memory). Form fields, small, are kept. Starlette's own parser spools the file instead.

The parsing runs in a worker thread, which draws the body from the event loop chunk by chunk;
the size limit and the upload's pace are still enforced on that body by the middlewares."""

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import anyio.from_thread
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from python_multipart import MultipartParser
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import parse_options_header

from fpg_api.errors import ApiError
from jobstore.blobs import BlobStore

FILE_FIELD = "file"
MAX_FIELDS_BYTES = 64 * 1024  # every parameter together; a form field is a number or a word


@dataclass
class StreamedForm:
    fields: dict[str, str] = field(default_factory=dict)
    filename: str | None = None  # None: no file part was sent
    file_bytes: int = 0


Model = TypeVar("Model", bound=BaseModel)


def streamed_request_body(schema: str) -> dict[str, Any]:
    """The ``openapi_extra`` of a route that parses its form here, not through FastAPI: the
    body it takes, the form model ``schema`` (added to the document by ``main``)."""
    content = {"multipart/form-data": {"schema": {"$ref": f"#/components/schemas/{schema}"}}}
    return {"requestBody": {"required": True, "content": content}}


def parsed_fields(form: StreamedForm, model: type[Model]) -> Model:
    """The form's fields as ``model``, or 422 naming every invalid field (and a missing file)
    as FastAPI would for a form it parsed itself."""
    errors: list[dict[str, object]] = []
    if form.filename is None:
        errors.append({"type": "missing", "loc": ("body", FILE_FIELD), "msg": "Field required"})
    try:
        parsed = model.model_validate(form.fields)
    except ValidationError as invalid:
        errors += [{**e, "loc": ("body", *e["loc"])} for e in invalid.errors(include_url=False)]
    if errors:
        raise RequestValidationError(errors)
    return parsed


def body_from_event_loop(stream: AsyncIterator[bytes]) -> Iterator[bytes]:
    """``request.stream()``, read from a worker thread."""

    async def next_chunk() -> bytes | None:
        return await anext(stream, None)

    while (chunk := anyio.from_thread.run(next_chunk)) is not None:
        yield chunk


def store_form(
    body: Iterator[bytes], content_type: str, store: BlobStore, key: str, ttl_seconds: int
) -> StreamedForm:
    """Parse ``body``, writing its file part to ``store`` under ``key`` as it arrives."""
    _, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if not boundary:
        raise ApiError(400, "bad_request", "the body is not a multipart form (no boundary)")
    receiver = _FormReceiver()
    parser = MultipartParser(boundary, receiver.callbacks())  # type: ignore[arg-type]

    def file_data() -> Iterator[bytes]:
        for chunk in body:
            parser.write(chunk)
            yield from receiver.take_file_data()
        parser.finalize()
        if not receiver.ended:  # a form cut short would store a file cut short
            raise ApiError(400, "bad_request", "the multipart form ends before its last boundary")
        yield from receiver.take_file_data()

    try:
        store.write(key, file_data(), ttl_seconds)
    except FormParserError as error:
        raise ApiError(
            400, "bad_request", f"the multipart form cannot be parsed: {error}"
        ) from error
    if receiver.form.filename is None:
        store.delete(key)
    return receiver.form


class _FormReceiver:
    """The parser's callbacks: a part's headers decide whether its data is the file or a field."""

    def __init__(self) -> None:
        self.form = StreamedForm()
        self._header_name = b""
        self._header_value = b""
        self._disposition = b""
        self._field: str | None = None
        self._value = bytearray()
        self._in_file = False
        self._file_data: list[bytes] = []
        self._fields_bytes = 0
        self.ended = False

    def callbacks(self) -> dict[str, object]:
        return {
            "on_part_begin": self._part_begin,
            "on_part_data": self._part_data,
            "on_part_end": self._part_end,
            "on_header_field": self._header_field,
            "on_header_value": self._header_value_data,
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_end": self._end,
        }

    def take_file_data(self) -> Iterator[bytes]:
        data, self._file_data = self._file_data, []
        return iter(data)

    def _part_begin(self) -> None:
        self._disposition, self._field, self._in_file = b"", None, False
        self._value = bytearray()

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def _header_value_data(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _header_end(self) -> None:
        if self._header_name.lower() == b"content-disposition":
            self._disposition = self._header_value
        self._header_name, self._header_value = b"", b""

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._disposition)
        name = options.get(b"name")
        if name is None:
            raise ApiError(400, "bad_request", "a form part has no name")
        self._field = name.decode("utf-8", "replace")
        if b"filename" not in options:
            return
        if self._field != FILE_FIELD or self.form.filename is not None:
            raise ApiError(400, "bad_request", f"one file is expected, in the field {FILE_FIELD!r}")
        self._in_file = True
        self.form.filename = options[b"filename"].decode("utf-8", "replace")

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._in_file:
            self._file_data.append(bytes(data[start:end]))
            self.form.file_bytes += end - start
            return
        self._fields_bytes += end - start
        if self._fields_bytes > MAX_FIELDS_BYTES:
            raise ApiError(400, "bad_request", "the form's fields are too long")
        self._value += data[start:end]

    def _end(self) -> None:
        self.ended = True

    def _part_end(self) -> None:
        if not self._in_file and self._field is not None:
            self.form.fields[self._field] = self._value.decode("utf-8", "replace")
