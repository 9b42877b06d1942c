-- +goose Up
-- LMS platforms registered by a tenant. (issuer, client_id) is unique across
-- the hub: every hosted Canvas shares one issuer, so the issuer alone never
-- identifies a registration.
CREATE TABLE lti_registrations (
  id             uuid PRIMARY KEY,
  tenant_id      uuid NOT NULL REFERENCES tenants (id),
  issuer         text NOT NULL,
  client_id      text NOT NULL,
  auth_login_url text NOT NULL,
  auth_token_url text NOT NULL,
  token_audience text NOT NULL DEFAULT '',
  jwks_url       text NOT NULL,
  created_at     timestamptz NOT NULL,
  updated_at     timestamptz NOT NULL,
  UNIQUE (issuer, client_id)
);
CREATE INDEX lti_registrations_tenant ON lti_registrations (tenant_id, created_at, id);

CREATE TABLE lti_deployments (
  tenant_id       uuid NOT NULL REFERENCES tenants (id),
  registration_id uuid NOT NULL REFERENCES lti_registrations (id) ON DELETE CASCADE,
  deployment_id   text NOT NULL CHECK (length(deployment_id) BETWEEN 1 AND 255),
  created_at      timestamptz NOT NULL,
  PRIMARY KEY (registration_id, deployment_id)
);

-- Nonces seen in launches, kept until the id_token could no longer be valid.
CREATE TABLE lti_nonces (
  tenant_id       uuid NOT NULL REFERENCES tenants (id),
  registration_id uuid NOT NULL REFERENCES lti_registrations (id) ON DELETE CASCADE,
  nonce           text NOT NULL,
  expires_at      timestamptz NOT NULL,
  PRIMARY KEY (registration_id, nonce)
);
CREATE INDEX lti_nonces_expiry ON lti_nonces (expires_at);

-- One hub user per person per tenant; launches link platform identities.
CREATE TABLE users (
  id          uuid PRIMARY KEY,
  tenant_id   uuid NOT NULL REFERENCES tenants (id),
  name        text,
  given_name  text,
  family_name text,
  email       text,
  locale      text,
  created_at  timestamptz NOT NULL,
  updated_at  timestamptz NOT NULL
);
CREATE INDEX users_tenant ON users (tenant_id);

CREATE TABLE lti_identities (
  tenant_id         uuid NOT NULL REFERENCES tenants (id),
  issuer            text NOT NULL,
  subject           text NOT NULL,
  user_id           uuid NOT NULL REFERENCES users (id),
  institution_roles text[] NOT NULL DEFAULT '{}',
  system_roles      text[] NOT NULL DEFAULT '{}',
  last_launch_at    timestamptz NOT NULL,
  PRIMARY KEY (tenant_id, issuer, subject)
);

-- Courses (LTI contexts), unique within a deployment.
CREATE TABLE contexts (
  id              uuid PRIMARY KEY,
  tenant_id       uuid NOT NULL REFERENCES tenants (id),
  registration_id uuid NOT NULL REFERENCES lti_registrations (id) ON DELETE CASCADE,
  deployment_id   text NOT NULL,
  context_id      text NOT NULL,
  label           text,
  title           text,
  types           text[] NOT NULL DEFAULT '{}',
  nrps_url        text,
  nrps_versions   text[] NOT NULL DEFAULT '{}',
  ags_lineitems   text,
  ags_scopes      text[] NOT NULL DEFAULT '{}',
  updated_at      timestamptz NOT NULL,
  UNIQUE (registration_id, deployment_id, context_id)
);

CREATE TABLE resource_links (
  id               uuid PRIMARY KEY,
  tenant_id        uuid NOT NULL REFERENCES tenants (id),
  registration_id  uuid NOT NULL REFERENCES lti_registrations (id) ON DELETE CASCADE,
  deployment_id    text NOT NULL,
  resource_link_id text NOT NULL,
  context_ref      uuid REFERENCES contexts (id) ON DELETE CASCADE,
  title            text,
  description      text,
  ags_lineitem     text,
  updated_at       timestamptz NOT NULL,
  UNIQUE (registration_id, deployment_id, resource_link_id)
);

CREATE TABLE memberships (
  tenant_id   uuid NOT NULL REFERENCES tenants (id),
  context_ref uuid NOT NULL REFERENCES contexts (id) ON DELETE CASCADE,
  user_id     uuid NOT NULL REFERENCES users (id),
  roles       text[] NOT NULL DEFAULT '{}',
  source      text NOT NULL CHECK (source IN ('launch', 'nrps')),
  updated_at  timestamptz NOT NULL,
  PRIMARY KEY (context_ref, user_id)
);

-- +goose StatementBegin
DO $$
DECLARE t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['lti_registrations', 'lti_deployments', 'lti_nonces', 'users',
                           'lti_identities', 'contexts', 'resource_links', 'memberships'] LOOP
    EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
    EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
    EXECUTE format('CREATE POLICY tenant_isolation ON %I USING (tenant_id = hub_tenant_id() OR hub_cross_tenant())
                    WITH CHECK (tenant_id = hub_tenant_id() OR hub_cross_tenant())', t);
  END LOOP;
END $$;
-- +goose StatementEnd

-- +goose Down
DROP TABLE memberships, resource_links, contexts, lti_identities, users, lti_nonces, lti_deployments, lti_registrations;
