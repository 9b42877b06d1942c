-- +goose Up
-- The tenant a transaction works for, set with SET LOCAL by internal/pg.
-- An unset or empty setting matches no row.
CREATE FUNCTION hub_tenant_id() RETURNS uuid
LANGUAGE sql STABLE AS $$
  SELECT NULLIF(current_setting('hub.tenant_id', true), '')::uuid
$$;

-- True only inside the operator's explicit cross-tenant transactions.
CREATE FUNCTION hub_cross_tenant() RETURNS boolean
LANGUAGE sql STABLE AS $$
  SELECT coalesce(current_setting('hub.cross_tenant', true), '') <> ''
$$;

CREATE TABLE tenants (
  id           uuid PRIMARY KEY,
  slug         text NOT NULL UNIQUE
               CHECK (slug ~ '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$'),
  display_name text NOT NULL CHECK (length(display_name) BETWEEN 1 AND 200),
  kind         text NOT NULL CHECK (kind IN ('institution', 'employer')),
  status       text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
  created_at   timestamptz NOT NULL DEFAULT now(),
  updated_at   timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE tenants ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenants FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON tenants
  USING (id = hub_tenant_id() OR hub_cross_tenant())
  WITH CHECK (id = hub_tenant_id() OR hub_cross_tenant());

CREATE TABLE api_keys (
  id           uuid PRIMARY KEY,
  tenant_id    uuid NOT NULL REFERENCES tenants (id),
  name         text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
  -- The visible part of the token, unique, used to find the key.
  prefix       text NOT NULL UNIQUE,
  -- SHA-256 of the whole token; the token itself is never stored.
  token_hash   bytea NOT NULL,
  scopes       text[] NOT NULL CHECK (scopes <@ ARRAY['read', 'write'] AND cardinality(scopes) > 0),
  expires_at   timestamptz,
  revoked_at   timestamptz,
  last_used_at timestamptz,
  created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX api_keys_tenant ON api_keys (tenant_id, created_at, id);
ALTER TABLE api_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE api_keys FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON api_keys
  USING (tenant_id = hub_tenant_id() OR hub_cross_tenant())
  WITH CHECK (tenant_id = hub_tenant_id() OR hub_cross_tenant());

-- +goose Down
DROP TABLE api_keys;
DROP TABLE tenants;
DROP FUNCTION hub_cross_tenant();
DROP FUNCTION hub_tenant_id();
