-- +goose Up
-- Data-sharing agreements, one row per version. One version per tenant is
-- active; a draft is the only version that changes.
CREATE TABLE agreements (
  id                        uuid PRIMARY KEY,
  tenant_id                 uuid NOT NULL REFERENCES tenants (id),
  version                   integer NOT NULL CHECK (version > 0),
  status                    text NOT NULL CHECK (status IN ('draft', 'active', 'superseded', 'terminated')),
  effective_from            timestamptz NOT NULL,
  effective_until           timestamptz CHECK (effective_until > effective_from),
  purposes                  jsonb NOT NULL,
  categories                text[] NOT NULL,
  fields                    text[] NOT NULL,
  destinations              jsonb NOT NULL,
  consent                   text NOT NULL CHECK (consent IN ('not_required', 'opt_in', 'opt_out')),
  disclosure_retention_days integer NOT NULL CHECK (disclosure_retention_days BETWEEN 1 AND 3650),
  copy_retention_days       integer NOT NULL CHECK (copy_retention_days BETWEEN 1 AND 3650),
  on_end                    text NOT NULL CHECK (on_end IN ('return', 'delete')),
  institution_signatory     jsonb,
  provider_signatory        jsonb,
  activated_at              timestamptz,
  ended_at                  timestamptz,
  created_at                timestamptz NOT NULL,
  updated_at                timestamptz NOT NULL,
  UNIQUE (tenant_id, version),
  UNIQUE (tenant_id, id),
  CHECK ((status = 'draft') = (activated_at IS NULL)),
  CHECK ((status IN ('superseded', 'terminated')) = (ended_at IS NOT NULL)),
  CHECK (status = 'draft' OR (institution_signatory IS NOT NULL AND provider_signatory IS NOT NULL))
);
CREATE UNIQUE INDEX agreements_one_active ON agreements (tenant_id) WHERE status = 'active';

ALTER TABLE agreements ENABLE ROW LEVEL SECURITY;
ALTER TABLE agreements FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON agreements USING (tenant_id = hub_tenant_id() OR hub_cross_tenant())
  WITH CHECK (tenant_id = hub_tenant_id() OR hub_cross_tenant());

-- +goose Down
DROP TABLE agreements;
