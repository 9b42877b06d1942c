-- +goose Up
-- The hub's own signing keys: RS256 for LTI messages and client assertions,
-- ES256 for handoff tokens to the learning app. Hub-wide, not tenant-owned.
-- Each purpose has one active key (signing), one next key (published ahead
-- so platforms cache it before it signs) and retired keys (still published
-- for an overlap period so tokens signed before a rotation verify).
CREATE TABLE tool_keys (
  kid            text PRIMARY KEY,
  purpose        text NOT NULL CHECK (purpose IN ('lti', 'handoff')),
  alg            text NOT NULL CHECK (alg IN ('RS256', 'ES256')),
  public_jwk     jsonb NOT NULL,
  private_sealed bytea NOT NULL,
  state          text NOT NULL CHECK (state IN ('next', 'active', 'retired')),
  created_at     timestamptz NOT NULL,
  activated_at   timestamptz,
  retired_at     timestamptz
);
CREATE UNIQUE INDEX tool_keys_one_active ON tool_keys (purpose) WHERE state = 'active';
CREATE UNIQUE INDEX tool_keys_one_next ON tool_keys (purpose) WHERE state = 'next';

-- +goose Down
DROP TABLE tool_keys;
