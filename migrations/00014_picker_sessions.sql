-- +goose Up
-- Deep linking picker sessions already submitted or cancelled: a session
-- answers the platform once, as a launch's nonce is used once. A row is
-- kept until its session could no longer be valid; submissions delete
-- their tenant's expired rows.
CREATE TABLE lti_picker_sessions (
  tenant_id       uuid NOT NULL REFERENCES tenants (id),
  registration_id uuid NOT NULL,
  session_id      text NOT NULL CHECK (length(session_id) BETWEEN 1 AND 64),
  expires_at      timestamptz NOT NULL,
  PRIMARY KEY (registration_id, session_id),
  FOREIGN KEY (registration_id) REFERENCES lti_registrations (id) ON DELETE CASCADE -- shared registrations have no tenant
);
CREATE INDEX lti_picker_sessions_expiry ON lti_picker_sessions (tenant_id, expires_at);
ALTER TABLE lti_picker_sessions ENABLE ROW LEVEL SECURITY;
ALTER TABLE lti_picker_sessions FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON lti_picker_sessions
  USING (tenant_id = hub_tenant_id() OR hub_cross_tenant())
  WITH CHECK (tenant_id = hub_tenant_id() OR hub_cross_tenant());

-- Failed dynamic registrations per link: past a bound the link is spent,
-- so a leaked link cannot be tried against platforms without end.
ALTER TABLE lti_registration_links ADD COLUMN failed_attempts integer NOT NULL DEFAULT 0
  CHECK (failed_attempts >= 0);

-- +goose Down
ALTER TABLE lti_registration_links DROP COLUMN failed_attempts;
DROP TABLE lti_picker_sessions;
