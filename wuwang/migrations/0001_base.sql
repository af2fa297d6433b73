-- 0001: registries, the five networks' feeds, team feeds, dead letters, the message
-- ledger and the alarm outbox. Plain PostgreSQL; 0002 adds TimescaleDB or its stand-in.

-- Registries -------------------------------------------------------------------

CREATE TABLE district (
    adcode      integer PRIMARY KEY,
    name        text NOT NULL,
    center_lat  double precision NOT NULL,
    center_lon  double precision NOT NULL,
    boundary    jsonb NOT NULL               -- GeoJSON geometry, WGS-84
);

CREATE TABLE grid_cell (
    id              text PRIMARY KEY,        -- lattice id "r<row>c<col>", see wuwang.city
    district_adcode integer NOT NULL REFERENCES district (adcode),
    name            text NOT NULL,
    center_lat      double precision NOT NULL,
    center_lon      double precision NOT NULL,
    boundary        jsonb NOT NULL,          -- GeoJSON geometry, WGS-84, clipped to the district
    households      integer NOT NULL CHECK (households >= 0),
    grid_worker     text
);
CREATE INDEX grid_cell_district_idx ON grid_cell (district_adcode);

CREATE TABLE venue (
    id           text PRIMARY KEY,
    name         text NOT NULL,
    kind         text NOT NULL,              -- school, hospital, chemical_plant, mall, station, ...
    lat          double precision NOT NULL CHECK (lat BETWEEN -90 AND 90),
    lon          double precision NOT NULL CHECK (lon BETWEEN -180 AND 180),
    grid_cell_id text REFERENCES grid_cell (id)
);

CREATE TABLE device (
    id           text PRIMARY KEY,           -- also its MQTT source_id and user name
    network      text NOT NULL CHECK (network IN ('patrol','community','venue','police','video')),
    kind         text NOT NULL,              -- smoke, gas, co, water_level, temperature, ...
    unit         text NOT NULL,
    lat          double precision NOT NULL CHECK (lat BETWEEN -90 AND 90),
    lon          double precision NOT NULL CHECK (lon BETWEEN -180 AND 180),
    grid_cell_id text REFERENCES grid_cell (id),
    venue_id     text REFERENCES venue (id)
);
CREATE INDEX device_network_idx ON device (network);

CREATE TABLE camera (
    id           text PRIMARY KEY,
    network      text NOT NULL CHECK (network IN ('patrol','community','venue','police','video')),
    lat          double precision NOT NULL CHECK (lat BETWEEN -90 AND 90),
    lon          double precision NOT NULL CHECK (lon BETWEEN -180 AND 180),
    grid_cell_id text REFERENCES grid_cell (id),
    venue_id     text REFERENCES venue (id)
);
CREATE INDEX camera_network_idx ON camera (network);

CREATE TABLE patrol_unit (
    id              text PRIMARY KEY,
    name            text NOT NULL,
    district_adcode integer NOT NULL REFERENCES district (adcode),
    lat             double precision NOT NULL,
    lon             double precision NOT NULL
);

-- Rescue teams as far as ingest needs them (the roster itself is the command service's).
CREATE TABLE team (
    id              text PRIMARY KEY,        -- also its MQTT team id and user name
    name            text NOT NULL,
    team_type       text NOT NULL CHECK (team_type IN
                        ('fire','medical','police','hazmat','water_rescue','comprehensive')),
    district_adcode integer REFERENCES district (adcode),
    base_lat        double precision NOT NULL,
    base_lon        double precision NOT NULL,
    size            integer NOT NULL CHECK (size > 0)
);

-- Idempotency -----------------------------------------------------------------
-- One row per (source, message id) ever stored. The feed tables are partitioned by
-- time (hypertables or BRIN-indexed), and a unique index there would have to include
-- ts — which a clockless device's redelivery does not repeat. So the guard is here.
CREATE TABLE message_ledger (
    source      text NOT NULL,               -- "<network>/<source_id>" or "team/<team_id>"
    msg_id      text NOT NULL,
    feed        text NOT NULL,
    stored_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source, msg_id)
);
CREATE INDEX message_ledger_stored_at_idx ON message_ledger USING brin (stored_at);

-- Feeds (time series) ---------------------------------------------------------
-- Common columns: ts (device time, or receipt time when ts_from_receipt), received_at,
-- network, source_id (from the topic), msg_id, grid_cell_id (computed), extra (unknown
-- fields, kept).

CREATE TABLE sensor_reading (
    ts              timestamptz NOT NULL,
    received_at     timestamptz NOT NULL,
    ts_from_receipt boolean NOT NULL,
    network         text NOT NULL,
    source_id       text NOT NULL,
    msg_id          text NOT NULL,
    device_id       text NOT NULL,
    kind            text NOT NULL,
    value           double precision NOT NULL,
    unit            text NOT NULL,
    lat             double precision,
    lon             double precision,
    grid_cell_id    text,
    extra           jsonb NOT NULL DEFAULT '{}'
);

CREATE TABLE video_alert (
    ts              timestamptz NOT NULL,
    received_at     timestamptz NOT NULL,
    ts_from_receipt boolean NOT NULL,
    network         text NOT NULL,
    source_id       text NOT NULL,
    msg_id          text NOT NULL,
    camera_id       text NOT NULL,
    event           text NOT NULL,
    confidence      double precision NOT NULL,
    lat             double precision NOT NULL,
    lon             double precision NOT NULL,
    snapshot_url    text,
    bbox            jsonb,
    grid_cell_id    text,
    extra           jsonb NOT NULL DEFAULT '{}'
);

CREATE TABLE emergency_call (
    ts              timestamptz NOT NULL,
    received_at     timestamptz NOT NULL,
    ts_from_receipt boolean NOT NULL,
    network         text NOT NULL,
    source_id       text NOT NULL,
    msg_id          text NOT NULL,
    call_id         text NOT NULL,
    category        text NOT NULL,
    lat             double precision NOT NULL,
    lon             double precision NOT NULL,
    address         text NOT NULL,
    description     text NOT NULL,
    caller          text NOT NULL,           -- personal data: shown masked
    priority        smallint,
    grid_cell_id    text,
    extra           jsonb NOT NULL DEFAULT '{}'
);

CREATE TABLE field_report (
    ts              timestamptz NOT NULL,
    received_at     timestamptz NOT NULL,
    ts_from_receipt boolean NOT NULL,
    network         text,                    -- NULL when a team sent it
    source_id       text NOT NULL,
    msg_id          text NOT NULL,
    team_id         text,                    -- set when it came on teams/v1/<id>/report
    reporter        text NOT NULL,
    category        text NOT NULL,
    description     text NOT NULL,
    lat             double precision NOT NULL,
    lon             double precision NOT NULL,
    photo_url       text,
    grid_cell_id    text,
    extra           jsonb NOT NULL DEFAULT '{}'
);

CREATE TABLE team_position (
    ts              timestamptz NOT NULL,
    received_at     timestamptz NOT NULL,
    ts_from_receipt boolean NOT NULL,
    team_id         text NOT NULL,
    msg_id          text NOT NULL,
    lat             double precision NOT NULL,
    lon             double precision NOT NULL,
    speed           double precision,
    heading         double precision,
    seq             bigint,
    grid_cell_id    text,
    extra           jsonb NOT NULL DEFAULT '{}'
);

CREATE TABLE team_status (
    ts              timestamptz NOT NULL,
    received_at     timestamptz NOT NULL,
    ts_from_receipt boolean NOT NULL,
    team_id         text NOT NULL,
    msg_id          text NOT NULL,
    status          text NOT NULL,
    incident_id     text,
    seq             bigint,
    extra           jsonb NOT NULL DEFAULT '{}'
);

CREATE INDEX sensor_reading_device_ts_idx ON sensor_reading (device_id, ts DESC);
CREATE INDEX video_alert_camera_ts_idx ON video_alert (camera_id, ts DESC);
CREATE INDEX emergency_call_call_id_idx ON emergency_call (call_id);
CREATE INDEX team_position_team_ts_idx ON team_position (team_id, ts DESC);
CREATE INDEX team_status_team_ts_idx ON team_status (team_id, ts DESC);

-- Bad input: kept, with its reason, never lost and never blocking ---------------
CREATE TABLE dead_letter (
    id              bigserial PRIMARY KEY,
    received_at     timestamptz NOT NULL,
    topic           text NOT NULL,
    payload         bytea NOT NULL,          -- capped copy of the raw bytes
    payload_size    integer NOT NULL,        -- the original size
    reason          text NOT NULL
);
CREATE INDEX dead_letter_received_at_idx ON dead_letter USING brin (received_at);

-- Sensor alarm hysteresis state: shared by every ingest worker (shared subscriptions
-- may hand one device's readings to different workers), so it lives here.
CREATE TABLE sensor_alarm_state (
    device_id   text NOT NULL,
    kind        text NOT NULL,
    raised      boolean NOT NULL,
    changed_at  timestamptz NOT NULL,
    PRIMARY KEY (device_id, kind)
);

-- Alarms for the command service: written in the same transaction as the message,
-- relayed to the Redis stream afterwards, so a Redis outage loses none.
CREATE TABLE alarm_outbox (
    id            bigserial PRIMARY KEY,
    alarm_id      text NOT NULL UNIQUE,
    created_at    timestamptz NOT NULL DEFAULT now(),
    payload       jsonb NOT NULL,
    published_at  timestamptz
);
CREATE INDEX alarm_outbox_unpublished_idx ON alarm_outbox (id) WHERE published_at IS NULL;
