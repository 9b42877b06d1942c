-- +goose Up
-- Deliveries: each (result, destination) the hub is to send a record to,
-- written in the transaction that records the result, with its River job.
-- A delivery is pending until it ends: delivered (or dry_run: recorded,
-- not sent), withheld (the agreement's policy said no when it ran),
-- superseded (a newer score for the same line item and learner went
-- instead), failed (the receiver refused it for good) or dead (it kept
-- failing until its attempts ran out). Every attempt is a row of
-- delivery_attempts, with the receiver's answer.
--
-- An LMS delivery names the resource link whose gradebook column gets the
-- score; webhook and xAPI deliveries name their destination (kept when the
-- destination is deleted: the record says where it was meant to go).
ALTER TABLE resource_links ADD CONSTRAINT resource_links_tenant_id_id_key UNIQUE (tenant_id, id);
ALTER TABLE results ADD CONSTRAINT results_tenant_id_id_key UNIQUE (tenant_id, id);

CREATE TABLE deliveries (
  id                uuid PRIMARY KEY,
  tenant_id         uuid NOT NULL REFERENCES tenants (id),
  result_id         uuid,
  user_id           uuid,
  destination_kind  text NOT NULL CHECK (destination_kind IN ('lms', 'webhook', 'xapi')),
  destination_id    uuid,
  resource_link_ref uuid,
  category          text NOT NULL CHECK (category IN ('scores', 'completion', 'progress', 'time_spent', 'certificates')),
  status            text NOT NULL CHECK (status IN ('pending', 'delivered', 'dry_run', 'withheld', 'superseded', 'failed', 'dead')),
  -- Why it ended as it did: a withhold reason of the policy, or a failure code.
  reason            text CHECK (length(reason) <= 64),
  attempts          integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
  throttled         integer NOT NULL DEFAULT 0 CHECK (throttled >= 0),
  last_status       integer,
  last_error        text CHECK (length(last_error) <= 2000),
  -- When the learner did what the record says: orders the scores of one
  -- line item and learner.
  occurred_at       timestamptz NOT NULL,
  -- The AGS timestamp sent with the score: strictly increasing per line
  -- item and learner.
  score_timestamp   timestamptz,
  -- A pending delivery waiting out a backoff or a receiver's Retry-After
  -- is not tried before this time.
  not_before        timestamptz,
  -- The River job that sends it (the latest, after a redrive).
  job_id            bigint,
  created_at        timestamptz NOT NULL,
  updated_at        timestamptz NOT NULL,
  delivered_at      timestamptz,
  UNIQUE (tenant_id, id),
  FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id),
  FOREIGN KEY (tenant_id, result_id) REFERENCES results (tenant_id, id) ON DELETE SET NULL (result_id),
  FOREIGN KEY (tenant_id, resource_link_ref) REFERENCES resource_links (tenant_id, id) ON DELETE SET NULL (resource_link_ref),
  CHECK ((destination_kind = 'lms') = (destination_id IS NULL)),
  CHECK (destination_kind = 'lms' OR resource_link_ref IS NULL)
);
-- Listings run newest first by (created_at, id), the keyset of their cursor.
CREATE INDEX deliveries_tenant ON deliveries (tenant_id, created_at DESC, id DESC);
CREATE INDEX deliveries_status ON deliveries (tenant_id, status, created_at DESC, id DESC);
CREATE INDEX deliveries_user ON deliveries (tenant_id, user_id);
CREATE INDEX deliveries_result ON deliveries (tenant_id, result_id);
-- The pending deliveries of a destination, which its worker sends together.
CREATE INDEX deliveries_pending ON deliveries (tenant_id, destination_id, created_at) WHERE status = 'pending';
-- The scores of one line item and learner, for ordering and superseding.
CREATE INDEX deliveries_pair ON deliveries (tenant_id, resource_link_ref, user_id, occurred_at)
  WHERE destination_kind = 'lms';

CREATE TABLE delivery_attempts (
  tenant_id   uuid NOT NULL,
  delivery_id uuid NOT NULL,
  n           integer NOT NULL CHECK (n >= 1),
  at          timestamptz NOT NULL,
  outcome     text NOT NULL CHECK (outcome IN ('delivered', 'retry', 'throttled', 'failed', 'dry_run')),
  status      integer,
  latency_ms  double precision,
  error       text CHECK (length(error) <= 2000),
  -- The start of the receiver's answer (at most 1 KiB), for the admin.
  response    text,
  -- In a dry run, the request exactly as it would have been sent, its
  -- credentials redacted.
  request     jsonb,
  PRIMARY KEY (tenant_id, delivery_id, n),
  FOREIGN KEY (tenant_id, delivery_id) REFERENCES deliveries (tenant_id, id) ON DELETE CASCADE
);

-- The line item the hub scores a resource link's results into, when the
-- launch named none: found in the platform's container by the resource
-- link, or created by the hub (recreated once if the platform deletes it).
CREATE TABLE ags_line_items (
  tenant_id         uuid NOT NULL,
  resource_link_ref uuid NOT NULL,
  url               text NOT NULL CHECK (length(url) BETWEEN 1 AND 4096),
  created_by_hub    boolean NOT NULL,
  recreated         boolean NOT NULL DEFAULT false,
  found_at          timestamptz NOT NULL,
  PRIMARY KEY (tenant_id, resource_link_ref),
  FOREIGN KEY (tenant_id, resource_link_ref) REFERENCES resource_links (tenant_id, id) ON DELETE CASCADE
);

-- +goose StatementBegin
DO $$
DECLARE t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['deliveries', 'delivery_attempts', 'ags_line_items'] LOOP
    EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
    EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
    EXECUTE format('CREATE POLICY tenant_isolation ON %I USING (tenant_id = hub_tenant_id() OR hub_cross_tenant())
      WITH CHECK (tenant_id = hub_tenant_id() OR hub_cross_tenant())', t);
  END LOOP;
END $$;
-- +goose StatementEnd

-- +goose Down
DROP TABLE ags_line_items;
DROP TABLE delivery_attempts;
DROP TABLE deliveries;
ALTER TABLE results DROP CONSTRAINT results_tenant_id_id_key;
ALTER TABLE resource_links DROP CONSTRAINT resource_links_tenant_id_id_key;
