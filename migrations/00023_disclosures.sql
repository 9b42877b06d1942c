-- +goose Up
-- The record of disclosures (FERPA §99.32, GDPR Art. 30): one row per
-- decision on an outbound record about a learner, whether it was shared,
-- shared with identity fields removed, or withheld. Written in the
-- transaction that sends or cancels the record; never changed after.
--
-- user_id becomes NULL when the learner is erased: the decision stays on
-- record without saying who it was about. ON DELETE SET NULL (user_id)
-- (PostgreSQL 15) clears only that column; a plain SET NULL would clear
-- tenant_id too, which is NOT NULL.
--
-- The agreement a decision was made under is named by id and version
-- together; NULL for both when the tenant had no agreement.
ALTER TABLE agreements ADD CONSTRAINT agreements_tenant_id_id_version_key UNIQUE (tenant_id, id, version);

CREATE TABLE disclosures (
  id                uuid PRIMARY KEY,
  tenant_id         uuid NOT NULL REFERENCES tenants (id),
  user_id           uuid,
  destination_kind  text NOT NULL CHECK (destination_kind IN ('lms', 'webhook', 'xapi')),
  destination_id    uuid,
  category          text NOT NULL CHECK (category IN ('scores', 'completion', 'progress', 'time_spent', 'certificates')),
  fields            text[] NOT NULL DEFAULT '{}',
  removed_fields    text[] NOT NULL DEFAULT '{}',
  agreement_id      uuid,
  agreement_version integer CHECK (agreement_version > 0),
  decision          text NOT NULL CHECK (decision IN ('share', 'share_minimized', 'withhold')),
  reason            text NOT NULL DEFAULT '' CHECK (char_length(reason) <= 64),
  record_type       text NOT NULL CHECK (char_length(record_type) BETWEEN 1 AND 64),
  record_id         uuid,
  decided_at        timestamptz NOT NULL,
  FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE SET NULL (user_id),
  FOREIGN KEY (tenant_id, agreement_id, agreement_version) REFERENCES agreements (tenant_id, id, version),
  CHECK ((destination_kind = 'lms') = (destination_id IS NULL)),
  CHECK ((agreement_id IS NULL) = (agreement_version IS NULL))
);
-- Listings run newest first by (decided_at, id), the keyset of their
-- cursor; id is descending too so the index serves the order as it is.
CREATE INDEX disclosures_tenant ON disclosures (tenant_id, decided_at DESC, id DESC);
CREATE INDEX disclosures_user ON disclosures (tenant_id, user_id, decided_at DESC, id DESC);

ALTER TABLE disclosures ENABLE ROW LEVEL SECURITY;
ALTER TABLE disclosures FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON disclosures USING (tenant_id = hub_tenant_id() OR hub_cross_tenant())
  WITH CHECK (tenant_id = hub_tenant_id() OR hub_cross_tenant());

-- +goose Down
DROP TABLE disclosures;
ALTER TABLE agreements DROP CONSTRAINT agreements_tenant_id_id_version_key;
