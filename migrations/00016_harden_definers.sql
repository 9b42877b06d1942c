-- +goose Up
-- The cross-tenant lookups answer only what they exist for, whatever the
-- caller passes:
-- purging nonces never deletes one that has not expired by the server's
-- own clock, and counting recent audit entries counts refused tokens only,
-- never entries stamped in the future (which would hold a bound shut).
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION hub_purge_expired_nonces(p_now timestamptz) RETURNS bigint
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
  WITH gone AS (DELETE FROM public.lti_nonces WHERE expires_at < least(p_now, now()) RETURNING 1)
  SELECT count(*) FROM gone
$$;
-- +goose StatementEnd
DROP FUNCTION hub_recent_audit_count(text, timestamptz, integer);
-- +goose StatementBegin
CREATE FUNCTION hub_recent_refusal_count(p_since timestamptz, p_max integer) RETURNS integer
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
  SELECT count(*)::integer FROM (
    SELECT 1 FROM public.audit_log
    WHERE action = 'auth.failed' AND at > p_since AND at <= now() + interval '1 minute'
    LIMIT least(greatest(p_max, 0), 100000)
  ) recent
$$;
-- +goose StatementEnd
REVOKE EXECUTE ON FUNCTION hub_recent_refusal_count(timestamptz, integer) FROM PUBLIC;

-- The append-only trigger reads the catalog by its qualified name, so a
-- temporary table called pg_roles cannot answer for it.
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN
  IF (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) THEN
    RETURN COALESCE(NEW, OLD);
  END IF;
  RAISE EXCEPTION 'audit_log is append-only' USING ERRCODE = 'insufficient_privilege';
END
$$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION hub_recent_refusal_count(timestamptz, integer);
-- +goose StatementBegin
CREATE FUNCTION hub_recent_audit_count(p_action text, p_since timestamptz, p_max integer) RETURNS integer
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
  SELECT count(*)::integer FROM (
    SELECT 1 FROM public.audit_log WHERE action = p_action AND at > p_since LIMIT least(greatest(p_max, 0), 100000)
  ) recent
$$;
-- +goose StatementEnd
