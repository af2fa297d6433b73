-- 0014: the alarm inbox (告警收件箱, issue 9): sensor crossings and video alerts that no
-- triage rule promoted fold into rows here instead of opening incidents
-- (command/domain/triage.py, docs/triage.md). Not "alarm_inbox": that name is the
-- command service's de-duplication ledger of every alarm taken from the stream (0004).
--
-- A row is the domain's InboxRow. Its actions (promote, link, dismiss, expire) are
-- recorded in the append-only audit_log (action inbox.*, object_type inbox_row, the
-- RowChange's audit_detail), in the same transaction as the row's update; the row keeps
-- the latest action (acted_by/acted_role/acted_at/rule_id/dismiss_reason/note).

CREATE TABLE triage_row (
    row_id          text PRIMARY KEY CHECK (row_id ~ '^IB-[0-9a-f]{16}$'),
    source          text NOT NULL,                 -- the alarm's source key (device, camera)
    category        text NOT NULL,                 -- sensor kind, video event
    exercise_id     text,                          -- NULL: live; else the drill's (0007)
    alarm_kind      text NOT NULL CHECK (alarm_kind IN ('call','video','sensor','report')),
    first_seen      timestamptz NOT NULL,
    last_seen       timestamptz NOT NULL,
    count           integer NOT NULL CHECK (count >= 1),
    max_severity    text NOT NULL CHECK (max_severity IN ('low','medium','high','critical')),
    severity_rank   smallint NOT NULL CHECK (severity_rank BETWEEN 1 AND 4),  -- for the inbox order
    max_confidence  double precision,
    lat             double precision,
    lon             double precision,
    grid_cell_id    text,
    summary         text NOT NULL,                 -- the latest alarm's
    first_alarm_id  text NOT NULL,
    alarm_ids       text[] NOT NULL,               -- the last fold.keep_alarm_ids, in fold order
    recent          timestamptz[] NOT NULL,        -- times of the latest alarms (flapping)
    identity        text NOT NULL,                 -- source_identity of its alarms
    flapping        boolean NOT NULL DEFAULT false,
    flapping_since  timestamptz,
    state           text NOT NULL DEFAULT 'open'
        CHECK (state IN ('open','promoted','linked','dismissed','expired')),
    acted_by        text,
    acted_role      text,
    acted_at        timestamptz,
    rule_id         text,                          -- the rule that promoted, linked or expired it
    dismiss_reason  text CHECK (dismiss_reason IN ('false_alarm','duplicate','test','other')),
    note            text,
    incident_id     text,
    rules_version   integer NOT NULL CHECK (rules_version >= 1),  -- the rules it was folded under
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CHECK (last_seen >= first_seen),
    CHECK ((state = 'open') = (acted_at IS NULL)),
    CHECK ((state = 'dismissed') = (dismiss_reason IS NOT NULL)),
    CHECK (state NOT IN ('promoted','linked') OR incident_id IS NOT NULL)
);

-- One open row per (source, category, exercise scope): a second worker, or a storm that
-- outlived its row, never opens a second row beside it (the edge supersedes the old
-- one first, see docs/incidents.md).
CREATE UNIQUE INDEX triage_row_one_open ON triage_row (source, category, (coalesce(exercise_id, '')))
    WHERE state = 'open';
-- The inbox (open, gravest then latest) and the review list (expired, latest first).
CREATE INDEX triage_row_inbox_idx ON triage_row (exercise_id, severity_rank DESC, last_seen DESC)
    WHERE state = 'open';
CREATE INDEX triage_row_state_idx ON triage_row (state, exercise_id, acted_at DESC);
CREATE INDEX triage_row_last_seen_idx ON triage_row (last_seen);

-- Which row each alarm of the ledger folded into (every alarm, beyond the kept ids),
-- and the rule that promoted it when it went to an incident.
ALTER TABLE alarm_inbox ADD COLUMN triage_row_id text;
ALTER TABLE alarm_inbox ADD COLUMN triage_rule text;
CREATE INDEX alarm_inbox_triage_row_idx ON alarm_inbox (triage_row_id) WHERE triage_row_id IS NOT NULL;
CREATE INDEX alarm_inbox_received_idx ON alarm_inbox (received_at);
