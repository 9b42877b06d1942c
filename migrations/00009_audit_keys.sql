-- +goose Up
-- Audit entries are hashed with a key the database does not hold (derived
-- from HUB_SECRET_KEY), named by key_id so the key can rotate; entries
-- written before keyed chains have key_id ''. Each chain's head is kept
-- as a signed checkpoint, replaced with every append, so removing the
-- newest entries is detected too.
ALTER TABLE audit_log ADD COLUMN key_id text NOT NULL DEFAULT '';

CREATE TABLE audit_checkpoints (
  chain     text PRIMARY KEY, -- 'operator' or the tenant's id
  tenant_id uuid REFERENCES tenants (id),
  seq       bigint NOT NULL CHECK (seq > 0),
  hash      bytea NOT NULL,
  at        timestamptz NOT NULL,
  key_id    text NOT NULL,
  mac       bytea NOT NULL,
  CHECK ((tenant_id IS NULL) = (chain = 'operator'))
);
ALTER TABLE audit_checkpoints ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_checkpoints FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON audit_checkpoints
  USING (tenant_id = hub_tenant_id() OR (tenant_id IS NULL AND hub_tenant_id() IS NULL) OR hub_cross_tenant())
  WITH CHECK (tenant_id = hub_tenant_id() OR (tenant_id IS NULL AND hub_tenant_id() IS NULL) OR hub_cross_tenant());

-- +goose Down
DROP TABLE audit_checkpoints;
ALTER TABLE audit_log DROP COLUMN key_id;
