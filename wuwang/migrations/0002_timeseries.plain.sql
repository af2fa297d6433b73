-- 0002 without TimescaleDB: plain tables with BRIN indexes on time (cheap, and the
-- rows arrive nearly in time order), and the per-minute aggregate as a materialised
-- view that wuwang.storage refreshes on a schedule.

CREATE INDEX sensor_reading_ts_brin ON sensor_reading USING brin (ts);
CREATE INDEX video_alert_ts_brin ON video_alert USING brin (ts);
CREATE INDEX emergency_call_ts_brin ON emergency_call USING brin (ts);
CREATE INDEX field_report_ts_brin ON field_report USING brin (ts);
CREATE INDEX team_position_ts_brin ON team_position USING brin (ts);
CREATE INDEX team_status_ts_brin ON team_status USING brin (ts);

CREATE MATERIALIZED VIEW feed_counts_1m AS
SELECT date_trunc('minute', ts) AS bucket, network, grid_cell_id, 'sensor'::text AS feed, count(*)::bigint AS n
  FROM sensor_reading GROUP BY 1, 2, 3
UNION ALL
SELECT date_trunc('minute', ts), network, grid_cell_id, 'video', count(*)
  FROM video_alert GROUP BY 1, 2, 3
UNION ALL
SELECT date_trunc('minute', ts), network, grid_cell_id, 'call', count(*)
  FROM emergency_call GROUP BY 1, 2, 3
UNION ALL
SELECT date_trunc('minute', ts), coalesce(network, 'team'), grid_cell_id, 'report', count(*)
  FROM field_report GROUP BY 1, 2, 3
WITH NO DATA;

-- REFRESH ... CONCURRENTLY needs a unique index.
CREATE UNIQUE INDEX feed_counts_1m_key ON feed_counts_1m (bucket, network, feed, grid_cell_id) NULLS NOT DISTINCT;
