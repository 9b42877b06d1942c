-- +goose Up
-- The learning app's credentials: app keys, issued by the operator (the
-- app serves every tenant), shown once and stored as a SHA-256 hash.
CREATE TABLE app_keys (
  id           uuid PRIMARY KEY,
  name         text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
  prefix       text NOT NULL UNIQUE,
  token_hash   bytea NOT NULL UNIQUE,
  created_at   timestamptz NOT NULL,
  revoked_at   timestamptz,
  last_used_at timestamptz
);

-- Results the learning app reports: a learner's score, progress and
-- completion of an activity, as AGS 2.0 describes a score (activity and
-- grading progress use its enumerations). A result names the catalog
-- activity, the LMS resource link it was launched from, or both.
-- Idempotency-Key: a key is the app key's within a tenant; the request's
-- hash tells a repeat from a different request under the same key.
CREATE TABLE results (
  id                 uuid PRIMARY KEY,
  tenant_id          uuid NOT NULL REFERENCES tenants (id),
  user_id            uuid NOT NULL,
  activity_id        text,
  resource_link_id   text CHECK (length(resource_link_id) BETWEEN 1 AND 255),
  score_given        double precision CHECK (score_given >= 0),
  score_maximum      double precision CHECK (score_maximum > 0),
  activity_progress  text NOT NULL CHECK (activity_progress IN ('Initialized', 'Started', 'InProgress', 'Submitted', 'Completed')),
  grading_progress   text NOT NULL CHECK (grading_progress IN ('FullyGraded', 'Pending', 'PendingManual', 'Failed', 'NotReady')),
  completed          boolean,
  success            boolean,
  time_spent_seconds bigint CHECK (time_spent_seconds >= 0),
  comment            text CHECK (length(comment) <= 4000),
  occurred_at        timestamptz NOT NULL,
  received_at        timestamptz NOT NULL,
  app_key_id         uuid NOT NULL REFERENCES app_keys (id),
  idempotency_key    text CHECK (length(idempotency_key) BETWEEN 1 AND 255),
  request_hash       bytea NOT NULL,
  FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE,
  CHECK (activity_id IS NOT NULL OR resource_link_id IS NOT NULL),
  CHECK (score_given IS NULL OR score_maximum IS NOT NULL)
);
CREATE UNIQUE INDEX results_idempotency ON results (tenant_id, app_key_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX results_user ON results (tenant_id, user_id, occurred_at);

ALTER TABLE results ENABLE ROW LEVEL SECURITY;
ALTER TABLE results FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON results USING (tenant_id = hub_tenant_id() OR hub_cross_tenant())
  WITH CHECK (tenant_id = hub_tenant_id() OR hub_cross_tenant());

-- A result the app reports while the learner is being erased waits for
-- the erasure's lock on the user row, then finds the row still there
-- (blank): refused when its transaction commits, as identities and
-- memberships are (migration 00024), so nothing about the learner is
-- written after their erasure.
CREATE CONSTRAINT TRIGGER results_not_erased AFTER INSERT ON results
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION hub_refuse_erased_user();

-- The tenant of a hub user, for a result the app reports about them (an
-- erased user has none: nothing more is taken about them).
-- +goose StatementBegin
CREATE FUNCTION hub_user_tenant(p_user uuid) RETURNS uuid
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
  SELECT tenant_id FROM public.users WHERE id = p_user AND erased_at IS NULL
$$;
-- +goose StatementEnd
REVOKE EXECUTE ON FUNCTION hub_user_tenant(uuid) FROM PUBLIC;

-- +goose Down
DROP FUNCTION hub_user_tenant(uuid);
DROP TRIGGER results_not_erased ON results;
DROP TABLE results;
DROP TABLE app_keys;
