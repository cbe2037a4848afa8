-- migrate:up
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE EXTENSION IF NOT EXISTS citext;

CREATE TABLE tenants (
    id          uuid PRIMARY KEY,
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX tenants_name_key ON tenants (lower(name));

-- A superuser belongs to no tenant; everyone else belongs to exactly one.
CREATE TABLE users (
    id             uuid PRIMARY KEY,
    tenant_id      uuid REFERENCES tenants (id) ON DELETE CASCADE,
    email          citext NOT NULL UNIQUE,
    password_hash  text NOT NULL,
    role           text NOT NULL CHECK (role IN ('superuser', 'admin', 'operator', 'viewer')),
    created_at     timestamptz NOT NULL DEFAULT now(),
    disabled_at    timestamptz,
    CHECK ((role = 'superuser') = (tenant_id IS NULL))
);
CREATE INDEX users_tenant_idx ON users (tenant_id, created_at DESC, id);

CREATE TABLE streams (
    id          uuid PRIMARY KEY,
    tenant_id   uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    url         text NOT NULL CHECK (length(url) <= 2048),
    kind        text NOT NULL CHECK (kind IN ('rtsp', 'rtmp', 'hls', 'http', 'file')),
    tags        text[] NOT NULL DEFAULT '{}',
    enabled     boolean NOT NULL DEFAULT true,
    status      text NOT NULL DEFAULT 'pending'
                CHECK (status IN ('pending', 'online', 'error', 'disabled')),
    last_error  text,
    width       integer,
    height      integer,
    codec       text,
    -- Rises on every change: the ETag, and the order of this stream's events.
    version     bigint NOT NULL DEFAULT 1,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
-- Keyset pagination per tenant, newest first.
CREATE INDEX streams_tenant_created_idx ON streams (tenant_id, created_at DESC, id);
CREATE INDEX streams_tenant_name_idx ON streams (tenant_id, name, id);
CREATE INDEX streams_name_trgm_idx ON streams USING gin (name gin_trgm_ops);
CREATE INDEX streams_tags_idx ON streams USING gin (tags);

CREATE TABLE snapshot_jobs (
    id           uuid PRIMARY KEY,
    tenant_id    uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    stream_id    uuid NOT NULL REFERENCES streams (id) ON DELETE CASCADE,
    status       text NOT NULL DEFAULT 'queued'
                 CHECK (status IN ('queued', 'running', 'succeeded', 'failed')),
    attempts     integer NOT NULL DEFAULT 0,
    error        text,
    snapshot_id  uuid,
    version      bigint NOT NULL DEFAULT 1,
    created_at   timestamptz NOT NULL DEFAULT now(),
    started_at   timestamptz,
    finished_at  timestamptz
);
CREATE INDEX snapshot_jobs_stream_idx ON snapshot_jobs (stream_id, created_at DESC);
-- At most one active job per stream: later requests join it instead of queueing another.
CREATE UNIQUE INDEX snapshot_jobs_active_idx ON snapshot_jobs (stream_id)
    WHERE status IN ('queued', 'running');
CREATE INDEX snapshot_jobs_tenant_idx ON snapshot_jobs (tenant_id, created_at DESC, id);

CREATE TABLE snapshots (
    id            uuid PRIMARY KEY,
    tenant_id     uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    stream_id     uuid NOT NULL REFERENCES streams (id) ON DELETE CASCADE,
    -- One snapshot per job, whatever the redeliveries.
    job_id        uuid NOT NULL UNIQUE REFERENCES snapshot_jobs (id) ON DELETE CASCADE,
    storage_key   text NOT NULL,
    content_type  text NOT NULL,
    size_bytes    bigint NOT NULL,
    sha256        text NOT NULL,
    width         integer,
    height        integer,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX snapshots_stream_idx ON snapshots (stream_id, created_at DESC, id);
CREATE INDEX snapshots_tenant_idx ON snapshots (tenant_id, created_at DESC, id);

CREATE TABLE outbox (
    id            bigserial PRIMARY KEY,
    message_id    uuid NOT NULL UNIQUE,
    message_type  text NOT NULL,
    exchange      text NOT NULL,
    routing_key   text NOT NULL,
    body          jsonb NOT NULL,
    headers       jsonb NOT NULL DEFAULT '{}',
    created_at    timestamptz NOT NULL DEFAULT now(),
    published_at  timestamptz,
    attempts      integer NOT NULL DEFAULT 0,
    last_error    text
);
-- The relay only ever scans unpublished rows.
CREATE INDEX outbox_unpublished_idx ON outbox (id) WHERE published_at IS NULL;

CREATE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('lookout_outbox', '');
    RETURN NULL;
END $$;
CREATE TRIGGER outbox_notify AFTER INSERT ON outbox
    FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify();

-- migrate:down
DROP TABLE outbox;
DROP FUNCTION outbox_notify();
DROP TABLE snapshots;
DROP TABLE snapshot_jobs;
DROP TABLE streams;
DROP TABLE users;
DROP TABLE tenants;
