-- migrate:up
-- A hot stream is held open by one snapshot worker, which keeps its latest decoded frame in
-- Redis (lookout_shared.hot_frames). hot_mode: decode keyframes only, or every frame.
ALTER TABLE streams
    ADD COLUMN hot boolean NOT NULL DEFAULT false,
    ADD COLUMN hot_mode text NOT NULL DEFAULT 'keyframes'
        CHECK (hot_mode IN ('keyframes', 'all'));
-- Workers list the hot streams to share them out; few streams are hot.
CREATE INDEX streams_hot_idx ON streams (id) WHERE hot;
-- Per-tenant override of the hot stream quota; NULL means the api's default.
ALTER TABLE tenants
    ADD COLUMN max_hot_streams integer CHECK (max_hot_streams >= 0);

-- migrate:down
ALTER TABLE tenants DROP COLUMN IF EXISTS max_hot_streams;
DROP INDEX IF EXISTS streams_hot_idx;
ALTER TABLE streams DROP COLUMN IF EXISTS hot_mode, DROP COLUMN IF EXISTS hot;
