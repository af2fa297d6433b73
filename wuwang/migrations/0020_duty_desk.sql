-- 0020: the duty desk (值班值守, issue 13): the centre's own duty roster (领导带班 with one
-- or two duty officers per shift), the duty log (值班日志) filled from what happens and
-- by hand, the leader's instructions (领导批示) with their follow-up, and the signed
-- shift handover (交接班). Every row carries exercise_id (NULL: live; 0007): a drill
-- keeps its own desk. Every change is in audit_log (duty.*).

-- The centre's duty roster: one row per shift of one scope. Shifts of one scope do not
-- overlap (the service checks under a per-scope lock; the unique start is the backstop).
CREATE TABLE duty_shift (
    shift_id     text PRIMARY KEY CHECK (shift_id ~ '^DS-[0-9A-Za-z-]{4,60}$'),
    exercise_id  text,
    starts_at    timestamptz NOT NULL,
    ends_at      timestamptz NOT NULL,
    leader       text NOT NULL REFERENCES app_user (id),        -- 带班领导
    officers     text[] NOT NULL CHECK (cardinality(officers) BETWEEN 1 AND 2),  -- 值班员
    set_by       text NOT NULL,
    set_at       timestamptz NOT NULL DEFAULT now(),
    CHECK (ends_at > starts_at)
);
CREATE UNIQUE INDEX duty_shift_start_idx ON duty_shift (COALESCE(exercise_id, ''), starts_at);
CREATE INDEX duty_shift_at_idx ON duty_shift (starts_at, ends_at);

-- The duty log: automatic entries (calls, incidents, reports, instructions: each with
-- the id of what it is about, ``ref``, so a replay never writes it twice) and free
-- entries by duty officers (no ref). Append-only, like the record it is.
CREATE TABLE duty_log_entry (
    entry_id     bigserial PRIMARY KEY,
    exercise_id  text,
    at           timestamptz NOT NULL,
    kind         text NOT NULL CHECK (kind ~ '^[a-z][a-z_]{1,39}$'),
    ref          text CHECK (length(ref) BETWEEN 1 AND 200),
    text         text NOT NULL CHECK (length(text) BETWEEN 1 AND 2000),
    actor        text NOT NULL,
    detail       jsonb NOT NULL DEFAULT '{}',
    recorded_at  timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX duty_log_entry_ref_idx ON duty_log_entry (COALESCE(exercise_id, ''), kind, ref)
    WHERE ref IS NOT NULL;
CREATE INDEX duty_log_entry_at_idx ON duty_log_entry (at);

-- (as 0007: a purge of a drill deletes that drill's own rows, nothing else)
CREATE FUNCTION duty_log_entry_is_append_only() RETURNS trigger LANGUAGE plpgsql AS
'BEGIN
    IF TG_OP = ''DELETE'' AND OLD.exercise_id IS NOT NULL
       AND OLD.exercise_id = current_setting(''wuwang.purging_exercise'', true) THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION ''duty_log_entry is append-only (% refused)'', TG_OP;
END';
CREATE TRIGGER duty_log_entry_no_update_delete BEFORE UPDATE OR DELETE ON duty_log_entry
    FOR EACH ROW EXECUTE FUNCTION duty_log_entry_is_append_only();

-- 领导批示: an instruction (from the leader on duty or the upper level), whom it was
-- passed to, and its follow-up: open → passed_on → followed_up → done.
CREATE TABLE duty_instruction (
    instruction_id  text PRIMARY KEY CHECK (instruction_id ~ '^DI-[0-9A-Za-z-]{4,60}$'),
    exercise_id     text,
    received_at     timestamptz NOT NULL,
    issued_by       text NOT NULL CHECK (length(issued_by) BETWEEN 1 AND 100),
    text            text NOT NULL CHECK (length(text) BETWEEN 1 AND 2000),
    incident_id     text,
    passed_to       text[] NOT NULL DEFAULT '{}',
    state           text NOT NULL DEFAULT 'open'
                    CHECK (state IN ('open','passed_on','followed_up','done')),
    follow_up       text NOT NULL DEFAULT '' CHECK (length(follow_up) <= 2000),
    recorded_by     text NOT NULL,
    updated_by      text NOT NULL,
    updated_at      timestamptz NOT NULL,
    CHECK (state = 'open' OR cardinality(passed_to) >= 1)
);
CREATE INDEX duty_instruction_open_idx ON duty_instruction (received_at) WHERE state <> 'done';

-- 交接班: what the outgoing shift hands over (a snapshot taken when it is drawn up),
-- signed by one user of each shift. Once both have signed it is immutable.
CREATE TABLE duty_handover (
    handover_id          text PRIMARY KEY CHECK (handover_id ~ '^DH-[0-9A-Za-z-]{4,60}$'),
    exercise_id          text,
    outgoing_shift_id    text NOT NULL REFERENCES duty_shift (shift_id),
    incoming_shift_id    text NOT NULL REFERENCES duty_shift (shift_id),
    drawn_up_by          text NOT NULL,
    drawn_up_at          timestamptz NOT NULL,
    snapshot             jsonb NOT NULL,            -- open, overdue, to follow (at drawing up)
    notes                text NOT NULL DEFAULT '' CHECK (length(notes) <= 4000),
    outgoing_signed_by   text,
    outgoing_signed_at   timestamptz,
    incoming_signed_by   text,
    incoming_signed_at   timestamptz,
    CHECK (outgoing_shift_id <> incoming_shift_id),
    CHECK ((outgoing_signed_by IS NULL) = (outgoing_signed_at IS NULL)),
    CHECK ((incoming_signed_by IS NULL) = (incoming_signed_at IS NULL))
);
CREATE UNIQUE INDEX duty_handover_pair_idx ON duty_handover (outgoing_shift_id, incoming_shift_id);

CREATE FUNCTION duty_handover_sealed() RETURNS trigger LANGUAGE plpgsql AS
'BEGIN
    IF TG_OP = ''DELETE'' AND OLD.exercise_id IS NOT NULL
       AND OLD.exercise_id = current_setting(''wuwang.purging_exercise'', true) THEN
        RETURN OLD;
    END IF;
    IF OLD.outgoing_signed_at IS NOT NULL AND OLD.incoming_signed_at IS NOT NULL THEN
        RAISE EXCEPTION ''duty_handover % is signed by both shifts: immutable (% refused)'',
            OLD.handover_id, TG_OP;
    END IF;
    IF TG_OP = ''DELETE'' THEN RETURN OLD; END IF;
    RETURN NEW;
END';
CREATE TRIGGER duty_handover_no_change_once_signed BEFORE UPDATE OR DELETE ON duty_handover
    FOR EACH ROW EXECUTE FUNCTION duty_handover_sealed();
