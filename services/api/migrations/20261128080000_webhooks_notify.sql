-- migrate:up
-- Every notifier caches each tenant's hooks and drops them on this notification, which
-- Postgres delivers when the changing transaction commits (never for a rolled-back one).
-- A statement trigger also fires for the rows a tenant's deletion cascades to.
CREATE FUNCTION webhooks_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('lookout_webhooks', '');
    RETURN NULL;
END $$;
CREATE TRIGGER webhooks_notify AFTER INSERT OR UPDATE OR DELETE ON webhooks
    FOR EACH STATEMENT EXECUTE FUNCTION webhooks_notify();

-- migrate:down
DROP TRIGGER webhooks_notify ON webhooks;
DROP FUNCTION webhooks_notify();
