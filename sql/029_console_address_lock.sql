-- 029: the console's login lockout per client address (issue 15).  The
-- lock per email (console_login_failures) stops guessing one account's
-- password; this one stops spraying passwords over many emails from one
-- address.  Same shape: failures counted in a window, the one that
-- reaches the limit locks the address for every email.

CREATE TABLE console_login_addresses (
    ip             text        PRIMARY KEY,
    failures       integer     NOT NULL DEFAULT 0,
    first_at       timestamptz NOT NULL DEFAULT now(),
    locked_until   timestamptz
);

-- console_login_begin() gains the client's address (a default NULL: no
-- address lock); the old one-argument function would make calls ambiguous
DROP FUNCTION IF EXISTS console_login_begin(text);
