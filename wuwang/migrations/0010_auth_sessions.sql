-- 0010: sessions of the command service (docs/security.md, "Tokens, sessions and logins").
-- A login opens one; every token of it (refreshes included) names it, and every request
-- and every open /ws checks it: a logout revokes it, and a disabled account or a changed
-- role or team ends it, at once instead of at the token's expiry.
CREATE TABLE auth_session (
    id              text PRIMARY KEY,
    user_id         text NOT NULL REFERENCES app_user (id),
    signed_in_at    timestamptz NOT NULL DEFAULT now(),
    ends_at         timestamptz NOT NULL,             -- the shift: no refresh past it
    revoked_at      timestamptz,
    revoked_reason  text
);
CREATE INDEX auth_session_user_idx ON auth_session (user_id) WHERE revoked_at IS NULL;
CREATE INDEX auth_session_ends_idx ON auth_session (ends_at);
