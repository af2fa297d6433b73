-- 0018: inbound warnings (外部预警, issue 12): CAP 1.2 alerts other agencies send —
-- meteorology, earthquake, water — imported through POST /warnings/cap or
-- `python -m command cap import`, shown on the map while active (docs/warnings.md,
-- "CAP mapping"). One row per message: an Update or Cancel is a row of its own that
-- retires the rows it references (state updated/cancelled, replaced_by its id).
-- The file as received is kept; every import is in audit_log (warning.cap_import).

CREATE TABLE inbound_warning (
    id            bigserial PRIMARY KEY,
    sender        text NOT NULL,
    identifier    text NOT NULL,
    sent          timestamptz NOT NULL,
    status        text NOT NULL CHECK (status IN ('Actual','Exercise','System','Test','Draft')),
    msg_type      text NOT NULL CHECK (msg_type IN ('Alert','Update','Cancel')),
    refs          jsonb NOT NULL DEFAULT '[]',      -- [{sender, identifier, sent}] as the file names them
    event         text NOT NULL,                    -- the first info block's
    categories    text[] NOT NULL DEFAULT '{}',
    severity      text NOT NULL,
    urgency       text NOT NULL,
    certainty     text NOT NULL,
    level         text CHECK (level IN ('blue','yellow','orange','red')),  -- NULL: severity Unknown
    headline      text,
    onset         timestamptz,
    expires       timestamptz,                      -- the latest info's; NULL: until cancelled
    infos         jsonb NOT NULL DEFAULT '[]',      -- per language: words, codes, parameters
    areas         jsonb NOT NULL DEFAULT '[]',      -- polygons, circles, geocodes (WGS-84)
    state         text NOT NULL DEFAULT 'active' CHECK (state IN ('active','updated','cancelled')),
    replaced_by   bigint REFERENCES inbound_warning (id),
    cap_xml       bytea NOT NULL,
    received_at   timestamptz NOT NULL DEFAULT now(),
    received_by   text NOT NULL,
    UNIQUE (sender, identifier),
    CHECK ((state = 'active') = (replaced_by IS NULL) OR msg_type = 'Cancel')
);

-- The map asks for what is active now.
CREATE INDEX inbound_warning_active_idx ON inbound_warning (expires) WHERE state = 'active';
