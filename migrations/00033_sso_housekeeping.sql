-- +goose Up
-- The sign-in's housekeeping, across tenants (the hub's own, like
-- hub_purge_expired_nonces): sign-ins abandoned at the provider and
-- logout token ids past their lifetime go once expired; sessions go
-- p_keep after they ended or expired (a tenant admin sees recent ones,
-- ended, in the sessions listing; the audit log keeps the sign-ins).
-- p_now is capped at the database's clock so a caller cannot purge early.
-- +goose StatementBegin
CREATE FUNCTION hub_purge_sso(p_now timestamptz, p_keep interval) RETURNS bigint
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
  WITH sign_ins AS (DELETE FROM public.sso_sign_ins WHERE expires_at < least(p_now, now()) RETURNING 1),
  logout_tokens AS (DELETE FROM public.sso_logout_tokens WHERE expires_at < least(p_now, now()) RETURNING 1),
  sessions AS (
    DELETE FROM public.sso_sessions
    WHERE coalesce(ended_at, least(expires_at, idle_expires_at)) < least(p_now, now()) - greatest(p_keep, interval '1 hour')
    RETURNING 1)
  SELECT (SELECT count(*) FROM sign_ins) + (SELECT count(*) FROM logout_tokens) + (SELECT count(*) FROM sessions)
$$;
-- +goose StatementEnd
REVOKE EXECUTE ON FUNCTION hub_purge_sso(timestamptz, interval) FROM PUBLIC;
CREATE INDEX sso_sessions_gone ON sso_sessions ((coalesce(ended_at, least(expires_at, idle_expires_at))));
CREATE INDEX sso_logout_tokens_expiry ON sso_logout_tokens (expires_at);

-- +goose Down
DROP INDEX sso_logout_tokens_expiry, sso_sessions_gone;
DROP FUNCTION hub_purge_sso(timestamptz, interval);
