-- 0012 with TimescaleDB: an exercise's rows get compressed segments of their own
-- (exercise_id leads every segment-by), so purging a drill deletes whole compressed
-- batches instead of decompressing them (DML that decompresses more than
-- timescaledb.max_tuples_decompressed_per_dml_transaction rows is refused). Live rows
-- have exercise_id NULL and keep the segments they had. Chunks compressed before this
-- keep their old layout; the purge raises the decompression limit for its own
-- transaction to cover them (command.services.exercises.purge).
-- Each statement runs on its own and can run again (wuwang.db.migrate).

ALTER TABLE sensor_reading SET (timescaledb.compress_segmentby = 'exercise_id, device_id');
ALTER TABLE video_alert SET (timescaledb.compress_segmentby = 'exercise_id, camera_id');
ALTER TABLE emergency_call SET (timescaledb.compress_segmentby = 'exercise_id, network');
ALTER TABLE field_report SET (timescaledb.compress_segmentby = 'exercise_id, source_id');
ALTER TABLE team_position SET (timescaledb.compress_segmentby = 'exercise_id, team_id');
ALTER TABLE team_status SET (timescaledb.compress_segmentby = 'exercise_id, team_id');
