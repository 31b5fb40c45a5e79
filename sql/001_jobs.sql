-- Background jobs: the outbox every side effect goes through.  A job is
-- written in the same transaction as the change that causes it; the job
-- runner in each nginx worker claims due rows with FOR UPDATE SKIP LOCKED.

CREATE TABLE jobs (
    id            bigserial PRIMARY KEY,
    kind          text        NOT NULL,
    payload       jsonb       NOT NULL DEFAULT '{}',
    dedupe_key    text        UNIQUE,
    run_at        timestamptz NOT NULL DEFAULT now(),
    attempts      integer     NOT NULL DEFAULT 0,
    max_attempts  integer     NOT NULL DEFAULT 10 CHECK (max_attempts > 0),
    last_error    text,
    locked_by     text,
    locked_until  timestamptz,
    dead          boolean     NOT NULL DEFAULT false,
    done_at       timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now()
);

-- what the runner scans: open jobs in due order
CREATE INDEX jobs_due ON jobs (run_at, id)
    WHERE NOT dead AND done_at IS NULL;

CREATE INDEX jobs_dead ON jobs (id) WHERE dead;
