-- 0005: rosters (救援队伍), dispatch orders with their outbox, and the reserve
-- (应急物资储备). What must never happen twice is refused here, not in code.

-- Rosters ---------------------------------------------------------------------------
ALTER TABLE team
    ADD COLUMN status        text NOT NULL DEFAULT 'available'
        CHECK (status IN ('available','dispatched','en_route','on_scene','returning','off_duty')),
    ADD COLUMN status_at     timestamptz,
    ADD COLUMN status_seq    bigint,                  -- the field device's seq of the latest status
    ADD COLUMN lat           double precision,
    ADD COLUMN lon           double precision,
    ADD COLUMN position_at   timestamptz;

CREATE TABLE team_member (
    id        text PRIMARY KEY,
    team_id   text NOT NULL REFERENCES team (id),
    name      text NOT NULL,
    skills    text[] NOT NULL DEFAULT '{}'
);
CREATE INDEX team_member_team_idx ON team_member (team_id);

CREATE TABLE member_certificate (
    member_id   text NOT NULL REFERENCES team_member (id),
    name        text NOT NULL,
    expires_on  date,
    PRIMARY KEY (member_id, name)
);

CREATE TABLE team_shift (
    id         bigserial PRIMARY KEY,
    team_id    text NOT NULL REFERENCES team (id),
    starts_at  timestamptz NOT NULL,
    ends_at    timestamptz NOT NULL,
    CHECK (ends_at > starts_at)
);
CREATE INDEX team_shift_team_idx ON team_shift (team_id, starts_at);

-- Dispatch ----------------------------------------------------------------------------
CREATE TABLE dispatch_order (
    order_id        text PRIMARY KEY,
    incident_id     text NOT NULL REFERENCES incident (id),
    team_id         text NOT NULL REFERENCES team (id),
    exercise_id     text,
    status          text NOT NULL CHECK (status IN ('pending','sent','acked','released','refused')),
    created_at      timestamptz NOT NULL DEFAULT now(),
    created_by      text NOT NULL,
    sent_at         timestamptz,
    acked_at        timestamptz,
    released_at     timestamptz,
    ack_overdue_at  timestamptz,                      -- when the "not acknowledged" alert was raised
    ack_reason      text,                             -- the team's reason, when it refused
    body            jsonb NOT NULL                    -- the order as sent to the team
);
-- A team is never dispatched twice: at most one order per team is in force. Exercise
-- (演练) orders have a roster of their own per exercise, so a drill never blocks (and is
-- never blocked by) a live dispatch.
CREATE UNIQUE INDEX dispatch_order_one_in_force_per_team
    ON dispatch_order (team_id) WHERE status IN ('pending','sent','acked') AND exercise_id IS NULL;
CREATE UNIQUE INDEX dispatch_order_one_in_force_per_team_exercise
    ON dispatch_order (exercise_id, team_id)
    WHERE status IN ('pending','sent','acked') AND exercise_id IS NOT NULL;
CREATE INDEX dispatch_order_incident_idx ON dispatch_order (incident_id);
-- The ack watchdog's question: sent, not acknowledged, no alert yet.
CREATE INDEX dispatch_order_awaiting_ack_idx ON dispatch_order (sent_at)
    WHERE status = 'sent' AND ack_overdue_at IS NULL;

-- Orders to the field go out through this outbox, so one is sent even when the broker
-- was down at the moment of dispatch. ``sent_at`` is set only after the broker's PUBACK.
CREATE TABLE mqtt_outbox (
    id          bigserial PRIMARY KEY,
    topic       text NOT NULL,
    payload     bytea NOT NULL,
    order_id    text,                                 -- the dispatch order this row delivers
    created_at  timestamptz NOT NULL DEFAULT now(),
    sent_at     timestamptz,
    attempts    integer NOT NULL DEFAULT 0
);
CREATE INDEX mqtt_outbox_unsent_idx ON mqtt_outbox (id) WHERE sent_at IS NULL;

-- Orders and teams follow the incident record, whichever service appended the event:
-- a team released from an incident (release, close, cancel, false alarm) releases its
-- order, makes a live team available again and queues a release notice to the team;
-- a team's arrival counts as its acknowledgement and puts a live team on scene. Same
-- transaction as the event. NOTIFY tells the command service to publish the changes.
CREATE FUNCTION dispatch_follows_incident() RETURNS trigger LANGUAGE plpgsql AS '
DECLARE
    t text := NEW.data ->> ''team_id'';
    o dispatch_order%ROWTYPE;
BEGIN
    SELECT * INTO o FROM dispatch_order
     WHERE incident_id = NEW.incident_id AND team_id = t AND status IN (''pending'', ''sent'', ''acked'');
    IF NEW.kind = ''team_released'' THEN
        UPDATE dispatch_order SET released_at = NEW.at
         WHERE incident_id = NEW.incident_id AND team_id = t AND status = ''refused'' AND released_at IS NULL;
        IF o.order_id IS NULL THEN
            RETURN NULL;
        END IF;
        UPDATE dispatch_order SET status = ''released'', released_at = NEW.at WHERE order_id = o.order_id;
        IF o.exercise_id IS NULL THEN
            UPDATE team SET status = ''available'', status_at = NEW.at
             WHERE id = t AND status IN (''dispatched'', ''en_route'', ''on_scene'', ''returning'');
            INSERT INTO mqtt_outbox (topic, payload) VALUES (
                ''teams/v1/'' || t || ''/dispatch'',
                convert_to(json_build_object(
                    ''id'', ''REL-'' || o.order_id, ''ts'', NEW.at, ''kind'', ''release'',
                    ''order_id'', o.order_id, ''incident_id'', NEW.incident_id, ''team_id'', t,
                    ''reason'', NEW.reason)::text, ''UTF8''));
            PERFORM pg_notify(''wuwang_outbox'', '''');
        END IF;
    ELSIF NEW.kind = ''team_arrived'' THEN
        IF o.order_id IS NULL THEN
            RETURN NULL;
        END IF;
        IF o.status <> ''acked'' THEN
            UPDATE dispatch_order SET status = ''acked'', acked_at = NEW.at WHERE order_id = o.order_id;
        END IF;
        IF o.exercise_id IS NULL THEN
            UPDATE team SET status = ''on_scene'', status_at = NEW.at
             WHERE id = t AND status IN (''available'', ''dispatched'', ''en_route'');
        END IF;
    END IF;
    PERFORM pg_notify(''wuwang_dispatch'', json_build_object(
        ''order_id'', o.order_id, ''team_id'', t, ''incident_id'', NEW.incident_id, ''event'', NEW.kind)::text);
    RETURN NULL;
END';
CREATE TRIGGER incident_event_moves_dispatch AFTER INSERT ON incident_event
    FOR EACH ROW WHEN (NEW.kind IN ('team_released', 'team_arrived'))
    EXECUTE FUNCTION dispatch_follows_incident();

-- Reserve -----------------------------------------------------------------------------
CREATE TABLE warehouse (
    id               text PRIMARY KEY,
    name             text NOT NULL,
    kind             text NOT NULL CHECK (kind IN ('government_stock','commercial_agreement','production_capacity')),
    lat              double precision NOT NULL,
    lon              double precision NOT NULL,
    district_adcode  integer REFERENCES district (adcode),
    lead_time_s      integer NOT NULL DEFAULT 0 CHECK (lead_time_s >= 0)
);

CREATE TABLE reserve_item (
    code       text PRIMARY KEY,
    name_zh    text NOT NULL,
    name_en    text NOT NULL,
    category   text NOT NULL,
    unit       text NOT NULL,
    unit_zh    text NOT NULL,
    min_stock  integer NOT NULL DEFAULT 0 CHECK (min_stock >= 0)
);

-- Whole units; "reserved" is held for incidents and not yet issued. The CHECKs are what
-- make a double reservation impossible: a reservation is one conditional UPDATE, and a
-- row can never end with more reserved than on hand, whatever the race.
CREATE TABLE stock_lot (
    id            text PRIMARY KEY,
    warehouse_id  text NOT NULL REFERENCES warehouse (id),
    item_code     text NOT NULL REFERENCES reserve_item (code),
    quantity      integer NOT NULL CHECK (quantity >= 0),
    reserved      integer NOT NULL DEFAULT 0 CHECK (reserved >= 0),
    expires_on    date,
    CHECK (reserved <= quantity)
);
CREATE INDEX stock_lot_item_idx ON stock_lot (item_code, expires_on);

CREATE TABLE production_capacity (
    warehouse_id  text NOT NULL REFERENCES warehouse (id),
    item_code     text NOT NULL REFERENCES reserve_item (code),
    per_day       integer NOT NULL CHECK (per_day > 0),
    lead_time_s   integer NOT NULL DEFAULT 0 CHECK (lead_time_s >= 0),
    PRIMARY KEY (warehouse_id, item_code)
);

-- One incident's hold on one lot, and what became of it.
CREATE TABLE stock_allocation (
    id           bigserial PRIMARY KEY,
    incident_id  text NOT NULL REFERENCES incident (id),
    lot_id       text NOT NULL REFERENCES stock_lot (id),
    reserved     integer NOT NULL DEFAULT 0 CHECK (reserved >= 0),   -- held, not yet issued
    issued       integer NOT NULL DEFAULT 0 CHECK (issued >= 0),     -- out of the warehouse
    returned     integer NOT NULL DEFAULT 0 CHECK (returned >= 0),
    consumed     integer NOT NULL DEFAULT 0 CHECK (consumed >= 0),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    CHECK (returned + consumed <= issued),
    UNIQUE (incident_id, lot_id)
);

CREATE TABLE stock_movement (
    id           bigserial PRIMARY KEY,
    at           timestamptz NOT NULL DEFAULT now(),
    actor        text NOT NULL,
    incident_id  text NOT NULL,
    lot_id       text NOT NULL,
    movement     text NOT NULL CHECK (movement IN ('reserve','release','issue','return','consume')),
    quantity     integer NOT NULL CHECK (quantity > 0)
);
