-- +goose Up
-- The SCIM 2.0 directory (RFC 7643, RFC 7644): the bearer tokens an
-- employer's directory pushes with, its groups and their members. Its Users
-- are rows of users (00030).
--
-- A directory's DELETE of a user deprovisions them: the row stays (results,
-- deliveries and the record of disclosures name it), deprovisioned_at is
-- set with active false, and the identifiers a directory or a sign-in
-- matches by (user_name, external_id, employee_number) are cleared, so the
-- directory may create the same userName afresh and no sign-in finds the
-- old row by them. The directory no longer sees a deprovisioned user.
ALTER TABLE users ADD COLUMN deprovisioned_at timestamptz;

-- A tenant's SCIM bearer tokens: shown once, stored as the SHA-256 of the
-- token ("scim token" purpose), found by their visible prefix.
CREATE TABLE scim_tokens (
  id           uuid PRIMARY KEY,
  tenant_id    uuid NOT NULL REFERENCES tenants (id),
  name         text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
  prefix       text NOT NULL UNIQUE,
  token_hash   bytea NOT NULL,
  created_at   timestamptz NOT NULL,
  expires_at   timestamptz,
  revoked_at   timestamptz,
  last_used_at timestamptz,
  UNIQUE (tenant_id, id)
);
CREATE INDEX scim_tokens_tenant ON scim_tokens (tenant_id, created_at, id);

-- A directory's groups. version counts changes (the ETag).
CREATE TABLE scim_groups (
  id           uuid PRIMARY KEY,
  tenant_id    uuid NOT NULL REFERENCES tenants (id),
  display_name text NOT NULL CHECK (length(display_name) BETWEEN 1 AND 256),
  external_id  text CHECK (length(external_id) BETWEEN 1 AND 256),
  created_at   timestamptz NOT NULL,
  updated_at   timestamptz NOT NULL,
  version      bigint NOT NULL DEFAULT 1,
  UNIQUE (tenant_id, id)
);
CREATE UNIQUE INDEX scim_groups_display_name ON scim_groups (tenant_id, lower(display_name));
CREATE UNIQUE INDEX scim_groups_external_id ON scim_groups (tenant_id, external_id) WHERE external_id IS NOT NULL;
CREATE INDEX scim_groups_created ON scim_groups (tenant_id, created_at, id);

-- Who is in each group; a member is a user of the same tenant.
CREATE TABLE scim_group_members (
  tenant_id uuid NOT NULL,
  group_id  uuid NOT NULL,
  user_id   uuid NOT NULL,
  PRIMARY KEY (tenant_id, group_id, user_id),
  FOREIGN KEY (tenant_id, group_id) REFERENCES scim_groups (tenant_id, id) ON DELETE CASCADE,
  FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id)
);
CREATE INDEX scim_group_members_user ON scim_group_members (tenant_id, user_id);

-- A SCIM token acts in the audit log.
ALTER TABLE audit_log DROP CONSTRAINT audit_log_actor_type_check,
  ADD CONSTRAINT audit_log_actor_type_check CHECK (actor_type IN ('operator', 'api_key', 'system', 'anonymous', 'learner', 'scim_token'));

-- +goose StatementBegin
DO $$
DECLARE t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['scim_tokens', 'scim_groups', 'scim_group_members'] LOOP
    EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
    EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
    EXECUTE format('CREATE POLICY tenant_isolation ON %I USING (tenant_id = hub_tenant_id() OR hub_cross_tenant())
      WITH CHECK (tenant_id = hub_tenant_id() OR hub_cross_tenant())', t);
  END LOOP;
END $$;
-- +goose StatementEnd

-- +goose Down
ALTER TABLE audit_log DROP CONSTRAINT audit_log_actor_type_check,
  ADD CONSTRAINT audit_log_actor_type_check CHECK (actor_type IN ('operator', 'api_key', 'system', 'anonymous', 'learner'));
DROP TABLE scim_group_members;
DROP TABLE scim_groups;
DROP TABLE scim_tokens;
ALTER TABLE users DROP COLUMN deprovisioned_at;
