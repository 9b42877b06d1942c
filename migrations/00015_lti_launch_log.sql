-- +goose Up
-- Recent LTI launches and refusals, per tenant, so a tenant admin can look
-- up the reference an error page showed (the request id) and watch recent
-- activity. Only what a tenant can be named for is here: a refusal before
-- the registration was known belongs to no tenant and is only counted in
-- the metrics. Rows are kept for a bounded time; housekeeping purges older
-- ones in batches through hub_purge_launch_log.
CREATE TABLE lti_launch_log (
  tenant_id       uuid NOT NULL REFERENCES tenants (id),
  at              timestamptz NOT NULL,
  id              uuid NOT NULL,
  outcome         text NOT NULL CHECK (outcome IN ('launched', 'refused')),
  reason          text NOT NULL DEFAULT '' CHECK (length(reason) <= 64),
  request_id      text NOT NULL CHECK (length(request_id) <= 64),
  registration_id uuid,
  deployment_id   text CHECK (length(deployment_id) <= 255),
  context_id      text CHECK (length(context_id) <= 255),
  context_title   text CHECK (length(context_title) <= 255),
  message_type    text CHECK (length(message_type) <= 64),
  user_id         uuid,
  PRIMARY KEY (tenant_id, at, id),
  -- A registration may be shared (no tenant of its own): the log row's
  -- tenant is the launch's, so the key names the registration alone.
  CONSTRAINT lti_launch_log_registration_fkey FOREIGN KEY (registration_id)
    REFERENCES lti_registrations (id) ON DELETE SET NULL,
  CONSTRAINT lti_launch_log_user_fkey FOREIGN KEY (tenant_id, user_id)
    REFERENCES users (tenant_id, id) ON DELETE SET NULL (user_id)
);
-- A reference looked up; the purge's scan by age.
CREATE INDEX lti_launch_log_request ON lti_launch_log (tenant_id, request_id);
CREATE INDEX lti_launch_log_at ON lti_launch_log (at);

ALTER TABLE lti_launch_log ENABLE ROW LEVEL SECURITY;
ALTER TABLE lti_launch_log FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON lti_launch_log
  USING (tenant_id = hub_tenant_id() OR hub_cross_tenant())
  WITH CHECK (tenant_id = hub_tenant_id() OR hub_cross_tenant());

-- Housekeeping: delete up to p_limit rows of every tenant older than
-- p_before, oldest first, and say how many went. The caller repeats while
-- a whole batch went, so no one statement holds many locks for long.
-- +goose StatementBegin
CREATE FUNCTION hub_purge_launch_log(p_before timestamptz, p_limit integer) RETURNS bigint
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
  WITH old AS (
    SELECT tenant_id, at, id FROM public.lti_launch_log WHERE at < p_before
    ORDER BY at LIMIT least(greatest(p_limit, 0), 10000)
  ), gone AS (
    DELETE FROM public.lti_launch_log l USING old
    WHERE l.tenant_id = old.tenant_id AND l.at = old.at AND l.id = old.id RETURNING 1
  )
  SELECT count(*) FROM gone
$$;
-- +goose StatementEnd
REVOKE EXECUTE ON FUNCTION hub_purge_launch_log(timestamptz, integer) FROM PUBLIC;

-- +goose Down
DROP FUNCTION hub_purge_launch_log(timestamptz, integer);
DROP TABLE lti_launch_log;
