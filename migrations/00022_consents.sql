-- +goose Up
-- Learners' answers to their tenant's agreements, one row per answer (the
-- history is the record of consent, GDPR Art. 7(1)); the newest answer
-- for a user is their consent now. An answer names the agreement version
-- it was given for: a version that widens what is shared asks again.
CREATE TABLE consents (
  id                uuid PRIMARY KEY,
  tenant_id         uuid NOT NULL REFERENCES tenants (id),
  user_id           uuid NOT NULL,
  agreement_id      uuid NOT NULL,
  agreement_version integer NOT NULL CHECK (agreement_version > 0),
  answer            text NOT NULL CHECK (answer IN ('granted', 'declined', 'withdrawn')),
  via               text NOT NULL CHECK (via IN ('consent_page', 'api')),
  answered_at       timestamptz NOT NULL,
  FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE,
  FOREIGN KEY (tenant_id, agreement_id) REFERENCES agreements (tenant_id, id)
);
CREATE INDEX consents_user ON consents (tenant_id, user_id, answered_at DESC);

ALTER TABLE consents ENABLE ROW LEVEL SECURITY;
ALTER TABLE consents FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON consents USING (tenant_id = hub_tenant_id() OR hub_cross_tenant())
  WITH CHECK (tenant_id = hub_tenant_id() OR hub_cross_tenant());

-- A learner answering the hub's consent page acts for themselves: the
-- audit log names them (by hub user id) as the actor.
ALTER TABLE audit_log DROP CONSTRAINT audit_log_actor_type_check,
  ADD CONSTRAINT audit_log_actor_type_check CHECK (actor_type IN ('operator', 'api_key', 'system', 'anonymous', 'learner'));

-- +goose Down
ALTER TABLE audit_log DROP CONSTRAINT audit_log_actor_type_check,
  ADD CONSTRAINT audit_log_actor_type_check CHECK (actor_type IN ('operator', 'api_key', 'system', 'anonymous'));
DROP TABLE consents;
