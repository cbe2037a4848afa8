-- migrate:up
-- What viewers may know of a failure: its category (lookout_shared.contracts.ErrorCategory).
-- The detail (snapshot_jobs.error, streams.last_error) names hosts and paths: operators only.
ALTER TABLE snapshot_jobs ADD COLUMN error_category text CHECK (error_category IN (
    'timeout', 'refused', 'unreachable', 'unauthorized', 'not_found', 'invalid_media',
    'source_error', 'not_allowed', 'circuit_open', 'stream_deleted', 'unknown'));
ALTER TABLE streams ADD COLUMN last_error_category text CHECK (last_error_category IN (
    'timeout', 'refused', 'unreachable', 'unauthorized', 'not_found', 'invalid_media',
    'source_error', 'not_allowed', 'circuit_open', 'stream_deleted', 'unknown'));
-- Failures recorded before categories existed.
UPDATE snapshot_jobs
   SET error_category = CASE WHEN error = 'stream deleted' THEN 'stream_deleted' ELSE 'unknown' END
 WHERE error IS NOT NULL;
UPDATE streams SET last_error_category = 'unknown' WHERE last_error IS NOT NULL;

-- migrate:down
ALTER TABLE streams DROP COLUMN IF EXISTS last_error_category;
ALTER TABLE snapshot_jobs DROP COLUMN IF EXISTS error_category;
