-- +goose Up
-- Canvas's dynamic registration answers without a deployment id: the first
-- validly signed launch names it. Such a registration adopts that first
-- deployment once; any later one must be added over REST.
ALTER TABLE lti_registrations ADD COLUMN adopt_first_deployment boolean NOT NULL DEFAULT false;

-- +goose Down
ALTER TABLE lti_registrations DROP COLUMN adopt_first_deployment;
