-- +goose Up
-- hub_cross_tenant() sits in every row-level security policy, so every
-- statement on a tenant table evaluates it. Reading the owner from the
-- catalog there cost two catalog lookups per table per statement; the
-- owner's name is now fixed in the function when migrations run (as that
-- owner), so the check is one comparison. Renaming the owner role makes
-- the check fail closed (the cross-tenant lookups then see nothing) until
-- migrations create the function anew.
-- +goose StatementBegin
DO $$
BEGIN
  EXECUTE format($f$
    CREATE OR REPLACE FUNCTION hub_cross_tenant() RETURNS boolean
    LANGUAGE sql STABLE AS $b$ SELECT current_user = %L::name $b$
  $f$, current_user);
END $$;
-- +goose StatementEnd

-- +goose Down
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION hub_cross_tenant() RETURNS boolean
LANGUAGE sql STABLE AS $$
  SELECT (SELECT relowner FROM pg_catalog.pg_class WHERE oid = 'public.tenants'::regclass)
       = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = current_user)
$$;
-- +goose StatementEnd
