-- 0001: orders with the book snapshotted at creation, and idempotency keys.

-- One row per Idempotency-Key a client sent; request_hash is the SHA-256 of
-- the canonical request, so a replay with another body is recognised.
-- Rows older than the retention (24 h by default) are purged by the service.
CREATE TABLE idempotency_keys (
    key          text PRIMARY KEY,
    request_hash text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT idempotency_keys_key_length CHECK (char_length(key) BETWEEN 1 AND 255)
);

CREATE INDEX idempotency_keys_created_idx ON idempotency_keys (created_at);

CREATE TABLE orders (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    book_id         bigint NOT NULL,
    -- the snapshot: what the book was when the order was placed
    book_title      text NOT NULL,
    book_author     text NOT NULL,
    quantity        integer NOT NULL,
    unit_price      numeric(10, 2) NOT NULL,
    total_price     numeric(14, 2) NOT NULL,
    status          text NOT NULL DEFAULT 'pending',
    idempotency_key text UNIQUE REFERENCES idempotency_keys (key) ON DELETE SET NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT orders_book_id_positive CHECK (book_id > 0),
    CONSTRAINT orders_quantity_range CHECK (quantity BETWEEN 1 AND 10000),
    CONSTRAINT orders_unit_price_not_negative CHECK (unit_price >= 0),
    CONSTRAINT orders_total_exact CHECK (total_price = unit_price * quantity),
    CONSTRAINT orders_status_known
        CHECK (status IN ('pending', 'processing', 'completed', 'failed'))
);

-- The list endpoint: newest first.
CREATE INDEX orders_created_idx ON orders (created_at DESC, id DESC);

CREATE FUNCTION orders_touch_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := clock_timestamp();
    RETURN NEW;
END;
$$;

CREATE TRIGGER orders_touch_updated_at
    BEFORE UPDATE ON orders
    FOR EACH ROW EXECUTE FUNCTION orders_touch_updated_at();
