-- +goose Up
-- The launch path's lookups run as prepared statements, whose generic plan
-- picks an index without the parameters' values. With an index on users
-- (tenant_id) alone, and none on contexts that starts with the tenant and
-- holds the course's key, it picked those and read every user or course of
-- the tenant on each launch. users (tenant_id, id) already serves queries by
-- tenant; contexts get an index with all four columns a launch names.
DROP INDEX users_tenant;
CREATE INDEX contexts_tenant_course ON contexts (tenant_id, registration_id, deployment_id, context_id);

-- +goose Down
DROP INDEX contexts_tenant_course;
CREATE INDEX users_tenant ON users (tenant_id);
