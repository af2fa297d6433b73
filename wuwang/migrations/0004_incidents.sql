-- 0004: incidents as an append-only event record, with a projection for queries.

-- The record. Its primary key is the optimistic-concurrency guard: two commands
-- decided on the same version both try seq n+1, one wins, the other gets 409.
CREATE TABLE incident_event (
    incident_id  text NOT NULL,
    seq          integer NOT NULL CHECK (seq >= 1),
    kind         text NOT NULL,
    at           timestamptz NOT NULL,
    actor        text NOT NULL,
    actor_role   text NOT NULL,
    reason       text,
    data         jsonb NOT NULL,
    exercise_id  text,                                -- copied from the incident: drills stay apart
    recorded_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (incident_id, seq)
);
CREATE INDEX incident_event_at_idx ON incident_event (at);

CREATE FUNCTION incident_event_is_append_only() RETURNS trigger LANGUAGE plpgsql AS
'BEGIN RAISE EXCEPTION ''incident_event is append-only (% refused)'', TG_OP; END';
CREATE TRIGGER incident_event_no_update_delete BEFORE UPDATE OR DELETE ON incident_event
    FOR EACH ROW EXECUTE FUNCTION incident_event_is_append_only();

-- The projection: the folded incident, rewritten with every event (rebuildable from
-- incident_event at any time).
CREATE TABLE incident (
    id                 text PRIMARY KEY,
    incident_type      text NOT NULL,
    level              smallint NOT NULL CHECK (level BETWEEN 1 AND 4),
    state              text NOT NULL,
    is_open            boolean NOT NULL,
    title              text NOT NULL,
    lat                double precision,
    lon                double precision,
    grid_cell_id       text,
    exercise_id        text,
    opened_at          timestamptz NOT NULL,
    first_alarm_at     timestamptz NOT NULL,
    latest_alarm_at    timestamptz NOT NULL,
    first_dispatch_at  timestamptz,
    first_on_scene_at  timestamptz,
    resolved_at        timestamptz,
    closed_at          timestamptz,
    ended_at           timestamptz,
    version            integer NOT NULL,
    plan_id            text,
    merged_into        text,
    body               jsonb NOT NULL,                -- the API's view of the incident
    updated_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX incident_open_idx ON incident (exercise_id, level) WHERE is_open;
CREATE INDEX incident_opened_at_idx ON incident (opened_at);

-- Every alarm belongs to exactly one incident: the primary key says so.
CREATE TABLE incident_source (
    alarm_id     text PRIMARY KEY,
    incident_id  text NOT NULL REFERENCES incident (id),
    linked_at    timestamptz NOT NULL
);
CREATE INDEX incident_source_incident_idx ON incident_source (incident_id);

-- Alarms the command service has taken from ingest's stream (idempotent consumer).
CREATE TABLE alarm_inbox (
    alarm_id     text PRIMARY KEY,
    received_at  timestamptz NOT NULL DEFAULT now(),
    exercise_id  text,
    payload      jsonb NOT NULL,
    incident_id  text
);

-- Incident numbers: INC-<yyyymmdd>-<n>, n from here (unique across command processes).
CREATE SEQUENCE incident_number_seq;
