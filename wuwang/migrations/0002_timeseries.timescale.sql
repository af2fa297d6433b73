-- 0002 with TimescaleDB: hypertables, compression, and one continuous aggregate per
-- feed (a continuous aggregate reads one hypertable), united under the same name the
-- plain path uses, feed_counts_1m. Retention and compression policies are (re)applied
-- from settings by wuwang.storage.apply_policies after migrating.
-- Each statement runs on its own (continuous aggregates refuse a transaction block)
-- and can run again: a run that failed midway resumes (wuwang.db.migrate).

CREATE EXTENSION IF NOT EXISTS timescaledb;

SELECT create_hypertable('sensor_reading', by_range('ts', INTERVAL '1 day'), migrate_data => true, if_not_exists => true);
SELECT create_hypertable('video_alert', by_range('ts', INTERVAL '7 days'), migrate_data => true, if_not_exists => true);
SELECT create_hypertable('emergency_call', by_range('ts', INTERVAL '7 days'), migrate_data => true, if_not_exists => true);
SELECT create_hypertable('field_report', by_range('ts', INTERVAL '7 days'), migrate_data => true, if_not_exists => true);
SELECT create_hypertable('team_position', by_range('ts', INTERVAL '1 day'), migrate_data => true, if_not_exists => true);
SELECT create_hypertable('team_status', by_range('ts', INTERVAL '7 days'), migrate_data => true, if_not_exists => true);

ALTER TABLE sensor_reading SET (timescaledb.compress, timescaledb.compress_segmentby = 'device_id', timescaledb.compress_orderby = 'ts DESC');
ALTER TABLE video_alert SET (timescaledb.compress, timescaledb.compress_segmentby = 'camera_id', timescaledb.compress_orderby = 'ts DESC');
ALTER TABLE emergency_call SET (timescaledb.compress, timescaledb.compress_segmentby = 'network', timescaledb.compress_orderby = 'ts DESC');
ALTER TABLE field_report SET (timescaledb.compress, timescaledb.compress_segmentby = 'source_id', timescaledb.compress_orderby = 'ts DESC');
ALTER TABLE team_position SET (timescaledb.compress, timescaledb.compress_segmentby = 'team_id', timescaledb.compress_orderby = 'ts DESC');
ALTER TABLE team_status SET (timescaledb.compress, timescaledb.compress_segmentby = 'team_id', timescaledb.compress_orderby = 'ts DESC');

CREATE MATERIALIZED VIEW IF NOT EXISTS feed_counts_1m_sensor WITH (timescaledb.continuous) AS
SELECT time_bucket(INTERVAL '1 minute', ts) AS bucket, network, grid_cell_id, count(*)::bigint AS n
  FROM sensor_reading GROUP BY 1, 2, 3 WITH NO DATA;

CREATE MATERIALIZED VIEW IF NOT EXISTS feed_counts_1m_video WITH (timescaledb.continuous) AS
SELECT time_bucket(INTERVAL '1 minute', ts) AS bucket, network, grid_cell_id, count(*)::bigint AS n
  FROM video_alert GROUP BY 1, 2, 3 WITH NO DATA;

CREATE MATERIALIZED VIEW IF NOT EXISTS feed_counts_1m_call WITH (timescaledb.continuous) AS
SELECT time_bucket(INTERVAL '1 minute', ts) AS bucket, network, grid_cell_id, count(*)::bigint AS n
  FROM emergency_call GROUP BY 1, 2, 3 WITH NO DATA;

CREATE MATERIALIZED VIEW IF NOT EXISTS feed_counts_1m_report WITH (timescaledb.continuous) AS
SELECT time_bucket(INTERVAL '1 minute', ts) AS bucket, coalesce(network, 'team') AS network, grid_cell_id, count(*)::bigint AS n
  FROM field_report GROUP BY 1, 2, 3 WITH NO DATA;

SELECT add_continuous_aggregate_policy('feed_counts_1m_sensor', start_offset => INTERVAL '3 days', end_offset => INTERVAL '1 minute', schedule_interval => INTERVAL '1 minute', if_not_exists => true);
SELECT add_continuous_aggregate_policy('feed_counts_1m_video', start_offset => INTERVAL '3 days', end_offset => INTERVAL '1 minute', schedule_interval => INTERVAL '1 minute', if_not_exists => true);
SELECT add_continuous_aggregate_policy('feed_counts_1m_call', start_offset => INTERVAL '3 days', end_offset => INTERVAL '1 minute', schedule_interval => INTERVAL '1 minute', if_not_exists => true);
SELECT add_continuous_aggregate_policy('feed_counts_1m_report', start_offset => INTERVAL '3 days', end_offset => INTERVAL '1 minute', schedule_interval => INTERVAL '1 minute', if_not_exists => true);

-- The same shape and name as the plain path's materialised view.
CREATE OR REPLACE VIEW feed_counts_1m AS
SELECT bucket, network, grid_cell_id, 'sensor'::text AS feed, n FROM feed_counts_1m_sensor
UNION ALL SELECT bucket, network, grid_cell_id, 'video', n FROM feed_counts_1m_video
UNION ALL SELECT bucket, network, grid_cell_id, 'call', n FROM feed_counts_1m_call
UNION ALL SELECT bucket, network, grid_cell_id, 'report', n FROM feed_counts_1m_report;
