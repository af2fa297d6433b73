-- 0015: the registry of planned events (大型活动登记, issue 9): concerts, matches,
-- festivals with their place (a centre and a radius) and time. Triage promotes alerts
-- within an event's radius while it runs (risk_planned_event, docs/triage.md §9).
-- Cancelled events are kept (who, when, why); every create and cancel is in audit_log
-- (planned_event.create / planned_event.cancel).

CREATE TABLE planned_event (
    event_id       text PRIMARY KEY CHECK (event_id ~ '^PE-[0-9A-Za-z-]{4,40}$'),
    name           text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    place          text NOT NULL DEFAULT '',       -- the address as people say it
    lat            double precision NOT NULL CHECK (lat BETWEEN -90 AND 90),
    lon            double precision NOT NULL CHECK (lon BETWEEN -180 AND 180),
    radius_m       double precision NOT NULL CHECK (radius_m > 0),
    starts_at      timestamptz NOT NULL,
    ends_at        timestamptz NOT NULL,
    exercise_id    text,                           -- NULL: live; else the drill's (0007)
    state          text NOT NULL DEFAULT 'scheduled' CHECK (state IN ('scheduled','cancelled')),
    created_by     text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    cancelled_by   text,
    cancelled_at   timestamptz,
    cancel_reason  text,
    CHECK (ends_at > starts_at),
    CHECK ((state = 'cancelled') = (cancelled_at IS NOT NULL))
);

-- Triage asks "which scheduled events of this scope run around t" on every alarm.
CREATE INDEX planned_event_running_idx ON planned_event (starts_at, ends_at)
    WHERE state = 'scheduled';
