-- 0002: order events through Redis (docs/events.md): the transactional
-- outbox, the history of status changes, and why an order failed.

-- Why the order failed, as the worker said; NULL unless status is 'failed'.
ALTER TABLE orders ADD COLUMN status_reason text;
ALTER TABLE orders ADD CONSTRAINT orders_status_reason_only_failed
    CHECK (status_reason IS NULL OR status = 'failed');

-- One row per event to publish, written by the same statement that writes
-- the order (so in the same transaction). The relay in bookstore-orders
-- publishes unsent rows to bookstore:orders:events, oldest first, then sets
-- sent_at. The event's fields are the order's snapshot, read at publication.
-- Sent rows older than a few days are purged by the service.
CREATE TABLE outbox (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    order_id      bigint NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    event_type    text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    sent_at       timestamptz,
    -- a relay is publishing the row until then: another instance's relay
    -- leaves it alone (a relay that died releases it by letting it expire)
    claimed_until timestamptz,
    CONSTRAINT outbox_event_type_known CHECK (event_type IN ('order.created'))
);

-- The relay's batch and the pending count: only the unsent rows.
CREATE INDEX outbox_unsent_idx ON outbox (id) WHERE sent_at IS NULL;
-- The purge of old sent rows.
CREATE INDEX outbox_sent_idx ON outbox (sent_at) WHERE sent_at IS NOT NULL;
-- Deleting an order (by hand) finds its outbox rows.
CREATE INDEX outbox_order_idx ON outbox (order_id);

-- Orders taken before this migration have no event yet: the pending ones
-- get theirs now, so that they too are processed (oldest first).
INSERT INTO outbox (order_id, event_type)
SELECT id, 'order.created' FROM orders WHERE status = 'pending' ORDER BY id;

-- One row per status change that was APPLIED (a repeated or late message
-- adds none): the order's life as the worker reported it.
CREATE TABLE order_status_history (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    order_id   bigint NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    status     text NOT NULL,
    reason     text,
    -- the bookstore:orders:events entry the worker processed (its event_id field)
    event_id   text,
    -- the bookstore:orders:status entry that carried the change
    entry_id   text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT order_status_history_status_known
        CHECK (status IN ('processing', 'completed', 'failed'))
);

CREATE INDEX order_status_history_order_idx ON order_status_history (order_id, id);
