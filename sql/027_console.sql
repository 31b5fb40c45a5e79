-- The console (issue 15): accounts with roles, server-side sessions, API
-- keys, the audit log of admin actions, login lockout, password resets.
--
-- Secrets are never stored: a session id, an API key's secret and a reset
-- token are kept as the hex SHA-256 the C side computes; passwords as
-- scrypt hashes.  The functions are in sql/functions/console.sql.

CREATE TABLE console_accounts (
    id             bigserial PRIMARY KEY,
    email          text        NOT NULL
                   CHECK (email ~ '^[^@\s]+@[^@\s]+$' AND length(email) <= 254),
    name           text        NOT NULL DEFAULT ''
                   CHECK (length(name) <= 200),
    role           text        NOT NULL CHECK (role IN ('owner', 'staff')),
    password_hash  text        NOT NULL CHECK (password_hash ~ '^scrypt\$'),
    disabled       boolean     NOT NULL DEFAULT false,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);

CREATE UNIQUE INDEX console_accounts_email ON console_accounts (lower(email));

CREATE TABLE console_sessions (
    id             bigserial PRIMARY KEY,
    account_id     bigint      NOT NULL REFERENCES console_accounts
                               ON DELETE CASCADE,
    token_hash     text        NOT NULL UNIQUE
                   CHECK (token_hash ~ '^[0-9a-f]{64}$'),
    csrf           text        NOT NULL,
    ip             text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    last_seen_at   timestamptz NOT NULL DEFAULT now(),
    ended_at       timestamptz
);

CREATE INDEX console_sessions_account ON console_sessions (account_id)
    WHERE ended_at IS NULL;

CREATE TABLE console_api_keys (
    id             bigserial PRIMARY KEY,
    name           text        NOT NULL
                   CHECK (length(name) BETWEEN 1 AND 100),
    scopes         text[]      NOT NULL
                   CHECK (scopes <@ ARRAY['read', 'write', 'refunds']
                          AND cardinality(scopes) > 0),
    secret_hash    text        NOT NULL
                   CHECK (secret_hash ~ '^[0-9a-f]{64}$'),
    created_by     bigint      REFERENCES console_accounts ON DELETE SET NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    last_used_at   timestamptz,
    revoked_at     timestamptz
);

CREATE TABLE console_audit (
    id             bigserial PRIMARY KEY,
    at             timestamptz NOT NULL DEFAULT now(),
    account_id     bigint      REFERENCES console_accounts ON DELETE SET NULL,
    key_id         bigint      REFERENCES console_api_keys ON DELETE SET NULL,
    actor          text        NOT NULL,   -- email, "key:<name>", "token"
    method         text        NOT NULL,
    path           text        NOT NULL,
    ip             text,
    status         integer
);

CREATE INDEX console_audit_at ON console_audit (at);
CREATE INDEX console_audit_account ON console_audit (account_id, at);

-- failed logins by address (lower-cased), whether an account has it or not
CREATE TABLE console_login_failures (
    email          text        PRIMARY KEY,
    failures       integer     NOT NULL DEFAULT 0,
    first_at       timestamptz NOT NULL DEFAULT now(),
    locked_until   timestamptz
);

CREATE TABLE console_password_resets (
    id             bigserial PRIMARY KEY,
    account_id     bigint      NOT NULL REFERENCES console_accounts
                               ON DELETE CASCADE,
    token_hash     text        NOT NULL UNIQUE
                   CHECK (token_hash ~ '^[0-9a-f]{64}$'),
    created_at     timestamptz NOT NULL DEFAULT now(),
    expires_at     timestamptz NOT NULL,
    used_at        timestamptz
);
