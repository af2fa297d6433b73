-- 0011: what each field team has uploaded as photos, per day of the command centre's
-- calendar (COMMAND_TIMEZONE). An upload adds its bytes in the same transaction as its
-- audit record, with one conditional upsert (command/routes/field.py): concurrent
-- uploads of one team queue on this row, so together they cannot pass the day's quota
-- (COMMAND_PHOTO_QUOTA_BYTES).
CREATE TABLE field_photo_usage (
    team_id  text NOT NULL,
    day      date NOT NULL,
    bytes    bigint NOT NULL CHECK (bytes >= 0),
    photos   integer NOT NULL CHECK (photos >= 0),
    PRIMARY KEY (team_id, day)
);
