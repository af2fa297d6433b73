-- 0009: a sensor's alarm state belongs to the account that publishes its readings.
--
-- Until now sensor_alarm_state was keyed on the payload's device_id alone, so any sensor
-- account could clear (and, with a future ts, freeze) another device's alarm by naming
-- it. Now a device's registration says who speaks for it, and the state is kept per
-- publisher (the topic's source_id, which the broker's ACL binds to the account).

-- The account that publishes this device's readings: its sensor gateway (物联网关), or
-- NULL when the device publishes under its own id (the demo city's devices do). The
-- ingest dead-letters a live reading for a registered device from any other source.
ALTER TABLE device ADD COLUMN gateway_id text
    CHECK (gateway_id ~ '^[A-Za-z0-9_.-]{1,64}$');
CREATE INDEX device_gateway_idx ON device (gateway_id) WHERE gateway_id IS NOT NULL;

-- Existing state was written before publishers were known; the device itself is the
-- best guess (every demo device publishes under its own id).
ALTER TABLE sensor_alarm_state ADD COLUMN source_id text;
UPDATE sensor_alarm_state SET source_id = device_id;
ALTER TABLE sensor_alarm_state ALTER COLUMN source_id SET NOT NULL;
ALTER TABLE sensor_alarm_state DROP CONSTRAINT sensor_alarm_state_pkey;
ALTER TABLE sensor_alarm_state ADD PRIMARY KEY (scope, source_id, device_id, kind);
