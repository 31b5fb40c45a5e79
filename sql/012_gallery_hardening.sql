-- Gallery hardening.
--
-- Lockout: an attempt at a password or PIN is counted before scrypt runs,
-- in one statement that also refuses it while the client or the gallery
-- is locked out (gallery_attempt_begin), and the outcome is recorded after
-- (gallery_attempt_end), which refuses even the right answer if a lock
-- came meanwhile and never lets such a success clear the count.  Beside
-- the count per gallery, client and kind, a count per gallery and kind
-- (gallery_lockouts) locks the gallery for everyone after failures from
-- many addresses.  gallery_lockout() and gallery_attempt() of 008 are left
-- for older workers during a rolling upgrade; nothing calls them now.
--
-- Proofs: a photo without a proof copy has no proof (NULL), never its
-- original or web-size file; the admin API lists such photos as warnings.

CREATE TABLE gallery_lockouts (
    gallery_id     bigint      NOT NULL REFERENCES galleries ON DELETE CASCADE,
    kind           text        NOT NULL CHECK (kind IN ('password', 'pin')),
    failures       integer     NOT NULL DEFAULT 0,
    first_at       timestamptz NOT NULL DEFAULT now(),
    locked_until   timestamptz,
    PRIMARY KEY (gallery_id, kind)
);
