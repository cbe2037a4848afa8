-- migrate:up
-- Per-tenant quota overrides; NULL means the api's default (LOOKOUT_DEFAULT_MAX_STREAMS,
-- LOOKOUT_DEFAULT_SNAPSHOT_REQUESTS_PER_MINUTE).
ALTER TABLE tenants
    ADD COLUMN max_streams integer CHECK (max_streams >= 0),
    ADD COLUMN snapshot_requests_per_minute integer CHECK (snapshot_requests_per_minute >= 0);

-- The dashboard lists a tenant's streams in error, most recent first; few streams are in
-- error at a time, so the partial index stays small.
CREATE INDEX streams_error_idx ON streams (tenant_id, updated_at DESC) WHERE status = 'error';
-- And its recent failed jobs.
CREATE INDEX snapshot_jobs_failed_idx ON snapshot_jobs (tenant_id, created_at DESC)
    WHERE status = 'failed';

-- migrate:down
DROP INDEX IF EXISTS snapshot_jobs_failed_idx;
DROP INDEX IF EXISTS streams_error_idx;
ALTER TABLE tenants
    DROP COLUMN IF EXISTS snapshot_requests_per_minute,
    DROP COLUMN IF EXISTS max_streams;
