-- +goose Up
-- Employer sign-in over OpenID Connect (package sso).
--
-- sso_connections   a tenant's OpenID providers: issuer, client, sealed
--                   client secret, scopes, claim mapping, JIT
-- tenant_domains    email domains routing sign-ins to a tenant's connection
--                   (home-realm discovery); a domain belongs to one tenant
-- sso_identities    (tenant, issuer, subject) linked to one hub user
-- sso_sign_ins      a sign-in in progress: its state, single use, ten minutes
-- sso_sessions      the hub's server-side sessions, revocable
-- sso_logout_tokens back-channel logout tokens (jti) already acted on
--
-- A sign-in is recorded by the identity's last_sign_in_at, the session it
-- opens and an audit entry: no log of its own.
CREATE TABLE sso_connections (
  id                     uuid PRIMARY KEY,
  tenant_id              uuid NOT NULL REFERENCES tenants (id),
  name                   text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  issuer                 text NOT NULL CHECK (length(issuer) BETWEEN 1 AND 2048),
  expected_issuer        text CHECK (length(expected_issuer) BETWEEN 1 AND 2048),
  client_id              text NOT NULL CHECK (length(client_id) BETWEEN 1 AND 512),
  client_secret          bytea,
  secret_set_at          timestamptz,
  scopes                 text[] NOT NULL,
  claims                 jsonb NOT NULL,
  require_email_verified boolean NOT NULL DEFAULT true,
  jit                    boolean NOT NULL DEFAULT true,
  enabled                boolean NOT NULL DEFAULT true,
  created_at             timestamptz NOT NULL,
  updated_at             timestamptz NOT NULL,
  UNIQUE (tenant_id, id),
  UNIQUE (tenant_id, name)
);

CREATE TABLE tenant_domains (
  domain        text PRIMARY KEY CHECK (length(domain) BETWEEN 1 AND 253),
  tenant_id     uuid NOT NULL REFERENCES tenants (id),
  connection_id uuid,
  created_at    timestamptz NOT NULL,
  FOREIGN KEY (tenant_id, connection_id) REFERENCES sso_connections (tenant_id, id) ON DELETE SET NULL (connection_id)
);
CREATE INDEX tenant_domains_tenant ON tenant_domains (tenant_id, domain);

CREATE TABLE sso_identities (
  tenant_id       uuid NOT NULL REFERENCES tenants (id),
  issuer          text NOT NULL,
  subject         text NOT NULL CHECK (length(subject) BETWEEN 1 AND 255),
  connection_id   uuid,
  user_id         uuid NOT NULL,
  created_at      timestamptz NOT NULL,
  last_sign_in_at timestamptz NOT NULL,
  PRIMARY KEY (tenant_id, issuer, subject),
  FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id),
  FOREIGN KEY (tenant_id, connection_id) REFERENCES sso_connections (tenant_id, id) ON DELETE SET NULL (connection_id)
);
CREATE INDEX sso_identities_user ON sso_identities (tenant_id, user_id);

CREATE TABLE sso_sign_ins (
  tenant_id     uuid NOT NULL REFERENCES tenants (id),
  state_hash    bytea NOT NULL,
  connection_id uuid NOT NULL,
  expires_at    timestamptz NOT NULL,
  PRIMARY KEY (tenant_id, state_hash),
  FOREIGN KEY (tenant_id, connection_id) REFERENCES sso_connections (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX sso_sign_ins_expiry ON sso_sign_ins (expires_at);

CREATE TABLE sso_sessions (
  id            uuid PRIMARY KEY,
  tenant_id     uuid NOT NULL REFERENCES tenants (id),
  user_id       uuid NOT NULL,
  connection_id uuid,
  -- The SHA-256 of the hub_session cookie's value.
  token_hash    bytea NOT NULL UNIQUE,
  -- The id_token's own sid and sub (not the mapped subject), which a
  -- back-channel logout token names.
  sid           text CHECK (length(sid) <= 255),
  subject       text NOT NULL,
  -- The mapped groups claim at sign-in: the roles a handoff from the
  -- session carries.
  groups        text[] NOT NULL DEFAULT '{}',
  -- The id_token, sealed, for the logout's id_token_hint.
  id_token      bytea,
  created_at    timestamptz NOT NULL,
  last_seen_at  timestamptz NOT NULL,
  idle_expires_at timestamptz NOT NULL,
  expires_at    timestamptz NOT NULL,
  ended_at      timestamptz,
  end_reason    text CHECK (end_reason IN ('logout', 'admin', 'backchannel', 'deactivated', 'erased', 'expired')),
  UNIQUE (tenant_id, id),
  FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id),
  FOREIGN KEY (tenant_id, connection_id) REFERENCES sso_connections (tenant_id, id) ON DELETE SET NULL (connection_id)
);
CREATE INDEX sso_sessions_tenant ON sso_sessions (tenant_id, created_at DESC, id DESC);
CREATE INDEX sso_sessions_user ON sso_sessions (tenant_id, user_id) WHERE ended_at IS NULL;
CREATE INDEX sso_sessions_sid ON sso_sessions (tenant_id, connection_id, sid) WHERE ended_at IS NULL;

CREATE TABLE sso_logout_tokens (
  tenant_id     uuid NOT NULL REFERENCES tenants (id),
  connection_id uuid NOT NULL,
  jti           text NOT NULL CHECK (length(jti) BETWEEN 1 AND 255),
  expires_at    timestamptz NOT NULL,
  PRIMARY KEY (tenant_id, connection_id, jti),
  FOREIGN KEY (tenant_id, connection_id) REFERENCES sso_connections (tenant_id, id) ON DELETE CASCADE
);

-- +goose StatementBegin
DO $$
DECLARE t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['sso_connections', 'tenant_domains', 'sso_identities', 'sso_sign_ins', 'sso_sessions',
    'sso_logout_tokens'] LOOP
    EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
    EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
    EXECUTE format('CREATE POLICY tenant_isolation ON %I USING (tenant_id = hub_tenant_id() OR hub_cross_tenant())
      WITH CHECK (tenant_id = hub_tenant_id() OR hub_cross_tenant())', t);
  END LOOP;
END $$;
-- +goose StatementEnd

-- Home-realm discovery: the tenant and connection an email domain signs
-- in with, before any tenant is known. Ids only; the caller reads the
-- connection in that tenant's transaction.
-- +goose StatementBegin
CREATE FUNCTION hub_sso_domain_route(p_domain text)
RETURNS TABLE (tenant_id uuid, connection_id uuid)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
  SELECT d.tenant_id, d.connection_id FROM public.tenant_domains d WHERE d.domain = p_domain
$$;
-- +goose StatementEnd

-- The tenant of a connection, by its id: a callback and a back-channel
-- logout name the connection in their path.
-- +goose StatementBegin
CREATE FUNCTION hub_sso_connection_tenant(p_connection uuid) RETURNS uuid
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
  SELECT tenant_id FROM public.sso_connections WHERE id = p_connection
$$;
-- +goose StatementEnd

-- The tenant of a session, by its cookie's hash: every page that reads
-- the hub_session cookie.
-- +goose StatementBegin
CREATE FUNCTION hub_sso_session_tenant(p_token_hash bytea) RETURNS uuid
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
  SELECT tenant_id FROM public.sso_sessions WHERE token_hash = p_token_hash
$$;
-- +goose StatementEnd
REVOKE EXECUTE ON FUNCTION hub_sso_domain_route(text), hub_sso_connection_tenant(uuid), hub_sso_session_tenant(bytea) FROM PUBLIC;

-- A user the directory deactivates (active turns false), or who is
-- erased, has every open session ended, whatever path changed the row.
-- +goose StatementBegin
CREATE FUNCTION hub_sso_end_sessions() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF (OLD.active AND NOT NEW.active) OR (OLD.erased_at IS NULL AND NEW.erased_at IS NOT NULL) THEN
    UPDATE public.sso_sessions SET ended_at = now(),
      end_reason = CASE WHEN NEW.erased_at IS NOT NULL THEN 'erased' ELSE 'deactivated' END
    WHERE tenant_id = NEW.tenant_id AND user_id = NEW.id AND ended_at IS NULL;
  END IF;
  RETURN NULL;
END
$$;
-- +goose StatementEnd
CREATE TRIGGER users_end_sso_sessions AFTER UPDATE OF active, erased_at ON users
  FOR EACH ROW EXECUTE FUNCTION hub_sso_end_sessions();

-- An identity naming an erased user is refused at commit, as for LTI.
CREATE CONSTRAINT TRIGGER sso_identities_not_erased AFTER INSERT OR UPDATE OF user_id ON sso_identities
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION hub_refuse_erased_user();

-- +goose Down
DROP TRIGGER sso_identities_not_erased ON sso_identities;
DROP TRIGGER users_end_sso_sessions ON users;
DROP FUNCTION hub_sso_end_sessions();
DROP FUNCTION hub_sso_session_tenant(bytea), hub_sso_connection_tenant(uuid), hub_sso_domain_route(text);
DROP TABLE sso_logout_tokens;
DROP TABLE sso_sessions;
DROP TABLE sso_sign_ins;
DROP TABLE sso_identities;
DROP TABLE tenant_domains;
DROP TABLE sso_connections;
