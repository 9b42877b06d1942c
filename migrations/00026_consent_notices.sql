-- +goose Up
-- Opt-out agreements share unless the learner objects, and tell each
-- learner so once per agreement version: one row per notice shown, so the
-- launch shows it once and the record says when the learner was told.
CREATE TABLE consent_notices (
  tenant_id         uuid NOT NULL REFERENCES tenants (id),
  user_id           uuid NOT NULL,
  agreement_id      uuid NOT NULL,
  agreement_version integer NOT NULL CHECK (agreement_version > 0),
  shown_at          timestamptz NOT NULL,
  PRIMARY KEY (tenant_id, user_id, agreement_version),
  FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE,
  FOREIGN KEY (tenant_id, agreement_id) REFERENCES agreements (tenant_id, id)
);

ALTER TABLE consent_notices ENABLE ROW LEVEL SECURITY;
ALTER TABLE consent_notices FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON consent_notices USING (tenant_id = hub_tenant_id() OR hub_cross_tenant())
  WITH CHECK (tenant_id = hub_tenant_id() OR hub_cross_tenant());

-- +goose Down
DROP TABLE consent_notices;
