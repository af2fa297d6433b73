-- 0008 with TimescaleDB: the continuous aggregates count live rows only; an exercise's
-- rows (exercise_id set by 0007) never reach the live charts. Continuous aggregates
-- cannot be altered in place, so they are dropped and made again with the filter.
-- Each statement runs on its own (continuous aggregates refuse a transaction block)
-- and can run again: a run that failed midway resumes (wuwang.db.migrate).

DROP VIEW IF EXISTS feed_counts_1m;

DROP MATERIALIZED VIEW IF EXISTS feed_counts_1m_sensor;
DROP MATERIALIZED VIEW IF EXISTS feed_counts_1m_video;
DROP MATERIALIZED VIEW IF EXISTS feed_counts_1m_call;
DROP MATERIALIZED VIEW IF EXISTS feed_counts_1m_report;

CREATE MATERIALIZED VIEW IF NOT EXISTS feed_counts_1m_sensor WITH (timescaledb.continuous) AS
SELECT time_bucket(INTERVAL '1 minute', ts) AS bucket, network, grid_cell_id, count(*)::bigint AS n
  FROM sensor_reading WHERE exercise_id IS NULL GROUP BY 1, 2, 3 WITH NO DATA;

CREATE MATERIALIZED VIEW IF NOT EXISTS feed_counts_1m_video WITH (timescaledb.continuous) AS
SELECT time_bucket(INTERVAL '1 minute', ts) AS bucket, network, grid_cell_id, count(*)::bigint AS n
  FROM video_alert WHERE exercise_id IS NULL GROUP BY 1, 2, 3 WITH NO DATA;

CREATE MATERIALIZED VIEW IF NOT EXISTS feed_counts_1m_call WITH (timescaledb.continuous) AS
SELECT time_bucket(INTERVAL '1 minute', ts) AS bucket, network, grid_cell_id, count(*)::bigint AS n
  FROM emergency_call WHERE exercise_id IS NULL GROUP BY 1, 2, 3 WITH NO DATA;

CREATE MATERIALIZED VIEW IF NOT EXISTS feed_counts_1m_report WITH (timescaledb.continuous) AS
SELECT time_bucket(INTERVAL '1 minute', ts) AS bucket, coalesce(network, 'team') AS network, grid_cell_id, count(*)::bigint AS n
  FROM field_report WHERE exercise_id IS NULL GROUP BY 1, 2, 3 WITH NO DATA;

SELECT add_continuous_aggregate_policy('feed_counts_1m_sensor', start_offset => INTERVAL '3 days', end_offset => INTERVAL '1 minute', schedule_interval => INTERVAL '1 minute', if_not_exists => true);
SELECT add_continuous_aggregate_policy('feed_counts_1m_video', start_offset => INTERVAL '3 days', end_offset => INTERVAL '1 minute', schedule_interval => INTERVAL '1 minute', if_not_exists => true);
SELECT add_continuous_aggregate_policy('feed_counts_1m_call', start_offset => INTERVAL '3 days', end_offset => INTERVAL '1 minute', schedule_interval => INTERVAL '1 minute', if_not_exists => true);
SELECT add_continuous_aggregate_policy('feed_counts_1m_report', start_offset => INTERVAL '3 days', end_offset => INTERVAL '1 minute', schedule_interval => INTERVAL '1 minute', if_not_exists => true);

CREATE OR REPLACE VIEW feed_counts_1m AS
SELECT bucket, network, grid_cell_id, 'sensor'::text AS feed, n FROM feed_counts_1m_sensor
UNION ALL SELECT bucket, network, grid_cell_id, 'video', n FROM feed_counts_1m_video
UNION ALL SELECT bucket, network, grid_cell_id, 'call', n FROM feed_counts_1m_call
UNION ALL SELECT bucket, network, grid_cell_id, 'report', n FROM feed_counts_1m_report;

CREATE INDEX IF NOT EXISTS sensor_reading_exercise_idx ON sensor_reading (exercise_id, ts) WHERE exercise_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS video_alert_exercise_idx ON video_alert (exercise_id, ts) WHERE exercise_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS emergency_call_exercise_idx ON emergency_call (exercise_id, ts) WHERE exercise_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS field_report_exercise_idx ON field_report (exercise_id, ts) WHERE exercise_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS team_position_exercise_idx ON team_position (exercise_id, ts) WHERE exercise_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS team_status_exercise_idx ON team_status (exercise_id, ts) WHERE exercise_id IS NOT NULL;
