-- +goose Up
-- Events an outsider can cause at will (refused bearer tokens) are audited
-- within a bound counted across every chain, so a flood that names many
-- tenants' keys cannot fill the audit log either. Counting across chains
-- is a cross-tenant read: one SECURITY DEFINER function that answers a
-- number only, served by an index on (action, at).
CREATE INDEX audit_log_action_at ON audit_log (action, at);

-- +goose StatementBegin
CREATE FUNCTION hub_recent_audit_count(p_action text, p_since timestamptz, p_max integer) RETURNS integer
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
  SELECT count(*)::integer FROM (
    SELECT 1 FROM public.audit_log WHERE action = p_action AND at > p_since LIMIT least(greatest(p_max, 0), 100000)
  ) recent
$$;
-- +goose StatementEnd
REVOKE EXECUTE ON FUNCTION hub_recent_audit_count(text, timestamptz, integer) FROM PUBLIC;

-- +goose Down
DROP FUNCTION hub_recent_audit_count(text, timestamptz, integer);
DROP INDEX audit_log_action_at;
