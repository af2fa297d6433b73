-- 0016: risk sources (风险源) and emergency shelters (应急避难场所), issue 12 part 1
-- (docs/risk-and-shelters.md). Both are registries of the live city (no exercise_id:
-- a drill reads the same ones). Every change is in audit_log (risk.* / shelter.*).

CREATE TABLE risk_source (
    id                   text PRIMARY KEY CHECK (id ~ '^RS-[0-9A-Za-z-]{2,40}$'),
    name                 text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    kind                 text NOT NULL,                -- command.domain.risk.RiskKind
    lat                  double precision NOT NULL CHECK (lat BETWEEN -90 AND 90),
    lon                  double precision NOT NULL CHECK (lon BETWEEN -180 AND 180),
    grid_cell_id         text NOT NULL,                -- wuwang.lattice at the settings' size
    district_adcode      integer,
    level                text NOT NULL CHECK (level IN ('major','large','general','low')),
    responsible_unit     text NOT NULL DEFAULT '',
    contact              text NOT NULL DEFAULT '',
    inspection_interval_days integer NOT NULL CHECK (inspection_interval_days BETWEEN 1 AND 366),
    last_inspected_at    timestamptz,                  -- NULL: never inspected, due now
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX risk_source_place_idx ON risk_source (lat, lon);
CREATE INDEX risk_source_major_idx ON risk_source (lat, lon) WHERE level = 'major';

-- An overdue inspection opens one grid case per source and due date: the sweep may run
-- in several command processes at once, the primary key makes the second one a no-op.
CREATE TABLE risk_inspection_case (
    source_id     text NOT NULL REFERENCES risk_source (id),
    due_at        timestamptz NOT NULL,
    case_id       text NOT NULL UNIQUE REFERENCES grid_case (id),
    opened_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source_id, due_at)
);

-- Findings reported on an inspection case (or directly): what the source's level was
-- and became, and the alarm raised, if any.
CREATE TABLE risk_finding (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source_id     text NOT NULL REFERENCES risk_source (id),
    case_id       text REFERENCES grid_case (id),
    by            text NOT NULL,
    at            timestamptz NOT NULL,
    note          text NOT NULL DEFAULT '',
    level_before  text NOT NULL,
    level_after   text NOT NULL,
    alarm_id      text
);
CREATE INDEX risk_finding_source_idx ON risk_finding (source_id, at);

CREATE TABLE shelter (
    id               text PRIMARY KEY CHECK (id ~ '^SH-[0-9A-Za-z-]{2,40}$'),
    name             text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    kind             text NOT NULL,                    -- command.domain.risk.ShelterKind
    lat              double precision NOT NULL CHECK (lat BETWEEN -90 AND 90),
    lon              double precision NOT NULL CHECK (lon BETWEEN -180 AND 180),
    grid_cell_id     text NOT NULL,
    district_adcode  integer,
    capacity         integer NOT NULL CHECK (capacity > 0),
    facilities       text[] NOT NULL DEFAULT '{}',
    status           text NOT NULL DEFAULT 'closed' CHECK (status IN ('closed','open','full')),
    occupancy        integer NOT NULL DEFAULT 0 CHECK (occupancy >= 0),
    occupancy_at     timestamptz,
    occupancy_by     text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX shelter_place_idx ON shelter (lat, lon);
