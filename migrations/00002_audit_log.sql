-- +goose Up
-- Append-only, hash-chained record of admin mutations and security events.
-- One chain per tenant; events that belong to no tenant (an unknown bearer
-- token, say) form the operator's chain, tenant_id NULL.
CREATE TABLE audit_log (
  id          uuid PRIMARY KEY,
  tenant_id   uuid REFERENCES tenants (id),
  seq         bigint NOT NULL CHECK (seq > 0),
  at          timestamptz NOT NULL,
  actor_type  text NOT NULL CHECK (actor_type IN ('operator', 'api_key', 'system', 'anonymous')),
  actor_id    text NOT NULL,
  action      text NOT NULL,
  target_type text NOT NULL,
  target_id   text NOT NULL,
  request_id  text NOT NULL,
  details     jsonb NOT NULL DEFAULT '{}',
  prev_hash   bytea NOT NULL,
  hash        bytea NOT NULL
);
CREATE UNIQUE INDEX audit_log_tenant_seq ON audit_log (tenant_id, seq) WHERE tenant_id IS NOT NULL;
CREATE UNIQUE INDEX audit_log_operator_seq ON audit_log (seq) WHERE tenant_id IS NULL;
CREATE INDEX audit_log_tenant_action ON audit_log (tenant_id, action, at);

ALTER TABLE audit_log ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_log FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON audit_log
  USING (tenant_id = hub_tenant_id() OR hub_cross_tenant())
  WITH CHECK (tenant_id = hub_tenant_id() OR hub_cross_tenant());

-- The application only ever appends. A superuser can still alter a row by
-- hand (and the chain verification will name it); nobody else can.
-- +goose StatementBegin
CREATE FUNCTION audit_log_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
    RETURN COALESCE(NEW, OLD);
  END IF;
  RAISE EXCEPTION 'audit_log is append-only' USING ERRCODE = 'insufficient_privilege';
END
$$;
-- +goose StatementEnd
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
  FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
  FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();

-- +goose Down
DROP TABLE audit_log;
DROP FUNCTION audit_log_append_only();
