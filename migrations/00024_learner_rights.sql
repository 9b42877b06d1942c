-- +goose Up
-- Learners' rights: export, correction and erasure.
--
-- An erased user keeps their row (so foreign keys and counts hold) with
-- nothing identifying in it: the names, email and locale are NULL and
-- erased_at says when. The erasure deletes the platform identities, so a
-- later launch by the same person finds no identity and makes a new user.
ALTER TABLE users ADD COLUMN erased_at timestamptz;

-- Corrections a tenant admin made to a learner's name or email: which
-- field, when and by whom, never the value (the value lives in users only,
-- and goes with it). The export reads them to say where a value came from.
CREATE TABLE learner_corrections (
  id           uuid PRIMARY KEY,
  tenant_id    uuid NOT NULL REFERENCES tenants (id),
  user_id      uuid NOT NULL,
  field        text NOT NULL CHECK (field IN ('name', 'given_name', 'family_name', 'email')),
  value_set_at timestamptz NOT NULL,
  by_actor     text NOT NULL CHECK (length(by_actor) BETWEEN 1 AND 128),
  FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX learner_corrections_user ON learner_corrections (tenant_id, user_id, field, value_set_at DESC);
ALTER TABLE learner_corrections ENABLE ROW LEVEL SECURITY;
ALTER TABLE learner_corrections FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON learner_corrections USING (tenant_id = hub_tenant_id() OR hub_cross_tenant())
  WITH CHECK (tenant_id = hub_tenant_id() OR hub_cross_tenant());

-- The learner's rows are found by user id: the export and the erasure read
-- the launch log and the identities that way.
CREATE INDEX lti_launch_log_user ON lti_launch_log (tenant_id, user_id) WHERE user_id IS NOT NULL;
CREATE INDEX lti_identities_user ON lti_identities (tenant_id, user_id);
CREATE INDEX memberships_user ON memberships (tenant_id, user_id);

-- A launch or a roster page that read the learner before their erasure
-- committed may write afterwards. An erased row stays blank whoever
-- updates it, and an identity or membership naming an erased user is
-- refused when its transaction commits (deferred: by then a writer that
-- waited for the erasure's lock on the user row sees it committed).
-- +goose StatementBegin
CREATE FUNCTION hub_users_stay_erased() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF OLD.erased_at IS NOT NULL THEN
    NEW.name := NULL; NEW.given_name := NULL; NEW.family_name := NULL; NEW.email := NULL; NEW.locale := NULL;
    NEW.erased_at := OLD.erased_at;
  END IF;
  RETURN NEW;
END
$$;
-- +goose StatementEnd
CREATE TRIGGER users_stay_erased BEFORE UPDATE ON users FOR EACH ROW EXECUTE FUNCTION hub_users_stay_erased();

-- +goose StatementBegin
CREATE FUNCTION hub_refuse_erased_user() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM public.users WHERE tenant_id = NEW.tenant_id AND id = NEW.user_id AND erased_at IS NOT NULL) THEN
    RAISE EXCEPTION 'user % was erased', NEW.user_id USING ERRCODE = 'serialization_failure';
  END IF;
  RETURN NULL;
END
$$;
-- +goose StatementEnd
CREATE CONSTRAINT TRIGGER lti_identities_not_erased AFTER INSERT OR UPDATE OF user_id ON lti_identities
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION hub_refuse_erased_user();
CREATE CONSTRAINT TRIGGER memberships_not_erased AFTER INSERT ON memberships
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION hub_refuse_erased_user();

-- +goose Down
DROP TRIGGER memberships_not_erased ON memberships;
DROP TRIGGER lti_identities_not_erased ON lti_identities;
DROP FUNCTION hub_refuse_erased_user();
DROP TRIGGER users_stay_erased ON users;
DROP FUNCTION hub_users_stay_erased();
DROP INDEX memberships_user, lti_identities_user, lti_launch_log_user;
DROP TABLE learner_corrections;
ALTER TABLE users DROP COLUMN erased_at;
