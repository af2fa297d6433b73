-- 0019: upward reporting (信息报送, issue 13): reports to the upper level (首报 / 续报 /
-- 终报) with every version, the incident's casualty and loss figures with their history,
-- the outbox that sends them, the receipts (回执) and instructions (批示) that come back,
-- and the clocks that went overdue (escalated to the leader on duty). The rules and the
-- clocks themselves are command/domain/reporting.py; docs/duty-and-reporting.md.

CREATE TABLE upward_report (
    incident_id       text NOT NULL REFERENCES incident (id),
    number            integer NOT NULL CHECK (number >= 1),           -- 第 n 报
    report_id         text NOT NULL UNIQUE,                           -- the exchange's key
    exercise_id       text,                                           -- NULL: live; else the drill's
    jurisdiction      text NOT NULL,                                  -- the rule it answers
    kind              text NOT NULL CHECK (kind IN ('first', 'follow_up', 'final')),
    channel           text NOT NULL CHECK (channel IN ('phone', 'written')),
    state             text NOT NULL DEFAULT 'draft'
        CHECK (state IN ('draft', 'approved', 'sent', 'acknowledged')),
    drafted_by        text NOT NULL,
    drafted_at        timestamptz NOT NULL,
    approved_version  integer,                                        -- 签发: which version, by whom
    approved_by       text,
    approved_at       timestamptz,
    sent_at           timestamptz,
    acknowledged_at   timestamptz,
    receipt_by        text,
    PRIMARY KEY (incident_id, number),
    CHECK ((approved_version IS NULL) = (approved_at IS NULL) AND (approved_at IS NULL) = (approved_by IS NULL)),
    CHECK (state = 'draft' OR approved_version IS NOT NULL),
    CHECK (state IN ('draft', 'approved') OR sent_at IS NOT NULL),
    CHECK (state <> 'acknowledged' OR acknowledged_at IS NOT NULL)
);
-- One first and one final report per incident.
CREATE UNIQUE INDEX upward_report_one_first_idx ON upward_report (incident_id) WHERE kind = 'first';
CREATE UNIQUE INDEX upward_report_one_final_idx ON upward_report (incident_id) WHERE kind = 'final';
CREATE INDEX upward_report_scope_idx ON upward_report (exercise_id, drafted_at);

-- Approval and sending happen once: the approved version and the sending time never change.
CREATE FUNCTION upward_report_once() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.approved_version IS NOT NULL AND NEW.approved_version IS DISTINCT FROM OLD.approved_version THEN
        RAISE EXCEPTION 'report % is approved: its version is fixed', OLD.report_id;
    END IF;
    IF OLD.sent_at IS NOT NULL AND NEW.sent_at IS DISTINCT FROM OLD.sent_at THEN
        RAISE EXCEPTION 'report % was sent: it is never sent twice', OLD.report_id;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER upward_report_once BEFORE UPDATE ON upward_report
    FOR EACH ROW EXECUTE FUNCTION upward_report_once();

-- Every version, as written: never changed, never removed; none added once approved.
CREATE TABLE upward_report_version (
    incident_id  text NOT NULL,
    number       integer NOT NULL,
    n            integer NOT NULL CHECK (n >= 1),
    content      jsonb NOT NULL,
    changes      jsonb NOT NULL DEFAULT '[]',    -- what changed since the last report sent
    edited_by    text NOT NULL,
    edited_at    timestamptz NOT NULL,
    note         text NOT NULL DEFAULT '',
    PRIMARY KEY (incident_id, number, n),
    FOREIGN KEY (incident_id, number) REFERENCES upward_report (incident_id, number)
);
CREATE FUNCTION upward_report_version_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        RAISE EXCEPTION 'upward_report_version is append-only (% refused)', TG_OP;
    END IF;
    IF EXISTS (SELECT 1 FROM upward_report r WHERE r.incident_id = NEW.incident_id
               AND r.number = NEW.number AND r.state <> 'draft') THEN
        RAISE EXCEPTION 'report %/% is approved: no new version', NEW.incident_id, NEW.number;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER upward_report_version_guard BEFORE INSERT OR UPDATE OR DELETE ON upward_report_version
    FOR EACH ROW EXECUTE FUNCTION upward_report_version_guard();

-- Casualties and losses (伤亡和损失) as stated over time; the latest is the current figure.
CREATE TABLE incident_figures (
    id           bigserial PRIMARY KEY,
    incident_id  text NOT NULL REFERENCES incident (id),
    exercise_id  text,
    at           timestamptz NOT NULL,
    recorded_by  text NOT NULL,
    source       text NOT NULL DEFAULT '',
    figures      jsonb NOT NULL
);
CREATE INDEX incident_figures_idx ON incident_figures (incident_id, at);
CREATE TRIGGER incident_figures_append_only BEFORE UPDATE OR DELETE ON incident_figures
    FOR EACH ROW EXECUTE FUNCTION incident_event_is_append_only();

-- Sending: a report is queued once (the primary key); the worker posts it to the upper
-- level's platform until it answers, with the report id as the idempotency key.
CREATE TABLE upward_outbox (
    report_id        text PRIMARY KEY REFERENCES upward_report (report_id),
    payload          jsonb NOT NULL,              -- the exchange form (docs/schemas/exchange/)
    queued_at        timestamptz NOT NULL,
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL,
    delivered_at     timestamptz,
    last_error       text
);
CREATE INDEX upward_outbox_due_idx ON upward_outbox (next_attempt_at) WHERE delivered_at IS NULL;

-- Receipts (回执): one per receipt id; a repeated one is the same row.
CREATE TABLE upward_receipt (
    receipt_id   text PRIMARY KEY,
    report_id    text NOT NULL REFERENCES upward_report (report_id),
    received_at  timestamptz NOT NULL,
    signed_by    text NOT NULL,
    body         jsonb NOT NULL DEFAULT '{}'
);

-- Instructions from the upper level (上级批示): who they were passed to, their follow-up.
CREATE TABLE upward_instruction (
    instruction_id  text PRIMARY KEY,             -- the upper level's id: received once
    report_id       text REFERENCES upward_report (report_id),
    incident_id     text,
    exercise_id     text,
    from_unit       text NOT NULL,
    issued_by       text NOT NULL DEFAULT '',
    text            text NOT NULL CHECK (length(text) BETWEEN 1 AND 4000),
    issued_at       timestamptz NOT NULL,
    received_at     timestamptz NOT NULL,
    passed_to       text,
    follow_up       text NOT NULL DEFAULT 'open' CHECK (follow_up IN ('open', 'passed_on', 'done'))
);
CREATE INDEX upward_instruction_received_idx ON upward_instruction (received_at);

-- Clocks that went overdue: escalated to the leader on duty once (whether one is met
-- since is the clocks' own answer: they are computed from the reports sent).
CREATE TABLE upward_clock_escalation (
    incident_id    text NOT NULL REFERENCES incident (id),
    clock_key      text NOT NULL,
    exercise_id    text,
    clock_kind     text NOT NULL,
    due_at         timestamptz NOT NULL,
    escalated_at   timestamptz NOT NULL,
    escalated_to   text NOT NULL DEFAULT 'commander',   -- 带班领导
    PRIMARY KEY (incident_id, clock_key)
);
