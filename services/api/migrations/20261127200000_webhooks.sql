-- migrate:up
-- Outbound webhooks per tenant. The notifier delivers the tenant's events to each enabled
-- hook whose events list names the event's type; secret_sealed is the signing secret,
-- encrypted at rest (lookout_shared.sealed) and never returned after creation.
CREATE TABLE webhooks (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    url text NOT NULL,
    events text[] NOT NULL,
    secret_sealed bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    disabled boolean NOT NULL DEFAULT false
);
CREATE INDEX webhooks_tenant_idx ON webhooks (tenant_id) WHERE NOT disabled;

-- Deliveries that need a person: 'failed' after the retries ran out, 'replay' when asked
-- to send again (or a test-fire), 'sending' while a notifier holds it, 'delivered' after.
-- Successful first deliveries leave no row.
CREATE TABLE webhook_deliveries (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    webhook_id uuid NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    tenant_id uuid NOT NULL,
    event_id uuid NOT NULL,
    event_type text NOT NULL,
    body text NOT NULL,
    status text NOT NULL CHECK (status IN ('failed', 'replay', 'sending', 'delivered')),
    attempts integer NOT NULL DEFAULT 0,
    last_error text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (webhook_id, event_id)
);
CREATE INDEX webhook_deliveries_status_idx ON webhook_deliveries (status, updated_at);

-- migrate:down
DROP TABLE IF EXISTS webhook_deliveries;
DROP TABLE IF EXISTS webhooks;
