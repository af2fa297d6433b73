-- 0022: a camera's alerts belong to the account that publishes them (issue 8, identity).
--
-- Until now any camera account could publish an alert naming another camera (payload
-- camera_id), and it was stored and alarmed as that camera. As for sensors (0009), a
-- camera's registration now says who speaks for it: its video platform (视频平台, the
-- analytics server that relays many cameras under one account), or NULL when the camera
-- publishes under its own id (the demo city's cameras do). The ingest dead-letters a live
-- alert for a registered camera from any other source.
ALTER TABLE camera ADD COLUMN gateway_id text
    CHECK (gateway_id ~ '^[A-Za-z0-9_.-]{1,64}$');
CREATE INDEX camera_gateway_idx ON camera (gateway_id) WHERE gateway_id IS NOT NULL;
