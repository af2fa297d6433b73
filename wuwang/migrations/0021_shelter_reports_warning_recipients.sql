-- 0021: issue 12's remaining backend (docs/risk-and-shelters.md, docs/warnings.md).
--
-- Shelter occupancy reports (应急避难场所 安置人数) from the field: over MQTT
-- (teams/v2/<team>/shelter) and the field page. One row per sender and message id, so a
-- resent report (QoS 1 redelivery, the page's outbox after a lost answer) is applied once.
CREATE TABLE shelter_occupancy_report (
    reporter     text NOT NULL,          -- the team (or console user) that counted
    msg_id       text NOT NULL CHECK (length(msg_id) BETWEEN 1 AND 64),
    shelter_id   text NOT NULL REFERENCES shelter (id),
    occupancy    integer NOT NULL CHECK (occupancy >= 0),
    status       text NOT NULL CHECK (status IN ('closed','open','full')),  -- after the report
    channel      text NOT NULL CHECK (channel IN ('mqtt','http')),
    reported_at  timestamptz NOT NULL,   -- the sender's time (its ts), else receipt
    received_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (reporter, msg_id)
);
CREATE INDEX shelter_occupancy_report_shelter_idx ON shelter_occupancy_report (shelter_id, received_at);

-- Who got each warning (预警): the recipients found when it was issued, and those that
-- moved into its area afterwards (re-targeting). One row per version and account, so a
-- team is never told the same version twice, whichever command process sees it move in.
CREATE TABLE warning_recipient (
    identifier    text NOT NULL REFERENCES warning (identifier),
    account       text NOT NULL,          -- a team id, or a grid worker's GW-<cell>
    kind          text NOT NULL CHECK (kind IN ('team','grid_worker')),
    reason        text NOT NULL CHECK (reason IN ('issued','moved_in')),
    delivered_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (identifier, account)
);
