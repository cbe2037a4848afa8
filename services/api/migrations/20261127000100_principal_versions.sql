-- migrate:up
-- A user's token version: access tokens carry the version they were issued at, and every
-- write (and every read of users, API keys, audit and quotas) is refused when it no longer
-- matches. A change of role, tenant, password or disabled state raises it, whatever path
-- makes the change (the api, the CLI, hand-written SQL).
ALTER TABLE users ADD COLUMN token_version bigint NOT NULL DEFAULT 1;

CREATE FUNCTION users_bump_token_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (NEW.role, NEW.tenant_id, NEW.password_hash, NEW.disabled_at)
       IS DISTINCT FROM (OLD.role, OLD.tenant_id, OLD.password_hash, OLD.disabled_at) THEN
        NEW.token_version := OLD.token_version + 1;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER users_bump_token_version BEFORE UPDATE ON users
    FOR EACH ROW EXECUTE FUNCTION users_bump_token_version();

-- Every api process caches API key lookups and drops them on this notification, which
-- Postgres delivers when the changing transaction commits (never for a rolled-back one).
-- Statement triggers also fire for the rows a tenant's or user's deletion cascades to;
-- identical notifications of one transaction arrive once.
CREATE FUNCTION principals_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('lookout_principals', '');
    RETURN NULL;
END $$;
CREATE TRIGGER users_principals_notify AFTER UPDATE OR DELETE ON users
    FOR EACH STATEMENT EXECUTE FUNCTION principals_notify();
CREATE TRIGGER api_keys_principals_notify AFTER UPDATE OR DELETE ON api_keys
    FOR EACH STATEMENT EXECUTE FUNCTION principals_notify();

-- migrate:down
DROP TRIGGER api_keys_principals_notify ON api_keys;
DROP TRIGGER users_principals_notify ON users;
DROP FUNCTION principals_notify();
DROP TRIGGER users_bump_token_version ON users;
DROP FUNCTION users_bump_token_version();
ALTER TABLE users DROP COLUMN token_version;
