-- 0017: warnings (预警, issue 12): drafts, issued versions, updates that reference the
-- version they replace, cancellations and expiry (command/domain/warnings.py). One row
-- per version; the identifier is GB/T 35965.1's ZZZZZZDDDUUUXX_YYYYMMDDhhmmss_N, unique
-- here. Every step is in audit_log (warning.draft / approve / update / cancel / expire).

CREATE TABLE warning (
    identifier          text PRIMARY KEY CHECK (identifier ~ '^[0-9]{14}_[0-9]{14}_[1-9][0-9]{0,5}$'),
    sender              text NOT NULL,
    exercise_id         text,                           -- NULL: live; else the drill's (0007)
    state               text NOT NULL DEFAULT 'draft'
        CHECK (state IN ('draft','issued','superseded','cancelled','expired')),
    msg_type            text NOT NULL DEFAULT 'Alert' CHECK (msg_type IN ('Alert','Update','Cancel')),
    version             integer NOT NULL DEFAULT 1 CHECK (version >= 1),
    refs                text REFERENCES warning (identifier),  -- the version this one updates
    event_type          text NOT NULL,
    level               text NOT NULL CHECK (level IN ('red','orange','yellow','blue')),
    area_polygon        jsonb NOT NULL DEFAULT '[]',    -- [[lat, lon], ...], WGS-84
    area_cells          text[] NOT NULL DEFAULT '{}',
    area_districts      integer[] NOT NULL DEFAULT '{}',
    onset               timestamptz NOT NULL,
    expires             timestamptz NOT NULL,
    headline            text NOT NULL CHECK (length(headline) BETWEEN 1 AND 120),
    description         text NOT NULL DEFAULT '',
    instruction         text NOT NULL DEFAULT '',
    drafted_by          text NOT NULL,
    drafted_at          timestamptz NOT NULL,
    approved_by         text,                           -- 依法处置: who approved, when
    approved_at         timestamptz,
    cancelled_by        text,
    cancelled_at        timestamptz,
    cancel_reason       text,
    ended_at            timestamptz,                    -- superseded or expired
    target_teams        text[] NOT NULL DEFAULT '{}',   -- whom it was sent to when issued
    target_grid_workers text[] NOT NULL DEFAULT '{}',
    CHECK (expires > onset),
    CHECK ((approved_at IS NULL) = (approved_by IS NULL)),
    CHECK (state = 'draft' OR state = 'cancelled' OR approved_at IS NOT NULL)
);
-- The expiry worker's and the map's question: what is issued, by expiry.
CREATE INDEX warning_issued_idx ON warning (expires) WHERE state = 'issued';
CREATE INDEX warning_scope_idx ON warning (exercise_id, drafted_at);
-- A version is updated once: two commanders updating the same version, one wins.
CREATE UNIQUE INDEX warning_refs_once_idx ON warning (refs) WHERE refs IS NOT NULL;
