-- +goose Up
-- A tenant could list on its own registration of another institution's
-- (issuer, client_id) a deployment id that institution has not registered
-- yet, and so win that installation's logins to the shared /lti/login.
-- When registrations of more than one tenant hold a pair, the shared
-- login now routes none of them: each must use its registration's own
-- login URL.
-- Likewise a pair the operator shares routes on the shared login only by
-- the deployments the operator assigned: a tenant's own registration of
-- that pair could otherwise list an installation's deployment id first and
-- win its logins, or claim an assigned one and make it ambiguous.
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION hub_lti_route(p_id uuid, p_issuer text, p_client_id text, p_deployment_id text)
RETURNS TABLE (registration_id uuid, tenant_id uuid)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
  WITH regs AS (
    SELECT r.id, r.tenant_id, r.client_id, r.shared, r.adopt_first_deployment, r.created_at FROM public.lti_registrations r
    WHERE (p_id IS NOT NULL AND r.id = p_id)
       OR (p_id IS NULL AND r.issuer = p_issuer AND (p_client_id = '' OR r.client_id = p_client_id))
  ), candidates AS (
    SELECT r.id, r.tenant_id AS tenant, r.created_at, p_deployment_id <> '' AND (
        EXISTS (SELECT 1 FROM public.lti_deployments d WHERE d.registration_id = r.id AND d.deployment_id = p_deployment_id)
        OR (r.adopt_first_deployment AND NOT EXISTS (SELECT 1 FROM public.lti_deployments d WHERE d.registration_id = r.id))
      ) AS claims
    FROM regs r WHERE NOT r.shared
      -- A pair the operator shares routes on the shared login by the
      -- operator's assignments only: a tenant's own copy of the pair, with
      -- whatever deployment ids it lists, is reached by its own login URL.
      AND NOT (p_id IS NULL AND EXISTS (SELECT 1 FROM regs s WHERE s.shared AND s.client_id = r.client_id))
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
     -- A pair held by several tenants' own registrations is contested: a
     -- deployment id, which anyone may list on a registration of theirs,
     -- does not settle it, so the shared login picks none.
     OR (p_id IS NULL AND EXISTS (SELECT 1 FROM regs a JOIN regs b ON a.client_id = b.client_id AND a.tenant_id <> b.tenant_id
                                  WHERE NOT a.shared AND NOT b.shared))
  ORDER BY c.created_at, c.id, c.tenant LIMIT 2
$$;
-- +goose StatementEnd

-- +goose Down
-- (the function of 00012_shared_registrations.sql is restored by rolling
-- that migration back and forward)
