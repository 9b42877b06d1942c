-- +goose Up
-- Tenant isolation that the application role cannot talk its way out of.
--
-- Until now any transaction could set hub.cross_tenant and see every
-- tenant's rows. Now only the schema owner sees across tenants, and the
-- application reaches that view only through the few SECURITY DEFINER
-- functions below, each doing one lookup that must happen before a tenant
-- is known. The owner is whoever owns the tenants table, read at query
-- time (an uncorrelated subquery: evaluated once per statement).
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION hub_cross_tenant() RETURNS boolean
LANGUAGE sql STABLE AS $$
  SELECT (SELECT relowner FROM pg_catalog.pg_class WHERE oid = 'public.tenants'::regclass)
       = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = current_user)
$$;
-- +goose StatementEnd

-- The operator's own audit chain (tenant_id NULL) is visible outside any
-- tenant, and only there.
DROP POLICY tenant_isolation ON audit_log;
CREATE POLICY tenant_isolation ON audit_log
  USING (tenant_id = hub_tenant_id() OR (tenant_id IS NULL AND hub_tenant_id() IS NULL) OR hub_cross_tenant())
  WITH CHECK (tenant_id = hub_tenant_id() OR (tenant_id IS NULL AND hub_tenant_id() IS NULL) OR hub_cross_tenant());

-- Foreign keys between tenant tables include the tenant, so no row can
-- point into another tenant's rows.
ALTER TABLE users ADD CONSTRAINT users_tenant_id_id_key UNIQUE (tenant_id, id);
ALTER TABLE lti_registrations ADD CONSTRAINT lti_registrations_tenant_id_id_key UNIQUE (tenant_id, id);
ALTER TABLE contexts ADD CONSTRAINT contexts_tenant_id_id_key UNIQUE (tenant_id, id);

ALTER TABLE lti_deployments DROP CONSTRAINT lti_deployments_registration_id_fkey,
  ADD CONSTRAINT lti_deployments_registration_fkey FOREIGN KEY (tenant_id, registration_id)
    REFERENCES lti_registrations (tenant_id, id) ON DELETE CASCADE;
ALTER TABLE lti_nonces DROP CONSTRAINT lti_nonces_registration_id_fkey,
  ADD CONSTRAINT lti_nonces_registration_fkey FOREIGN KEY (tenant_id, registration_id)
    REFERENCES lti_registrations (tenant_id, id) ON DELETE CASCADE;
ALTER TABLE lti_identities DROP CONSTRAINT lti_identities_user_id_fkey,
  ADD CONSTRAINT lti_identities_user_fkey FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id);
ALTER TABLE contexts DROP CONSTRAINT contexts_registration_id_fkey,
  ADD CONSTRAINT contexts_registration_fkey FOREIGN KEY (tenant_id, registration_id)
    REFERENCES lti_registrations (tenant_id, id) ON DELETE CASCADE;
ALTER TABLE resource_links DROP CONSTRAINT resource_links_registration_id_fkey,
  DROP CONSTRAINT resource_links_context_ref_fkey,
  ADD CONSTRAINT resource_links_registration_fkey FOREIGN KEY (tenant_id, registration_id)
    REFERENCES lti_registrations (tenant_id, id) ON DELETE CASCADE,
  ADD CONSTRAINT resource_links_context_fkey FOREIGN KEY (tenant_id, context_ref)
    REFERENCES contexts (tenant_id, id) ON DELETE CASCADE;
ALTER TABLE memberships DROP CONSTRAINT memberships_context_ref_fkey,
  DROP CONSTRAINT memberships_user_id_fkey,
  ADD CONSTRAINT memberships_context_fkey FOREIGN KEY (tenant_id, context_ref)
    REFERENCES contexts (tenant_id, id) ON DELETE CASCADE,
  ADD CONSTRAINT memberships_user_fkey FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id);
ALTER TABLE lti_registration_links DROP CONSTRAINT lti_registration_links_registration_id_fkey,
  ADD CONSTRAINT lti_registration_links_registration_fkey FOREIGN KEY (tenant_id, registration_id)
    REFERENCES lti_registrations (tenant_id, id) ON DELETE SET NULL (registration_id);

-- The cross-tenant lookups. Each answers ids (or the tenant directory
-- row) for one key; the caller then reads what it needs inside that
-- tenant's transaction.

-- The tenant of the API key with this visible prefix: authentication.
-- +goose StatementBegin
CREATE FUNCTION hub_api_key_tenant(p_prefix text) RETURNS uuid
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
  SELECT tenant_id FROM public.api_keys WHERE prefix = p_prefix
$$;
-- +goose StatementEnd

-- The tenant with this slug: how every /tenants/{tenant} URL is resolved.
-- +goose StatementBegin
CREATE FUNCTION hub_tenant_by_slug(p_slug text) RETURNS SETOF tenants
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
  SELECT * FROM public.tenants WHERE slug = p_slug
$$;
-- +goose StatementEnd

-- A page of the tenant directory, oldest first: the operator's listing.
-- +goose StatementBegin
CREATE FUNCTION hub_tenants_page(p_after_at timestamptz, p_after_id uuid, p_limit integer) RETURNS SETOF tenants
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
  SELECT * FROM public.tenants
  WHERE p_after_at IS NULL OR (created_at, id) > (p_after_at, p_after_id)
  ORDER BY created_at, id LIMIT least(greatest(p_limit, 0), 1001)
$$;
-- +goose StatementEnd

-- The registrations an LTI login or launch may be for: by id, by issuer
-- and client_id, or by issuer alone (two at most, to tell one from many).
-- +goose StatementBegin
CREATE FUNCTION hub_lti_route(p_id uuid, p_issuer text, p_client_id text)
RETURNS TABLE (registration_id uuid, tenant_id uuid)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
  SELECT r.id, r.tenant_id FROM public.lti_registrations r
  WHERE (p_id IS NOT NULL AND r.id = p_id)
     OR (p_id IS NULL AND r.issuer = p_issuer AND (p_client_id = '' OR r.client_id = p_client_id))
  ORDER BY r.created_at, r.id LIMIT 2
$$;
-- +goose StatementEnd

-- The tenant of a dynamic registration link, by its token's hash.
-- +goose StatementBegin
CREATE FUNCTION hub_registration_link_tenant(p_token_hash bytea) RETURNS uuid
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
  SELECT tenant_id FROM public.lti_registration_links WHERE token_hash = p_token_hash
$$;
-- +goose StatementEnd

-- Housekeeping: delete every tenant's nonces that expired before p_now.
-- +goose StatementBegin
CREATE FUNCTION hub_purge_expired_nonces(p_now timestamptz) RETURNS bigint
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
  WITH gone AS (DELETE FROM public.lti_nonces WHERE expires_at < p_now RETURNING 1)
  SELECT count(*) FROM gone
$$;
-- +goose StatementEnd

REVOKE EXECUTE ON FUNCTION hub_api_key_tenant(text), hub_tenant_by_slug(text),
  hub_tenants_page(timestamptz, uuid, integer), hub_lti_route(uuid, text, text),
  hub_registration_link_tenant(bytea), hub_purge_expired_nonces(timestamptz) FROM PUBLIC;

-- +goose Down
DROP FUNCTION hub_purge_expired_nonces(timestamptz), hub_registration_link_tenant(bytea),
  hub_lti_route(uuid, text, text), hub_tenants_page(timestamptz, uuid, integer),
  hub_tenant_by_slug(text), hub_api_key_tenant(text);
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION hub_cross_tenant() RETURNS boolean
LANGUAGE sql STABLE AS $$
  SELECT coalesce(current_setting('hub.cross_tenant', true), '') <> ''
$$;
-- +goose StatementEnd
