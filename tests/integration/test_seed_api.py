"""Every curl of the seed README's "Books Service (Port 8001)" section, in order,
against a daemon with a brand-new database (so the first book is id 1, as the
seed's URLs assume)."""

from harness import (assert_book_shape, assert_error, assert_json_content_type, assert_status,
                     describe, parse_ts)


def test_seed_walkthrough(fresh_daemon):
    api = fresh_daemon.api

    # curl -X POST http://localhost:8001/v1/books -H "Content-Type: application/json" \
    #   -d '{"title": "1984", "author": "George Orwell", "price": "15.99"}'
    resp = api.post("/v1/books", data=b'{\n    "title": "1984",\n    "author": "George Orwell", \n'
                                      b'    "price": "15.99"\n  }',
                    headers={"Content-Type": "application/json"})
    assert_status(resp, 201)
    assert_json_content_type(resp)
    book = resp.json()
    assert_book_shape(book)
    assert book["id"] == 1, describe(resp)
    assert book["title"] == "1984"
    assert book["author"] == "George Orwell"
    assert book["price"] == "15.99"
    assert book["description"] is None
    assert book["active"] is True
    assert book["created_at"] == book["updated_at"], book
    assert resp.headers.get("Location") == "/v1/books/1", describe(resp)

    # curl http://localhost:8001/v1/books
    resp = api.get("/v1/books")
    assert_status(resp, 200)
    assert_json_content_type(resp)
    listing = resp.json()
    assert listing == [book], describe(resp)
    assert resp.headers.get("X-Total-Count") == "1", describe(resp)

    # curl http://localhost:8001/v1/books/1
    resp = api.get("/v1/books/1")
    assert_status(resp, 200)
    assert_json_content_type(resp)
    assert resp.json() == book

    # curl -X PUT http://localhost:8001/v1/books/1 -H "Content-Type: application/json" \
    #   -d '{"title": "Animal Farm", "author": "George Orwell"}'
    resp = api.put("/v1/books/1", data=b'{\n    "title": "Animal Farm",\n    "author": "George Orwell"\n  }',
                   headers={"Content-Type": "application/json"})
    assert_status(resp, 200)
    assert_json_content_type(resp)
    updated = resp.json()
    assert_book_shape(updated)
    assert updated["id"] == 1
    assert updated["title"] == "Animal Farm"
    assert updated["author"] == "George Orwell"
    assert updated["price"] == "15.99"
    assert updated["description"] is None
    assert updated["active"] is True
    assert updated["created_at"] == book["created_at"]
    assert parse_ts(updated["updated_at"]) > parse_ts(book["updated_at"]), (book, updated)
    resp = api.get("/v1/books/1")
    assert_status(resp, 200)
    assert resp.json() == updated

    # curl -X DELETE http://localhost:8001/v1/books/1
    resp = api.delete("/v1/books/1")
    assert_status(resp, 204)
    assert resp.content == b"", describe(resp)
    assert_error(api.get("/v1/books/1"), 410, "GONE")
    resp = api.get("/v1/books")
    assert_status(resp, 200)
    assert resp.json() == [], describe(resp)
    assert resp.headers.get("X-Total-Count") == "0", describe(resp)

    # curl http://localhost:8001/health
    resp = api.get("/health")
    assert_status(resp, 200)
    assert_json_content_type(resp)
    assert resp.json() == {"status": "healthy", "services": {"database": "healthy"}}, describe(resp)
