-- 0003: the command service's users and its append-only audit log.

CREATE TABLE app_user (
    id             text PRIMARY KEY,                 -- login name
    display_name   text NOT NULL,
    role           text NOT NULL CHECK (role IN ('operator','commander','field','planner','admin')),
    team_id        text REFERENCES team (id),        -- a field user is bound to one team
    password_hash  text NOT NULL,                    -- argon2id
    disabled       boolean NOT NULL DEFAULT false,
    created_at     timestamptz NOT NULL DEFAULT now(),
    CHECK ((role = 'field') = (team_id IS NOT NULL))
);

-- Every state change and every refused authorisation. Append-only: no UPDATE, DELETE
-- or TRUNCATE gets through, whatever role the application connects with.
CREATE TABLE audit_log (
    id           bigserial PRIMARY KEY,
    at           timestamptz NOT NULL DEFAULT now(),
    actor        text NOT NULL,                      -- user id, or "system:<component>"
    actor_role   text,
    action       text NOT NULL,                      -- e.g. "incident.level_change", "auth.login"
    object_type  text,
    object_id    text,
    outcome      text NOT NULL CHECK (outcome IN ('ok','denied','error')),
    detail       jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_object_idx ON audit_log (object_type, object_id);
CREATE INDEX audit_log_at_idx ON audit_log USING brin (at);

CREATE FUNCTION audit_log_is_append_only() RETURNS trigger LANGUAGE plpgsql AS
'BEGIN RAISE EXCEPTION ''audit_log is append-only (% refused)'', TG_OP; END';

CREATE TRIGGER audit_log_no_update_delete BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_is_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_is_append_only();
