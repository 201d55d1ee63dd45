#!/usr/bin/python3
"""GET /v1/books/{id} in FastAPI + asyncpg on uvicorn (uvloop, httptools).

Written the way FastAPI users write it: a pydantic response model, a typed
path parameter, an asyncpg pool opened at startup. bench/peers.sh runs it and
checks that it answers byte for byte what bookstore-books answers
(books/books-book.c). Debian 12's packages: python3-fastapi, python3-uvicorn,
python3-asyncpg, python3-uvloop, python3-httptools (run it with
/usr/bin/python3, which sees them).

Environment: PORT, BIND_ADDRESS (default 127.0.0.1), DATABASE_URL,
POOL_SIZE (connections per worker process, default 16), WORKERS (uvicorn
worker processes, default 1).
"""
import json
import os
import sys
from typing import Optional

import asyncpg
import uvicorn
from fastapi import FastAPI, Path
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel

MAX_ID = 2**63 - 1

# The statement bookstore-books prepares (books/books-store.c, BOOKS_SQL_GET),
# with the column names a record needs. asyncpg prepares it once per connection.
GET_BOOK = """
SELECT id, title, author, description, price::text AS price, active,
       to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS created_at,
       to_char(updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS updated_at
FROM books WHERE id = $1
"""


class BookJSONResponse(JSONResponse):
    """FastAPI's JSONResponse (compact, UTF-8, not ASCII-escaped), except
    that U+007F (DEL) is escaped as json-glib, which bookstore-books uses,
    escapes it; json.dumps writes it as it is. Only rows written before
    Books refused control characters can hold one."""

    def render(self, content) -> bytes:
        text = json.dumps(content, ensure_ascii=False, allow_nan=False,
                          indent=None, separators=(",", ":"))
        if "\x7f" in text:
            text = text.replace("\x7f", "\\u007f")
        return text.encode("utf-8")


class Book(BaseModel):
    id: int
    title: str
    author: str
    description: Optional[str]
    price: str
    active: bool
    created_at: str
    updated_at: str


app = FastAPI(default_response_class=BookJSONResponse, openapi_url=None,
              docs_url=None, redoc_url=None)


def error(status: int, code: str, message: str) -> BookJSONResponse:
    return BookJSONResponse({"error": code, "message": message}, status_code=status)


@app.exception_handler(RequestValidationError)
async def bad_request(request, exc):
    return error(400, "VALIDATION_ERROR",
                 f"id must be a positive integer no larger than {MAX_ID}")


@app.on_event("startup")
async def open_pool():
    size = int(os.environ.get("POOL_SIZE", "16"))
    app.state.pool = await asyncpg.create_pool(os.environ["DATABASE_URL"],
                                               min_size=size, max_size=size)


@app.on_event("shutdown")
async def close_pool():
    await app.state.pool.close()


@app.get("/v1/books/{id}", response_model=Book)
async def get_book(id: int = Path(gt=0, le=MAX_ID)):
    row = await app.state.pool.fetchrow(GET_BOOK, id)
    if row is None:
        return error(404, "NOT_FOUND", "book not found")
    if not row["active"]:
        return error(410, "GONE", "book was deleted")
    return dict(row)


@app.get("/health")
async def health():
    try:
        await app.state.pool.fetchval("SELECT 1")
    except (OSError, asyncpg.PostgresError):
        return BookJSONResponse({"status": "unhealthy", "services": {"database": "unhealthy"}},
                                status_code=503)
    return {"status": "healthy", "services": {"database": "healthy"}}


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    uvicorn.run("books:app", host=os.environ.get("BIND_ADDRESS", "127.0.0.1"),
                port=int(os.environ["PORT"]), workers=int(os.environ.get("WORKERS", "1")),
                loop="uvloop", http="httptools", access_log=False, log_level="warning")
