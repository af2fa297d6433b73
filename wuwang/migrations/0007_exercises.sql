-- 0007: exercises (演练) — scripted drills, replays of recorded days and imported call
-- records — kept apart from live operations. Every row a drill produces carries its
-- exercise id; live views, live KPIs, live dispatch and the per-minute aggregate only
-- read rows whose exercise_id IS NULL, and an exercise can be purged as a whole.

CREATE TABLE exercise (
    id            text PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9_.-]{1,64}$'),
    name          text NOT NULL,
    kind          text NOT NULL CHECK (kind IN ('scenario','replay','import')),
    source        text NOT NULL,              -- scenario file, replayed window or dataset, imported file
    status        text NOT NULL DEFAULT 'planned'
        CHECK (status IN ('planned','running','paused','finished','failed','purged')),
    speed         double precision NOT NULL DEFAULT 1 CHECK (speed > 0 AND speed <= 1000),
    created_by    text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    started_at    timestamptz,
    finished_at   timestamptz,
    sim_start     timestamptz,                -- the scenario's or recording's own time span
    sim_end       timestamptz,
    sim_position  timestamptz,                -- how far the run has got, in that time
    stats         jsonb NOT NULL DEFAULT '{}' -- injects sent, timing drift, import report
);

-- The feeds: rows from an exercise topic (exercise/v1/<id>/...) are marked.
ALTER TABLE sensor_reading ADD COLUMN exercise_id text;
ALTER TABLE video_alert ADD COLUMN exercise_id text;
ALTER TABLE emergency_call ADD COLUMN exercise_id text;
ALTER TABLE field_report ADD COLUMN exercise_id text;
ALTER TABLE team_position ADD COLUMN exercise_id text;
ALTER TABLE team_status ADD COLUMN exercise_id text;
ALTER TABLE dead_letter ADD COLUMN exercise_id text;

-- Sensor hysteresis is kept per exercise: a drill's readings on a real device id must
-- never raise or clear that device's live state. scope is '' for live, else the
-- exercise id (part of the key, so not NULL).
ALTER TABLE sensor_alarm_state ADD COLUMN scope text NOT NULL DEFAULT '';
ALTER TABLE sensor_alarm_state DROP CONSTRAINT sensor_alarm_state_pkey;
ALTER TABLE sensor_alarm_state ADD PRIMARY KEY (scope, device_id, kind);

-- A team's status inside one exercise ("team becomes unavailable" injects): the live
-- roster is never touched by a drill.
CREATE TABLE exercise_team_state (
    exercise_id  text NOT NULL REFERENCES exercise (id),
    team_id      text NOT NULL REFERENCES team (id),
    status       text NOT NULL
        CHECK (status IN ('available','dispatched','en_route','on_scene','returning','off_duty')),
    changed_at   timestamptz NOT NULL,
    PRIMARY KEY (exercise_id, team_id)
);

-- Stock an exercise treats as gone ("warehouse runs short" injects): virtual, like
-- the exercise's holds; live stock is never changed.
CREATE TABLE exercise_stock_cut (
    exercise_id   text NOT NULL REFERENCES exercise (id),
    warehouse_id  text NOT NULL REFERENCES warehouse (id),
    item_code     text NOT NULL REFERENCES reserve_item (code),
    quantity      numeric NOT NULL CHECK (quantity > 0),
    at            timestamptz NOT NULL,
    PRIMARY KEY (exercise_id, warehouse_id, item_code)
);

-- Imported historical call records (CSV): their own table, outside the time-series
-- retention (they are years old), replayable into an exercise like a recorded window.
CREATE TABLE imported_call (
    dataset_id   text NOT NULL REFERENCES exercise (id),
    line_no      integer NOT NULL CHECK (line_no >= 1),
    ts           timestamptz NOT NULL,
    lat          double precision NOT NULL CHECK (lat BETWEEN -90 AND 90),
    lon          double precision NOT NULL CHECK (lon BETWEEN -180 AND 180),
    category     text NOT NULL
        CHECK (category IN ('criminal','public_order','traffic','fire','medical','rescue','dispute','other')),
    description  text NOT NULL,
    address      text NOT NULL DEFAULT '',
    external_id  text,                        -- the source's own call/incident number
    extra        jsonb NOT NULL DEFAULT '{}',
    PRIMARY KEY (dataset_id, line_no)
);
CREATE INDEX imported_call_ts_idx ON imported_call (dataset_id, ts);

-- Append-only records stay append-only, except that an exercise's own rows may be
-- deleted by a purge of that exercise (the purge sets wuwang.purging_exercise in its
-- transaction; live rows, with exercise_id NULL, can never match it).
CREATE OR REPLACE FUNCTION incident_event_is_append_only() RETURNS trigger LANGUAGE plpgsql AS
'BEGIN
    IF TG_OP = ''DELETE'' AND OLD.exercise_id IS NOT NULL
       AND OLD.exercise_id = current_setting(''wuwang.purging_exercise'', true) THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION ''incident_event is append-only (% refused)'', TG_OP;
END';

CREATE OR REPLACE FUNCTION grid_case_step_is_append_only() RETURNS trigger LANGUAGE plpgsql AS
'BEGIN
    IF TG_OP = ''DELETE'' AND OLD.exercise_id IS NOT NULL
       AND OLD.exercise_id = current_setting(''wuwang.purging_exercise'', true) THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION ''grid_case_step is append-only (% refused)'', TG_OP;
END';
