-- 0006: the grid closed loop (网格化管理): 发现 → 立案 → 派遣 → 处置 → 核查 → 结案.
-- A case is the fold of its steps (command/domain/grid.py): grid_case_step is the
-- record, grid_case the projection for lists, maps and KPIs (rebuildable from the steps).

-- The projection. Facts fixed at discovery (category, place, reporter, source) and the
-- SLA in force then; the rest is rewritten with every step.
CREATE TABLE grid_case (
    id               text PRIMARY KEY,                 -- GC-<yyyymmdd>-<n>
    category         text NOT NULL,                    -- a code of command.domain.grid.GridCategory
    description      text NOT NULL DEFAULT '',
    lat              double precision CHECK (lat BETWEEN -90 AND 90),
    lon              double precision CHECK (lon BETWEEN -180 AND 180),
    grid_cell_id     text,                             -- lattice id; may lie outside the registry
    district_adcode  integer,                          -- from grid_cell when the cell is registered
    reporter         text NOT NULL,                    -- who discovered it (step 1's "by")
    source           text NOT NULL,                    -- "community/GW-r1282c4485", "console/operator1", ...
    source_alarm_id  text UNIQUE,                      -- a report creates at most one case
    exercise_id      text,                             -- drills stay apart from live cases
    sla_s            integer NOT NULL CHECK (sla_s > 0),  -- 处置时限 at discovery (filing → handled)
    stage            text NOT NULL
        CHECK (stage IN ('discovered','filed','dispatched','handled','verified','closed','dismissed')),
    assignee         text,                             -- the department, person or team dispatched
    handled_by       text[] NOT NULL DEFAULT '{}',     -- everyone who handled it, any round
    reworks          integer NOT NULL DEFAULT 0,       -- failed verifications (返工)
    discovered_at    timestamptz NOT NULL,
    filed_at         timestamptz,
    dispatched_at    timestamptz,                      -- latest dispatch (改派 moves it)
    handled_at       timestamptz,                      -- latest handling
    verified_at      timestamptz,
    closed_at        timestamptz,
    dismissed_at     timestamptz,
    deadline         timestamptz,                      -- filed_at + sla
    due_at           timestamptz,                      -- overdue once now() > due_at (NULL: cannot be)
    version          integer NOT NULL CHECK (version >= 1),  -- number of steps
    body             jsonb NOT NULL,                   -- the API's view of the case
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX grid_case_open_idx ON grid_case (exercise_id, stage)
    WHERE stage NOT IN ('closed','dismissed');
CREATE INDEX grid_case_due_idx ON grid_case (due_at) WHERE due_at IS NOT NULL;
CREATE INDEX grid_case_filed_idx ON grid_case (filed_at);
CREATE INDEX grid_case_discovered_idx ON grid_case (discovered_at);
CREATE INDEX grid_case_cell_idx ON grid_case (grid_cell_id);
CREATE INDEX grid_case_assignee_idx ON grid_case (assignee) WHERE assignee IS NOT NULL;

-- The record. Its primary key is the optimistic-concurrency guard: two operators who
-- decided on the same version both try seq n+1; one wins, the other gets 409.
CREATE TABLE grid_case_step (
    case_id      text NOT NULL REFERENCES grid_case (id),
    seq          integer NOT NULL CHECK (seq >= 1),
    action       text NOT NULL
        CHECK (action IN ('discover','file','dismiss','dispatch','handle','verify','reject','close')),
    by           text NOT NULL,
    by_role      text,                                 -- the console role, NULL for a device report
    at           timestamptz NOT NULL,
    note         text NOT NULL DEFAULT '',
    assignee     text,                                 -- dispatch only
    exercise_id  text,                                 -- copied from the case
    recorded_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (case_id, seq),
    CHECK ((seq = 1) = (action = 'discover'))
);
CREATE INDEX grid_case_step_at_idx ON grid_case_step (at);

CREATE FUNCTION grid_case_step_is_append_only() RETURNS trigger LANGUAGE plpgsql AS
'BEGIN RAISE EXCEPTION ''grid_case_step is append-only (% refused)'', TG_OP; END';
CREATE TRIGGER grid_case_step_no_update_delete BEFORE UPDATE OR DELETE ON grid_case_step
    FOR EACH ROW EXECUTE FUNCTION grid_case_step_is_append_only();
CREATE TRIGGER grid_case_step_no_truncate BEFORE TRUNCATE ON grid_case_step
    FOR EACH STATEMENT EXECUTE FUNCTION grid_case_step_is_append_only();

-- Case numbers: GC-<yyyymmdd>-<n>, n from here (unique across command processes).
CREATE SEQUENCE grid_case_number_seq;
