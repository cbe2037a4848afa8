-- migrate:up
-- A deleted stream's jobs stay as history (the job counts by status stay exact); the api
-- fails the active ones in the same transaction. Its snapshots go with it, each with a
-- snapshot.deleted event.
ALTER TABLE snapshot_jobs ALTER COLUMN stream_id DROP NOT NULL;
ALTER TABLE snapshot_jobs DROP CONSTRAINT snapshot_jobs_stream_id_fkey;
ALTER TABLE snapshot_jobs ADD CONSTRAINT snapshot_jobs_stream_id_fkey
    FOREIGN KEY (stream_id) REFERENCES streams (id) ON DELETE SET NULL;

-- migrate:down
DELETE FROM snapshot_jobs WHERE stream_id IS NULL;
ALTER TABLE snapshot_jobs DROP CONSTRAINT snapshot_jobs_stream_id_fkey;
ALTER TABLE snapshot_jobs ADD CONSTRAINT snapshot_jobs_stream_id_fkey
    FOREIGN KEY (stream_id) REFERENCES streams (id) ON DELETE CASCADE;
ALTER TABLE snapshot_jobs ALTER COLUMN stream_id SET NOT NULL;
