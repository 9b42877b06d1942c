-- +goose Up
-- Two shapes of LTI registration.
--
-- A tenant registration belongs to one tenant and is unique within it by
-- (issuer, client_id): two tenants may register the same pair, and neither
-- learns of the other. (Until now the pair was unique across the hub, so
-- the first tenant to register an institution's client_id received its
-- launches, and the 409 told anyone who held which.)
--
-- A shared registration belongs to no tenant (tenant_id NULL). The
-- operator makes it for a platform that gives every institution the same
-- client_id (Blackboard, Canvas partner keys) and assigns each of its
-- deployment ids to a tenant; a deployment belongs to one tenant.
ALTER TABLE lti_registrations
  ADD COLUMN shared boolean NOT NULL DEFAULT false,
  ALTER COLUMN tenant_id DROP NOT NULL,
  ADD CONSTRAINT lti_registrations_owner CHECK (shared = (tenant_id IS NULL)),
  ADD CONSTRAINT lti_registrations_shared_adopts_nothing CHECK (NOT (shared AND adopt_first_deployment)),
  DROP CONSTRAINT lti_registrations_issuer_client_id_key,
  ADD CONSTRAINT lti_registrations_id_shared_key UNIQUE (id, shared);
CREATE UNIQUE INDEX lti_registrations_tenant_client ON lti_registrations (tenant_id, issuer, client_id) WHERE NOT shared;
CREATE UNIQUE INDEX lti_registrations_shared_client ON lti_registrations (issuer, client_id) WHERE shared;
CREATE INDEX lti_registrations_issuer_client ON lti_registrations (issuer, client_id);

-- Every tenant reads shared registrations (its launches go through them);
-- only a transaction with no tenant set, the operator's, changes them.
CREATE POLICY shared_read ON lti_registrations FOR SELECT USING (shared);
CREATE POLICY shared_operator ON lti_registrations
  USING (shared AND hub_tenant_id() IS NULL)
  WITH CHECK (shared AND tenant_id IS NULL AND hub_tenant_id() IS NULL);

-- A deployment row always names its tenant: the registration's own, or,
-- for a shared registration, the tenant the operator assigned it to.
-- registration_tenant_id is the tenant the registration must have (none
-- for a shared one), so the foreign keys let a tenant's deployment point
-- at its own registration or at a shared one, never at another tenant's.
ALTER TABLE lti_deployments
  ADD COLUMN shared boolean NOT NULL DEFAULT false,
  ADD COLUMN registration_tenant_id uuid GENERATED ALWAYS AS (CASE WHEN shared THEN NULL ELSE tenant_id END) STORED,
  DROP CONSTRAINT lti_deployments_registration_fkey,
  ADD CONSTRAINT lti_deployments_registration_fkey FOREIGN KEY (registration_id, shared)
    REFERENCES lti_registrations (id, shared) ON DELETE CASCADE,
  ADD CONSTRAINT lti_deployments_tenant_registration_fkey FOREIGN KEY (registration_tenant_id, registration_id)
    REFERENCES lti_registrations (tenant_id, id) ON DELETE CASCADE,
  ADD CONSTRAINT lti_deployments_tenant_key UNIQUE (tenant_id, registration_id, deployment_id);

-- A launch's records belong to the tenant of its deployment: courses and
-- resource links reference the deployment with its tenant, so a launch
-- through a shared registration is recorded for the deployment's tenant
-- and no row can name a deployment of another tenant. Removing a
-- deployment removes its records; the hub asks before it does.
ALTER TABLE contexts DROP CONSTRAINT contexts_registration_fkey,
  ADD CONSTRAINT contexts_registration_fkey FOREIGN KEY (registration_id)
    REFERENCES lti_registrations (id) ON DELETE CASCADE,
  ADD CONSTRAINT contexts_deployment_fkey FOREIGN KEY (tenant_id, registration_id, deployment_id)
    REFERENCES lti_deployments (tenant_id, registration_id, deployment_id) ON DELETE CASCADE NOT VALID;
ALTER TABLE resource_links DROP CONSTRAINT resource_links_registration_fkey,
  ADD CONSTRAINT resource_links_registration_fkey FOREIGN KEY (registration_id)
    REFERENCES lti_registrations (id) ON DELETE CASCADE,
  ADD CONSTRAINT resource_links_deployment_fkey FOREIGN KEY (tenant_id, registration_id, deployment_id)
    REFERENCES lti_deployments (tenant_id, registration_id, deployment_id) ON DELETE CASCADE NOT VALID;
-- Records of deployments removed before this migration stay (they were
-- kept then); where there are none the constraints are validated.
-- +goose StatementBegin
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM contexts c WHERE NOT EXISTS (SELECT 1 FROM lti_deployments d
      WHERE d.tenant_id = c.tenant_id AND d.registration_id = c.registration_id AND d.deployment_id = c.deployment_id)) THEN
    ALTER TABLE contexts VALIDATE CONSTRAINT contexts_deployment_fkey;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM resource_links l WHERE NOT EXISTS (SELECT 1 FROM lti_deployments d
      WHERE d.tenant_id = l.tenant_id AND d.registration_id = l.registration_id AND d.deployment_id = l.deployment_id)) THEN
    ALTER TABLE resource_links VALIDATE CONSTRAINT resource_links_deployment_fkey;
  END IF;
END $$;
-- +goose StatementEnd

-- A nonce holds nothing of anyone's and names no deployment; it references
-- its registration only, which may be shared.
ALTER TABLE lti_nonces DROP CONSTRAINT lti_nonces_registration_fkey,
  ADD CONSTRAINT lti_nonces_registration_fkey FOREIGN KEY (registration_id)
    REFERENCES lti_registrations (id) ON DELETE CASCADE;

-- A tenant admin may revoke a registration link before it is used.
ALTER TABLE lti_registration_links ADD COLUMN revoked_at timestamptz;
CREATE INDEX lti_registration_links_tenant ON lti_registration_links (tenant_id, created_at, id);

-- The registrations, with their tenants, an LTI login or launch may be for:
-- by id (a registration's own login URL), or by issuer and client_id
-- (client_id '' for a platform that omits it), and the login's deployment
-- id ('' when it has none). Two rows at most, to tell one from several.
--
-- A tenant registration routes to its tenant. A shared registration routes
-- to the tenant of each matching deployment, or, with none, to no tenant
-- (NULL: the deployment is unknown). Given a deployment id, the candidates
-- that claim it (have it, or are waiting to adopt their first deployment)
-- win over those that do not; two claimants are ambiguous, and the login
-- must not pick one.
-- +goose StatementBegin
DROP FUNCTION hub_lti_route(uuid, text, text);
CREATE FUNCTION hub_lti_route(p_id uuid, p_issuer text, p_client_id text, p_deployment_id text)
RETURNS TABLE (registration_id uuid, tenant_id uuid)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
  WITH regs AS (
    SELECT r.id, r.tenant_id, r.shared, r.adopt_first_deployment, r.created_at FROM public.lti_registrations r
    WHERE (p_id IS NOT NULL AND r.id = p_id)
       OR (p_id IS NULL AND r.issuer = p_issuer AND (p_client_id = '' OR r.client_id = p_client_id))
  ), candidates AS (
    SELECT r.id, r.tenant_id AS tenant, r.created_at, p_deployment_id <> '' AND (
        EXISTS (SELECT 1 FROM public.lti_deployments d WHERE d.registration_id = r.id AND d.deployment_id = p_deployment_id)
        OR (r.adopt_first_deployment AND NOT EXISTS (SELECT 1 FROM public.lti_deployments d WHERE d.registration_id = r.id))
      ) AS claims
    FROM regs r WHERE NOT r.shared
    UNION ALL
    SELECT r.id, d.tenant_id, r.created_at, p_deployment_id <> ''
    FROM regs r CROSS JOIN LATERAL (SELECT DISTINCT d.tenant_id FROM public.lti_deployments d
      WHERE d.registration_id = r.id AND (p_deployment_id = '' OR d.deployment_id = p_deployment_id) LIMIT 2) d
    WHERE r.shared
    UNION ALL
    SELECT r.id, NULL, r.created_at, false FROM regs r
    WHERE r.shared AND NOT EXISTS (SELECT 1 FROM public.lti_deployments d
      WHERE d.registration_id = r.id AND (p_deployment_id = '' OR d.deployment_id = p_deployment_id))
  )
  SELECT c.id, c.tenant FROM candidates c
  WHERE c.claims OR NOT EXISTS (SELECT 1 FROM candidates k WHERE k.claims)
  ORDER BY c.created_at, c.id, c.tenant LIMIT 2
$$;
-- +goose StatementEnd

-- The deployments of a shared registration with the tenants they are
-- assigned to: the operator's view. Nothing for a tenant registration.
-- +goose StatementBegin
CREATE FUNCTION hub_shared_deployments(p_registration uuid)
RETURNS TABLE (deployment_id text, tenant_id uuid, tenant_slug text, created_at timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
  SELECT d.deployment_id, d.tenant_id, t.slug, d.created_at
  FROM public.lti_deployments d JOIN public.tenants t ON t.id = d.tenant_id
  WHERE d.registration_id = p_registration AND d.shared
  ORDER BY d.created_at, d.deployment_id
$$;
-- +goose StatementEnd

-- Whether any tenant holds launch records (courses, resource links) made
-- through a shared registration: deleting it asks first.
-- +goose StatementBegin
CREATE FUNCTION hub_shared_registration_in_use(p_registration uuid) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
  SELECT EXISTS (SELECT 1 FROM public.lti_registrations r WHERE r.id = p_registration AND r.shared AND (
    EXISTS (SELECT 1 FROM public.contexts c WHERE c.registration_id = r.id)
    OR EXISTS (SELECT 1 FROM public.resource_links l WHERE l.registration_id = r.id)))
$$;
-- +goose StatementEnd

REVOKE EXECUTE ON FUNCTION hub_lti_route(uuid, text, text, text), hub_shared_deployments(uuid),
  hub_shared_registration_in_use(uuid) FROM PUBLIC;

-- +goose Down
DROP FUNCTION hub_shared_registration_in_use(uuid), hub_shared_deployments(uuid), hub_lti_route(uuid, text, text, text);
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
REVOKE EXECUTE ON FUNCTION hub_lti_route(uuid, text, text) FROM PUBLIC;
DROP INDEX lti_registration_links_tenant;
ALTER TABLE lti_registration_links DROP COLUMN revoked_at;
ALTER TABLE lti_nonces DROP CONSTRAINT lti_nonces_registration_fkey,
  ADD CONSTRAINT lti_nonces_registration_fkey FOREIGN KEY (tenant_id, registration_id)
    REFERENCES lti_registrations (tenant_id, id) ON DELETE CASCADE;
ALTER TABLE resource_links DROP CONSTRAINT resource_links_deployment_fkey, DROP CONSTRAINT resource_links_registration_fkey,
  ADD CONSTRAINT resource_links_registration_fkey FOREIGN KEY (tenant_id, registration_id)
    REFERENCES lti_registrations (tenant_id, id) ON DELETE CASCADE;
ALTER TABLE contexts DROP CONSTRAINT contexts_deployment_fkey, DROP CONSTRAINT contexts_registration_fkey,
  ADD CONSTRAINT contexts_registration_fkey FOREIGN KEY (tenant_id, registration_id)
    REFERENCES lti_registrations (tenant_id, id) ON DELETE CASCADE;
-- Shared registrations cannot be expressed without this migration.
DELETE FROM lti_registrations WHERE shared;
ALTER TABLE lti_deployments DROP CONSTRAINT lti_deployments_tenant_key,
  DROP CONSTRAINT lti_deployments_tenant_registration_fkey, DROP CONSTRAINT lti_deployments_registration_fkey,
  DROP COLUMN registration_tenant_id, DROP COLUMN shared,
  ADD CONSTRAINT lti_deployments_registration_fkey FOREIGN KEY (tenant_id, registration_id)
    REFERENCES lti_registrations (tenant_id, id) ON DELETE CASCADE;
DROP POLICY shared_operator ON lti_registrations;
DROP POLICY shared_read ON lti_registrations;
DROP INDEX lti_registrations_issuer_client, lti_registrations_shared_client, lti_registrations_tenant_client;
ALTER TABLE lti_registrations DROP CONSTRAINT lti_registrations_id_shared_key,
  ADD CONSTRAINT lti_registrations_issuer_client_id_key UNIQUE (issuer, client_id),
  DROP CONSTRAINT lti_registrations_shared_adopts_nothing, DROP CONSTRAINT lti_registrations_owner,
  ALTER COLUMN tenant_id SET NOT NULL, DROP COLUMN shared;
