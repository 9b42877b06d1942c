-- +goose Up
-- What an employer's directory (SCIM 2.0, RFC 7643 §4.1 and the enterprise
-- extension §4.3) says of a hub user. One person is one users row whether
-- they arrived by SCIM, by sign-in or by both: sso matches a signing-in
-- employee to the row the directory provisioned by external_id or
-- employee_number, else by verified email within the tenant.
--   user_name        SCIM userName, unique within a tenant ignoring case
--   external_id      the directory's own id (SCIM externalId)
--   display_name, title, employee_number, department, manager_id (the
--                    manager's SCIM id or externalId, as the client sent it)
--   directory        the other attributes the client sent (emails,
--                    phoneNumbers, addresses, …), as sent, for the export
--   active           false: the directory deactivated them (sign-in refused)
--   provisioned_at   when the directory first listed them; NULL: never
ALTER TABLE users
  ADD COLUMN user_name       text CHECK (length(user_name) BETWEEN 1 AND 256),
  ADD COLUMN external_id     text CHECK (length(external_id) BETWEEN 1 AND 256),
  ADD COLUMN display_name    text,
  ADD COLUMN title           text,
  ADD COLUMN employee_number text,
  ADD COLUMN department      text,
  ADD COLUMN manager_id      text,
  ADD COLUMN directory       jsonb,
  ADD COLUMN active          boolean NOT NULL DEFAULT true,
  ADD COLUMN provisioned_at  timestamptz,
  ADD COLUMN deactivated_at  timestamptz;
CREATE UNIQUE INDEX users_user_name ON users (tenant_id, lower(user_name)) WHERE user_name IS NOT NULL;
CREATE UNIQUE INDEX users_external_id ON users (tenant_id, external_id) WHERE external_id IS NOT NULL;
CREATE INDEX users_employee_number ON users (tenant_id, employee_number) WHERE employee_number IS NOT NULL;
CREATE INDEX users_email ON users (tenant_id, lower(email)) WHERE email IS NOT NULL;

-- An erased user stays blank: the directory's columns too.
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION hub_users_stay_erased() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF OLD.erased_at IS NOT NULL THEN
    NEW.name := NULL; NEW.given_name := NULL; NEW.family_name := NULL; NEW.email := NULL; NEW.locale := NULL;
    NEW.user_name := NULL; NEW.external_id := NULL; NEW.display_name := NULL; NEW.title := NULL;
    NEW.employee_number := NULL; NEW.department := NULL; NEW.manager_id := NULL; NEW.directory := NULL;
    NEW.erased_at := OLD.erased_at;
  END IF;
  RETURN NEW;
END
$$;
-- +goose StatementEnd

-- +goose Down
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION hub_users_stay_erased() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF OLD.erased_at IS NOT NULL THEN
    NEW.name := NULL; NEW.given_name := NULL; NEW.family_name := NULL; NEW.email := NULL; NEW.locale := NULL;
    NEW.erased_at := OLD.erased_at;
  END IF;
  RETURN NEW;
END
$$;
-- +goose StatementEnd
DROP INDEX users_email, users_employee_number, users_external_id, users_user_name;
ALTER TABLE users
  DROP COLUMN user_name, DROP COLUMN external_id, DROP COLUMN display_name, DROP COLUMN title,
  DROP COLUMN employee_number, DROP COLUMN department, DROP COLUMN manager_id, DROP COLUMN directory,
  DROP COLUMN active, DROP COLUMN provisioned_at, DROP COLUMN deactivated_at;
