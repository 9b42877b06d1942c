-- +goose Up
-- Roster sync from the LMS (LTI NRPS 2.0). A member the platform lists may
-- never have launched: their identity has no last launch yet, and the
-- launch that comes later finds the same identity and user.
ALTER TABLE lti_identities ALTER COLUMN last_launch_at DROP NOT NULL,
  ADD COLUMN lis_person_sourcedid text CHECK (length(lis_person_sourcedid) <= 255),
  ADD COLUMN lti11_legacy_user_id text CHECK (length(lti11_legacy_user_id) <= 255),
  ADD COLUMN picture              text CHECK (length(picture) <= 2048),
  ADD COLUMN synced_at            timestamptz;

-- status: the platform's (active, inactive, deleted) or removed, a member a
-- full sync no longer found. Members are never deleted by a sync, so their
-- history stays. launched_at and synced_at say which source is newer: a
-- page fetched before a member's last launch does not overwrite it.
-- synced_run is the full sync that last listed the member.
ALTER TABLE memberships
  ADD COLUMN status      text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'inactive', 'deleted', 'removed')),
  ADD COLUMN launched_at timestamptz,
  ADD COLUMN synced_at   timestamptz,
  ADD COLUMN synced_run  uuid;
UPDATE memberships SET launched_at = updated_at WHERE source = 'launch';

-- A course's roster state: the platform's differences link from the last
-- sync, when it finished, when the schedule next syncs it, and whether the
-- platform no longer knows it (404: not scheduled until the next launch).
ALTER TABLE contexts
  ADD COLUMN roster_differences_url text CHECK (length(roster_differences_url) <= 4096),
  ADD COLUMN roster_synced_at       timestamptz,
  ADD COLUMN roster_next_sync_at    timestamptz,
  ADD COLUMN roster_gone_at         timestamptz;
CREATE INDEX contexts_roster_due ON contexts (roster_next_sync_at)
  WHERE nrps_url IS NOT NULL AND roster_gone_at IS NULL;
-- Courses launched before roster sync existed: synced on the schedule,
-- spread over its first six hours.
UPDATE contexts SET roster_next_sync_at = now() + random() * interval '6 hours' WHERE nrps_url IS NOT NULL;

-- A tenant's sync schedule; no row is the default (every 6 hours). A
-- schedule turned off keeps its interval for when it is turned on again.
CREATE TABLE roster_schedules (
  tenant_id        uuid PRIMARY KEY REFERENCES tenants (id),
  enabled          boolean NOT NULL,
  interval_minutes integer NOT NULL CHECK (interval_minutes BETWEEN 15 AND 10080),
  updated_at       timestamptz NOT NULL
);

-- Each sync of a course, with its progress. next_url is the page to fetch
-- next: a run interrupted by a crash resumes there. At most one run of a
-- course is queued or running: a second request joins it.
CREATE TABLE roster_syncs (
  id            uuid PRIMARY KEY,
  tenant_id     uuid NOT NULL REFERENCES tenants (id),
  context_ref   uuid NOT NULL,
  trigger       text NOT NULL CHECK (trigger IN ('launch', 'schedule', 'request', 'command')),
  mode          text NOT NULL DEFAULT 'full' CHECK (mode IN ('full', 'differences')),
  status        text NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed')),
  requested_at  timestamptz NOT NULL,
  started_at    timestamptz,
  finished_at   timestamptz,
  progressed_at timestamptz,
  pages         integer NOT NULL DEFAULT 0,
  members       integer NOT NULL DEFAULT 0,
  added         integer NOT NULL DEFAULT 0,
  changed       integer NOT NULL DEFAULT 0,
  removed       integer NOT NULL DEFAULT 0,
  next_url      text CHECK (length(next_url) <= 4096),
  lease_owner   text CHECK (length(lease_owner) <= 64),
  error_code    text CHECK (length(error_code) <= 64),
  error         text CHECK (length(error) <= 1024),
  FOREIGN KEY (tenant_id, context_ref) REFERENCES contexts (tenant_id, id) ON DELETE CASCADE
);
CREATE UNIQUE INDEX roster_syncs_one_active ON roster_syncs (context_ref) WHERE status IN ('queued', 'running');
CREATE INDEX roster_syncs_tenant ON roster_syncs (tenant_id, requested_at DESC, id);
CREATE INDEX roster_syncs_context ON roster_syncs (tenant_id, context_ref, requested_at DESC);

-- +goose StatementBegin
DO $$
DECLARE t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['roster_schedules', 'roster_syncs'] LOOP
    EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
    EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
    EXECUTE format('CREATE POLICY tenant_isolation ON %I USING (tenant_id = hub_tenant_id() OR hub_cross_tenant())
                    WITH CHECK (tenant_id = hub_tenant_id() OR hub_cross_tenant())', t);
  END LOOP;
END $$;
-- +goose StatementEnd

-- The schedule's one cross-tenant read: courses of active tenants whose
-- next sync is due, ids only, at most 1,000 a call.
-- +goose StatementBegin
CREATE FUNCTION hub_roster_due(p_now timestamptz, p_limit integer)
RETURNS TABLE (tenant_id uuid, context_ref uuid)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
  SELECT c.tenant_id, c.id FROM public.contexts c
  JOIN public.tenants t ON t.id = c.tenant_id AND t.status = 'active'
  LEFT JOIN public.roster_schedules s ON s.tenant_id = c.tenant_id
  WHERE c.nrps_url IS NOT NULL AND c.roster_gone_at IS NULL
    AND c.roster_next_sync_at <= p_now
    AND (s.tenant_id IS NULL OR s.enabled)
  ORDER BY c.roster_next_sync_at
  LIMIT least(greatest(p_limit, 0), 1000)
$$;
-- +goose StatementEnd
REVOKE EXECUTE ON FUNCTION hub_roster_due(timestamptz, integer) FROM PUBLIC;

-- +goose Down
DROP FUNCTION hub_roster_due(timestamptz, integer);
DROP TABLE roster_syncs, roster_schedules;
DROP INDEX contexts_roster_due;
ALTER TABLE contexts DROP COLUMN roster_differences_url, DROP COLUMN roster_synced_at,
  DROP COLUMN roster_next_sync_at, DROP COLUMN roster_gone_at;
ALTER TABLE memberships DROP COLUMN status, DROP COLUMN launched_at, DROP COLUMN synced_at, DROP COLUMN synced_run;
ALTER TABLE lti_identities DROP COLUMN lis_person_sourcedid, DROP COLUMN lti11_legacy_user_id, DROP COLUMN picture,
  DROP COLUMN synced_at;
