-- 0008 without TimescaleDB: the per-minute aggregate counts live rows only; an
-- exercise's rows (exercise_id set by 0007) never reach the live charts.

DROP MATERIALIZED VIEW feed_counts_1m;

CREATE MATERIALIZED VIEW feed_counts_1m AS
SELECT date_trunc('minute', ts) AS bucket, network, grid_cell_id, 'sensor'::text AS feed, count(*)::bigint AS n
  FROM sensor_reading WHERE exercise_id IS NULL GROUP BY 1, 2, 3
UNION ALL
SELECT date_trunc('minute', ts), network, grid_cell_id, 'video', count(*)
  FROM video_alert WHERE exercise_id IS NULL GROUP BY 1, 2, 3
UNION ALL
SELECT date_trunc('minute', ts), network, grid_cell_id, 'call', count(*)
  FROM emergency_call WHERE exercise_id IS NULL GROUP BY 1, 2, 3
UNION ALL
SELECT date_trunc('minute', ts), coalesce(network, 'team'), grid_cell_id, 'report', count(*)
  FROM field_report WHERE exercise_id IS NULL GROUP BY 1, 2, 3
WITH NO DATA;

CREATE UNIQUE INDEX feed_counts_1m_key ON feed_counts_1m (bucket, network, feed, grid_cell_id) NULLS NOT DISTINCT;

CREATE INDEX sensor_reading_exercise_idx ON sensor_reading (exercise_id, ts) WHERE exercise_id IS NOT NULL;
CREATE INDEX video_alert_exercise_idx ON video_alert (exercise_id, ts) WHERE exercise_id IS NOT NULL;
CREATE INDEX emergency_call_exercise_idx ON emergency_call (exercise_id, ts) WHERE exercise_id IS NOT NULL;
CREATE INDEX field_report_exercise_idx ON field_report (exercise_id, ts) WHERE exercise_id IS NOT NULL;
CREATE INDEX team_position_exercise_idx ON team_position (exercise_id, ts) WHERE exercise_id IS NOT NULL;
CREATE INDEX team_status_exercise_idx ON team_status (exercise_id, ts) WHERE exercise_id IS NOT NULL;
