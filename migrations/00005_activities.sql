-- +goose Up
-- The hub's activity catalog, managed by the operator: what instructors
-- pick from when deep linking. Hub-wide, not tenant-owned.
CREATE TABLE activities (
  id          text PRIMARY KEY CHECK (id ~ '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$'),
  title       text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
  description text NOT NULL DEFAULT '',
  gradable    boolean NOT NULL DEFAULT false,
  max_score   numeric CHECK (max_score IS NULL OR max_score > 0),
  created_at  timestamptz NOT NULL,
  CHECK (NOT gradable OR max_score IS NOT NULL)
);

-- +goose Down
DROP TABLE activities;
