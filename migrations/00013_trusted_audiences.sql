-- +goose Up
-- Audiences besides the hub's client_id that a registration's id_tokens may
-- name in aud (Security Framework §5.1.3: a token naming an audience the
-- tool does not trust is refused). Empty for most platforms.
ALTER TABLE lti_registrations ADD COLUMN trusted_audiences text[] NOT NULL DEFAULT '{}'
	CHECK (cardinality(trusted_audiences) <= 10);

-- +goose Down
ALTER TABLE lti_registrations DROP COLUMN trusted_audiences;
