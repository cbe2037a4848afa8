-- migrate:up
-- Tenant-scoped trigram search: the GIN index leads with tenant_id, so a search never
-- scans another tenant's names.
CREATE EXTENSION IF NOT EXISTS btree_gin;

-- API keys for machines. Only a SHA-256 of the secret is stored: the secret is 32 random
-- bytes, so a fast hash is enough (argon2 protects low-entropy passwords, not keys).
CREATE TABLE api_keys (
    id           uuid PRIMARY KEY,
    tenant_id    uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    -- The key dies with the user who made it.
    created_by   uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    role         text NOT NULL CHECK (role IN ('admin', 'operator', 'viewer')),
    prefix       text NOT NULL,
    secret_hash  bytea NOT NULL UNIQUE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    revoked_at   timestamptz
);
CREATE INDEX api_keys_tenant_idx ON api_keys (tenant_id, created_at DESC, id);

-- Every write: who, what, on which entity, and the change. tenant_id is NULL for
-- platform-level actions (creating a tenant or a superuser).
CREATE TABLE audit_log (
    id           bigserial PRIMARY KEY,
    tenant_id    uuid REFERENCES tenants (id) ON DELETE CASCADE,
    actor_id     uuid,
    actor_kind   text NOT NULL CHECK (actor_kind IN ('user', 'api_key', 'cli')),
    api_key_id   uuid,
    action       text NOT NULL,
    entity_type  text NOT NULL,
    entity_id    uuid NOT NULL,
    changes      jsonb NOT NULL DEFAULT '{}',
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_log_tenant_idx ON audit_log (tenant_id, id DESC);

-- Keyset pages sort (created_at, id) in one direction for both columns, so the index does
-- too (it is read forwards or backwards); the initial mixed-direction index could not serve
-- ORDER BY created_at DESC, id DESC without a sort.
CREATE INDEX streams_tenant_created_id_idx ON streams (tenant_id, created_at, id);
DROP INDEX streams_tenant_created_idx;
-- A superuser lists across tenants.
CREATE INDEX streams_created_id_idx ON streams (created_at, id);
CREATE INDEX streams_name_id_idx ON streams (name, id);
CREATE INDEX streams_tenant_name_trgm_idx ON streams USING gin (tenant_id, name gin_trgm_ops);

-- migrate:down
DROP INDEX streams_tenant_name_trgm_idx;
DROP INDEX streams_name_id_idx;
DROP INDEX streams_created_id_idx;
CREATE INDEX streams_tenant_created_idx ON streams (tenant_id, created_at DESC, id);
DROP INDEX streams_tenant_created_id_idx;
DROP TABLE audit_log;
DROP TABLE api_keys;
