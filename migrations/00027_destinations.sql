-- +goose Up
-- A tenant's destinations: the webhook endpoints and xAPI Learning Record
-- Stores that records about its learners may be sent to, as its agreement
-- allows (an agreement names them by id). Their secrets are sealed by the
-- hub (internal/secrets, bound to the tenant and the row) and never
-- stored in the clear: a webhook's signing secret, and during a rotation
-- the previous one until it expires or the rotation is finished; an LRS's
-- Basic username and password.
CREATE TABLE destinations (
  id                         uuid PRIMARY KEY,
  tenant_id                  uuid NOT NULL REFERENCES tenants (id),
  kind                       text NOT NULL CHECK (kind IN ('webhook', 'xapi')),
  name                       text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
  url                        text NOT NULL CHECK (char_length(url) BETWEEN 1 AND 2048),
  enabled                    boolean NOT NULL,
  dry_run                    boolean NOT NULL,
  event_types                text[] NOT NULL CHECK (cardinality(event_types) >= 1
                               AND event_types <@ ARRAY['scores', 'completion', 'progress', 'time_spent', 'certificates']),
  secret                     bytea,
  previous_secret            bytea,
  previous_secret_expires_at timestamptz,
  lrs_username               bytea,
  lrs_password               bytea,
  created_at                 timestamptz NOT NULL,
  updated_at                 timestamptz NOT NULL,
  UNIQUE (tenant_id, id),
  UNIQUE (tenant_id, name),
  CHECK ((kind = 'webhook') = (secret IS NOT NULL)),
  CHECK (kind = 'webhook' OR previous_secret IS NULL),
  CHECK ((previous_secret IS NULL) = (previous_secret_expires_at IS NULL)),
  CHECK ((kind = 'xapi') = (lrs_username IS NOT NULL AND lrs_password IS NOT NULL)),
  CHECK (kind = 'xapi' OR (lrs_username IS NULL AND lrs_password IS NULL))
);
-- Listings run newest first by (created_at, id), the keyset of their cursor.
CREATE INDEX destinations_tenant ON destinations (tenant_id, created_at DESC, id DESC);

ALTER TABLE destinations ENABLE ROW LEVEL SECURITY;
ALTER TABLE destinations FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON destinations USING (tenant_id = hub_tenant_id() OR hub_cross_tenant())
  WITH CHECK (tenant_id = hub_tenant_id() OR hub_cross_tenant());

-- +goose Down
DROP TABLE destinations;
