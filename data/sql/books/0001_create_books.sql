-- 0001: the books table, as the seed describes it.
CREATE TABLE books (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    title       text NOT NULL,
    author      text NOT NULL,
    description text,
    price       numeric(10, 2) NOT NULL,
    active      boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT books_title_not_blank CHECK (char_length(btrim(title)) BETWEEN 1 AND 500),
    CONSTRAINT books_author_not_blank CHECK (char_length(btrim(author)) BETWEEN 1 AND 300),
    CONSTRAINT books_description_length CHECK (description IS NULL OR char_length(description) <= 10000),
    CONSTRAINT books_price_not_negative CHECK (price >= 0)
);

-- The list endpoint: active books, newest first.
CREATE INDEX books_active_created_idx ON books (created_at DESC, id DESC) WHERE active;

-- updated_at moves on every change, whoever makes it.
CREATE FUNCTION books_touch_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := clock_timestamp();
    RETURN NEW;
END;
$$;

CREATE TRIGGER books_touch_updated_at
    BEFORE UPDATE ON books
    FOR EACH ROW EXECUTE FUNCTION books_touch_updated_at();
