-- 0003: W3C Trace Context through the outbox (docs/events.md). Each event
-- carries the trace context of the request that created its order, so that
-- the worker's records of the order share its TRACE_ID.

-- "00-<trace id>-<span id>-<flags>": Orders' span of the POST /v1/orders
-- that created the order (the worker's span names it as parent). NULL for
-- events written before this migration: the worker starts a new trace.
ALTER TABLE outbox ADD COLUMN traceparent text;
-- The request's tracestate, passed on unchanged; NULL when it had none.
ALTER TABLE outbox ADD COLUMN tracestate text;

-- Orders writes at most these (bs-trace.h); the relay copies them into the
-- stream entry, so bound them here too.
ALTER TABLE outbox ADD CONSTRAINT outbox_traceparent_length
    CHECK (traceparent IS NULL OR length(traceparent) = 55);
ALTER TABLE outbox ADD CONSTRAINT outbox_tracestate_length
    CHECK (tracestate IS NULL OR length(tracestate) <= 512);
