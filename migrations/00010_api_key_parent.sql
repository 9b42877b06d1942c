-- +goose Up
-- A key minted by another key names its parent: it expires no later than
-- the parent and is revoked with it. Keys the operator mints have none.
-- The parent is of the same tenant, which the composite key enforces.
ALTER TABLE api_keys ADD CONSTRAINT api_keys_tenant_id_id UNIQUE (tenant_id, id);
ALTER TABLE api_keys ADD COLUMN parent_id uuid;
ALTER TABLE api_keys ADD CONSTRAINT api_keys_parent_fkey
  FOREIGN KEY (tenant_id, parent_id) REFERENCES api_keys (tenant_id, id);
ALTER TABLE api_keys ADD CONSTRAINT api_keys_not_own_parent CHECK (parent_id <> id);
-- Revocation walks from a key to its children.
CREATE INDEX api_keys_children ON api_keys (tenant_id, parent_id) WHERE parent_id IS NOT NULL;

-- +goose Down
DROP INDEX api_keys_children;
ALTER TABLE api_keys DROP CONSTRAINT api_keys_not_own_parent;
ALTER TABLE api_keys DROP CONSTRAINT api_keys_parent_fkey;
ALTER TABLE api_keys DROP COLUMN parent_id;
ALTER TABLE api_keys DROP CONSTRAINT api_keys_tenant_id_id;
