-- +goose Up
-- Retention runs: each time the hub deleted, for one tenant, what its
-- agreements say it keeps no longer (disclosure records past their
-- retention, and the learners of an agreement that ended with `delete`
-- once its retention ran out). A run is queued by the schedule or a
-- request, worked by a job, and counts what it deleted as it goes, so a
-- run resumed after a crash keeps its counts. At most one run of a tenant
-- is queued or running: a second request joins it.
CREATE TABLE retention_runs (
  id                  uuid PRIMARY KEY,
  tenant_id           uuid NOT NULL REFERENCES tenants (id),
  trigger             text NOT NULL CHECK (trigger IN ('schedule', 'request')),
  status              text NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed')),
  requested_at        timestamptz NOT NULL,
  started_at          timestamptz,
  finished_at         timestamptz,
  disclosures_deleted integer NOT NULL DEFAULT 0 CHECK (disclosures_deleted >= 0),
  learners_erased     integer NOT NULL DEFAULT 0 CHECK (learners_erased >= 0),
  error               text CHECK (length(error) <= 1024),
  CHECK ((status IN ('succeeded', 'failed')) = (finished_at IS NOT NULL)),
  CHECK ((status = 'failed') = (error IS NOT NULL))
);
CREATE UNIQUE INDEX retention_runs_one_active ON retention_runs (tenant_id) WHERE status IN ('queued', 'running');
-- Listings run newest first by (requested_at, id), the keyset of their cursor.
CREATE INDEX retention_runs_tenant ON retention_runs (tenant_id, requested_at DESC, id DESC);

ALTER TABLE retention_runs ENABLE ROW LEVEL SECURITY;
ALTER TABLE retention_runs FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON retention_runs USING (tenant_id = hub_tenant_id() OR hub_cross_tenant())
  WITH CHECK (tenant_id = hub_tenant_id() OR hub_cross_tenant());

-- Retention reads the disclosures of each agreement version (NULL: of
-- none) older than that version's retention.
CREATE INDEX disclosures_agreement ON disclosures (tenant_id, agreement_id, decided_at);
-- The erasure of an ended agreement's learners finds those not yet erased.
CREATE INDEX users_not_erased ON users (tenant_id, created_at) WHERE erased_at IS NULL;

-- +goose Down
DROP INDEX users_not_erased, disclosures_agreement;
DROP TABLE retention_runs;
