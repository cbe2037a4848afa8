-- migrate:up
-- Frames per second as ffprobe reports them (average rate, else the base rate).
ALTER TABLE streams ADD COLUMN fps double precision;

-- The worker's per-stream circuit breaker. Postgres (not Redis) because every worker
-- process must see the same state, it has to survive restarts, and a success closes the
-- breaker in the same transaction that commits the snapshot.
CREATE TABLE stream_breakers (
    stream_id   uuid PRIMARY KEY REFERENCES streams (id) ON DELETE CASCADE,
    failures    integer NOT NULL DEFAULT 0,   -- consecutive, reset by a success
    trips       integer NOT NULL DEFAULT 0,   -- times opened in a row: grows the delay
    open_until  timestamptz,                  -- fail fast until then
    last_error  text,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- A content-addressed file is deleted only when no snapshot row references its key.
CREATE INDEX snapshots_storage_key_idx ON snapshots (storage_key);

-- migrate:down
DROP INDEX IF EXISTS snapshots_storage_key_idx;
DROP TABLE IF EXISTS stream_breakers;
ALTER TABLE streams DROP COLUMN IF EXISTS fps;
