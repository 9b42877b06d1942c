-- +goose Up
-- One-time links a tenant admin hands to an LMS admin for LTI Dynamic
-- Registration. Only the token's hash is stored.
CREATE TABLE lti_registration_links (
  id           uuid PRIMARY KEY,
  tenant_id    uuid NOT NULL REFERENCES tenants (id),
  token_hash   bytea NOT NULL UNIQUE,
  expires_at   timestamptz NOT NULL,
  used_at      timestamptz,
  registration_id uuid REFERENCES lti_registrations (id) ON DELETE SET NULL,
  created_at   timestamptz NOT NULL
);
ALTER TABLE lti_registration_links ENABLE ROW LEVEL SECURITY;
ALTER TABLE lti_registration_links FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON lti_registration_links
  USING (tenant_id = hub_tenant_id() OR hub_cross_tenant())
  WITH CHECK (tenant_id = hub_tenant_id() OR hub_cross_tenant());

-- +goose Down
DROP TABLE lti_registration_links;
