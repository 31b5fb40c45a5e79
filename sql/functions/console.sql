-- sql/functions/console.sql: the console's accounts, sessions, API keys,
-- the audit log, login lockout, password resets and the dashboard.
--
-- Tables: console_accounts, console_sessions, console_api_keys,
-- console_audit, console_login_failures, console_login_addresses,
-- console_password_resets, jobs;
-- reads orders, lab_orders, emails, galleries.
-- Calls: darkroom_refuse (core), lab_stuck (labs).
--
-- The C side (src/core/ngx_http_darkroom_auth.c, src/console/) computes
-- every hash: these functions see SHA-256 hex of secrets and scrypt hashes
-- of passwords, never a secret.


-- Lockout: at most this many wrong passwords for an address in the window;
-- the next one locks it for the lock time.
CREATE OR REPLACE FUNCTION console_login_max() RETURNS integer
LANGUAGE sql IMMUTABLE AS $$ SELECT 5 $$;

CREATE OR REPLACE FUNCTION console_login_window() RETURNS interval
LANGUAGE sql IMMUTABLE AS $$ SELECT interval '15 minutes' $$;

CREATE OR REPLACE FUNCTION console_login_lock() RETURNS interval
LANGUAGE sql IMMUTABLE AS $$ SELECT interval '15 minutes' $$;

-- The same per client address, whatever the emails tried: at most this
-- many wrong passwords from one address in the window (20 in 15 minutes
-- unless the database sets darkroom.console_address_max, ...window,
-- ...lock: ALTER DATABASE darkroom SET darkroom.console_address_max = 50;
-- a max of 0 turns the address lock off).
CREATE OR REPLACE FUNCTION console_address_max() RETURNS integer
LANGUAGE sql STABLE AS $$
    SELECT coalesce(nullif(current_setting('darkroom.console_address_max',
                                           true), '')::integer, 20)
$$;

CREATE OR REPLACE FUNCTION console_address_window() RETURNS interval
LANGUAGE sql STABLE AS $$
    SELECT coalesce(nullif(current_setting('darkroom.console_address_window',
                                           true), '')::interval,
                    interval '15 minutes')
$$;

CREATE OR REPLACE FUNCTION console_address_lock() RETURNS interval
LANGUAGE sql STABLE AS $$
    SELECT coalesce(nullif(current_setting('darkroom.console_address_lock',
                                           true), '')::interval,
                    interval '15 minutes')
$$;

CREATE OR REPLACE FUNCTION console_wait(p_until timestamptz) RETURNS json
LANGUAGE sql STABLE AS $$
    SELECT json_build_object('wait', greatest(1, ceil(extract(epoch FROM
                                 p_until - now())))::int)
$$;


-- Counts an attempt from an address before the password is checked, as
-- console_login_begin() does for an email: NULL, or {"wait":n} when the
-- address is locked (or as many attempts as allowed are in flight).
CREATE OR REPLACE FUNCTION console_address_begin(p_ip text)
RETURNS json LANGUAGE plpgsql AS $$
DECLARE
    f  console_login_addresses%ROWTYPE;
BEGIN
    IF coalesce(p_ip, '') = '' OR console_address_max() <= 0 THEN
        RETURN NULL;
    END IF;

    IF random() < 0.01 THEN
        DELETE FROM console_login_addresses
         WHERE first_at < now() - interval '1 day'
           AND (locked_until IS NULL OR locked_until < now());
    END IF;

    INSERT INTO console_login_addresses AS l (ip, failures)
    VALUES (p_ip, 1)
    ON CONFLICT (ip) DO UPDATE
       SET failures = CASE WHEN l.locked_until > now() THEN l.failures
                           WHEN l.locked_until IS NOT NULL
                                OR l.first_at < now() - console_address_window()
                           THEN 1 ELSE l.failures + 1 END,
           first_at = CASE WHEN l.locked_until > now() THEN l.first_at
                           WHEN l.locked_until IS NOT NULL
                                OR l.first_at < now() - console_address_window()
                           THEN now() ELSE l.first_at END,
           locked_until = CASE WHEN l.locked_until > now()
                               THEN l.locked_until END
    RETURNING * INTO f;

    IF f.locked_until > now() THEN
        RETURN console_wait(f.locked_until);
    END IF;

    IF f.failures > console_address_max() THEN
        UPDATE console_login_addresses SET failures = failures - 1
         WHERE ip = p_ip;
        RETURN json_build_object('wait', 1);
    END IF;

    RETURN NULL;
END $$;


-- An attempt counted for the address was not a wrong password (a right
-- one, or refused by the email's lock): it no longer counts.
CREATE OR REPLACE FUNCTION console_address_forget(p_ip text)
RETURNS void LANGUAGE sql AS $$
    UPDATE console_login_addresses SET failures = greatest(0, failures - 1)
     WHERE ip = p_ip AND coalesce(locked_until, '-infinity') <= now()
$$;


CREATE OR REPLACE FUNCTION console_account_json(a console_accounts)
RETURNS json LANGUAGE sql STABLE AS $$
    SELECT json_build_object('id', a.id, 'email', a.email, 'name', a.name,
                             'role', a.role, 'disabled', a.disabled,
                             'created_at', a.created_at)
$$;


-- Counts an attempt before the password is checked (atomic: the row lock
-- of the upsert orders parallel attempts), for the client's address first
-- (p_ip; NULL: none), then for the email.  {"wait":n}: locked out for n
-- seconds (429); else {"wait":0,"hash":...} (hash NULL: no such enabled
-- account, the C side checks a dummy to take the same time).
CREATE OR REPLACE FUNCTION console_login_begin(p_email text,
    p_ip text DEFAULT NULL)
RETURNS json LANGUAGE plpgsql AS $$
DECLARE
    v_email  text := lower(coalesce(p_email, ''));
    f        console_login_failures%ROWTYPE;
    v_hash   text;
    v_wait   json;
BEGIN
    -- the address locked: not counted for the email, nothing else written
    v_wait := console_address_begin(p_ip);
    IF v_wait IS NOT NULL THEN
        RETURN v_wait;
    END IF;

    -- now and then, forget the addresses nobody tried for a day
    IF random() < 0.01 THEN
        DELETE FROM console_login_failures
         WHERE first_at < now() - interval '1 day'
           AND (locked_until IS NULL OR locked_until < now());
    END IF;

    INSERT INTO console_login_failures AS l (email, failures)
    VALUES (v_email, 1)
    ON CONFLICT (email) DO UPDATE
       SET failures = CASE WHEN l.locked_until > now() THEN l.failures
                           WHEN l.locked_until IS NOT NULL
                                OR l.first_at < now() - console_login_window()
                           THEN 1 ELSE l.failures + 1 END,
           first_at = CASE WHEN l.locked_until > now() THEN l.first_at
                           WHEN l.locked_until IS NOT NULL
                                OR l.first_at < now() - console_login_window()
                           THEN now() ELSE l.first_at END,
           locked_until = CASE WHEN l.locked_until > now()
                               THEN l.locked_until END
    RETURNING * INTO f;

    IF f.locked_until > now() THEN
        PERFORM console_address_forget(p_ip);
        RETURN console_wait(f.locked_until);
    END IF;

    IF f.failures > console_login_max() THEN
        -- as many attempts as allowed are in flight: this one is not made
        UPDATE console_login_failures SET failures = failures - 1
         WHERE email = v_email;
        PERFORM console_address_forget(p_ip);
        RETURN json_build_object('wait', 1);
    END IF;

    SELECT password_hash INTO v_hash FROM console_accounts
     WHERE lower(email) = v_email AND NOT disabled;

    RETURN json_build_object('wait', 0, 'hash', v_hash);
END $$;


-- The outcome of an attempt console_login_begin() counted.  A right
-- password: the email's failures are forgotten and a session starts
-- ({"wait":0,"account":{...},"csrf":...}); the address's other failures
-- stand (one right guess must not reset a spray).  A wrong one:
-- {"wait":0} (401), the one that reaches a limit locks the email, the
-- address, or both.  A lock set meanwhile stands.  Rows are locked
-- address first, then email, as console_login_begin() takes them.
CREATE OR REPLACE FUNCTION console_login_end(p_email text, p_ok boolean,
    p_token_hash text, p_csrf text, p_ip text)
RETURNS json LANGUAGE plpgsql AS $$
DECLARE
    v_email  text := lower(coalesce(p_email, ''));
    f        console_login_failures%ROWTYPE;
    d        console_login_addresses%ROWTYPE;
    a        console_accounts%ROWTYPE;
BEGIN
    SELECT * INTO d FROM console_login_addresses WHERE ip = p_ip
       FOR UPDATE;
    SELECT * INTO f FROM console_login_failures WHERE email = v_email
       FOR UPDATE;

    IF d.locked_until > now() OR f.locked_until > now() THEN
        RETURN console_wait(greatest(d.locked_until, f.locked_until));
    END IF;

    IF NOT p_ok THEN
        IF f.failures >= console_login_max() THEN
            UPDATE console_login_failures
               SET locked_until = now() + console_login_lock()
             WHERE email = v_email;
        END IF;
        IF d.failures >= console_address_max() AND console_address_max() > 0
        THEN
            UPDATE console_login_addresses
               SET locked_until = now() + console_address_lock()
             WHERE ip = p_ip;
        END IF;
        RETURN json_build_object('wait', 0);
    END IF;

    PERFORM console_address_forget(p_ip);

    SELECT * INTO a FROM console_accounts
     WHERE lower(email) = v_email AND NOT disabled;
    IF NOT FOUND THEN
        RETURN json_build_object('wait', 0);
    END IF;

    DELETE FROM console_login_failures WHERE email = v_email;

    INSERT INTO console_sessions (account_id, token_hash, csrf, ip)
    VALUES (a.id, p_token_hash, p_csrf, p_ip);

    INSERT INTO console_audit (account_id, actor, method, path, ip, status)
    VALUES (a.id, a.email, 'POST', 'login', p_ip, 200);

    RETURN json_build_object('wait', 0, 'account', console_account_json(a),
                             'csrf', p_csrf);
END $$;


-- The credential of an admin request, checked in the thread before the
-- area's work.  p_kind 'session' (p_hash: SHA-256 of the cookie) or 'key'
-- (p_key: its id, p_hash: SHA-256 of its secret).  p_scope: read, write,
-- refunds or owner.  Refuses 401 unauthorized, 403 forbidden, 403
-- csrf_required / csrf_mismatch; else who it is, for the audit row.
CREATE OR REPLACE FUNCTION admin_authorize(p_kind text, p_key text,
    p_hash text, p_csrf text, p_method text, p_scope text,
    p_idle integer, p_max integer)
RETURNS json LANGUAGE plpgsql AS $$
DECLARE
    s  console_sessions%ROWTYPE;
    a  console_accounts%ROWTYPE;
    k  console_api_keys%ROWTYPE;
BEGIN
    -- a new request: no detail of an earlier one (console_audit_detail)
    PERFORM set_config('darkroom.audit_detail', '', false);

    IF p_kind = 'key' THEN
        IF p_key !~ '^[0-9]{1,18}$' THEN
            PERFORM darkroom_refuse(401, 'unauthorized',
                                    'A valid admin credential is required.');
        END IF;
        SELECT * INTO k FROM console_api_keys
         WHERE id = p_key::bigint AND revoked_at IS NULL
           AND sha256(convert_to(secret_hash, 'UTF8'))
               = sha256(convert_to(coalesce(p_hash, ''), 'UTF8'));
        IF NOT FOUND THEN
            PERFORM darkroom_refuse(401, 'unauthorized',
                                    'A valid admin credential is required.');
        END IF;
        IF NOT (p_scope = ANY (k.scopes)
                OR (p_scope = 'read' AND cardinality(k.scopes) > 0))
        THEN
            PERFORM darkroom_refuse(403, 'forbidden',
                'This API key does not have the scope "' || p_scope || '".');
        END IF;
        UPDATE console_api_keys SET last_used_at = now() WHERE id = k.id;
        RETURN json_build_object('account', NULL, 'key', k.id,
                                 'actor', 'key:' || k.name, 'role', NULL);
    END IF;

    SELECT * INTO s FROM console_sessions
     WHERE token_hash = p_hash AND ended_at IS NULL
       AND last_seen_at > now() - make_interval(secs => p_idle)
       AND created_at > now() - make_interval(secs => p_max);
    IF FOUND THEN
        SELECT * INTO a FROM console_accounts
         WHERE id = s.account_id AND NOT disabled;
    END IF;
    IF s.id IS NULL OR a.id IS NULL THEN
        PERFORM darkroom_refuse(401, 'unauthorized',
                                'Please sign in again.');
    END IF;

    IF p_method NOT IN ('GET', 'HEAD') THEN
        IF coalesce(p_csrf, '') = '' THEN
            PERFORM darkroom_refuse(403, 'csrf_required',
                                    'The X-CSRF-Token header is required.');
        END IF;
        IF sha256(convert_to(s.csrf, 'UTF8'))
           <> sha256(convert_to(p_csrf, 'UTF8'))
        THEN
            PERFORM darkroom_refuse(403, 'csrf_mismatch',
                'The X-CSRF-Token header does not match the session.');
        END IF;
    END IF;

    IF p_scope IN ('refunds', 'owner') AND a.role <> 'owner' THEN
        PERFORM darkroom_refuse(403, 'forbidden',
                                'Only an owner may do this.');
    END IF;

    UPDATE console_sessions SET last_seen_at = now() WHERE id = s.id;

    RETURN json_build_object('account', a.id, 'key', NULL, 'session', s.id,
                             'actor', a.email, 'role', a.role);
END $$;


-- A detail for the audit row of the request under way (a small jsonb
-- object, e.g. {"booking","reason"}), set by an admin area's SQL function
-- in its work: kept on the connection
-- (darkroom.audit_detail) until console_audit_write, which runs next on
-- it (ngx_http_darkroom_auth_audit), takes it.  A refused change rolls it
-- back with the rest of its transaction.
CREATE OR REPLACE FUNCTION console_audit_detail(p_detail jsonb)
RETURNS void LANGUAGE sql AS $$
    SELECT set_config('darkroom.audit_detail',
                      coalesce(p_detail::text, ''), false);
$$;


-- The row of an admin request (ngx_http_darkroom_auth_audit, after the
-- work, on the work's connection), with the detail the work set, taken.
CREATE OR REPLACE FUNCTION console_audit_write(p_account bigint,
    p_key bigint, p_actor text, p_method text, p_path text, p_ip text,
    p_status integer)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    v_detail  jsonb := nullif(current_setting('darkroom.audit_detail', true),
                              '')::jsonb;
BEGIN
    PERFORM set_config('darkroom.audit_detail', '', false);

    INSERT INTO console_audit (account_id, key_id, actor, method, path, ip,
                               status, detail)
    VALUES (p_account, p_key, p_actor, p_method, left(p_path, 1000), p_ip,
            p_status, v_detail);
END $$;


CREATE OR REPLACE FUNCTION console_me(p_session bigint)
RETURNS text LANGUAGE sql STABLE AS $$
    SELECT json_build_object('account', console_account_json(a),
                             'csrf', s.csrf)::text
      FROM console_sessions s JOIN console_accounts a ON a.id = s.account_id
     WHERE s.id = p_session;
$$;


CREATE OR REPLACE FUNCTION console_logout(p_session bigint)
RETURNS text LANGUAGE sql AS $$
    UPDATE console_sessions SET ended_at = now()
     WHERE id = p_session AND ended_at IS NULL;
    SELECT '{"ok":true}';
$$;


CREATE OR REPLACE FUNCTION console_logout_all(p_account bigint)
RETURNS text LANGUAGE sql AS $$
    WITH e AS (UPDATE console_sessions SET ended_at = now()
                WHERE account_id = p_account AND ended_at IS NULL
               RETURNING 1)
    SELECT json_build_object('ended', (SELECT count(*) FROM e))::text;
$$;


-- accounts (owner only: the C side asks admin_authorize for 'owner')

CREATE OR REPLACE FUNCTION console_accounts_json()
RETURNS text LANGUAGE sql STABLE AS $$
    SELECT json_build_object('accounts', coalesce(json_agg(
               console_account_json(a) ORDER BY a.id), '[]'))::text
      FROM console_accounts a;
$$;


CREATE OR REPLACE FUNCTION console_check_fields(p_body jsonb)
RETURNS void LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF p_body ? 'role' AND (jsonb_typeof(p_body->'role') <> 'string'
                           OR p_body->>'role' NOT IN ('owner', 'staff'))
    THEN
        PERFORM darkroom_refuse(400, 'bad_role',
                                'The role is "owner" or "staff".');
    END IF;
    IF p_body ? 'name' AND (jsonb_typeof(p_body->'name') <> 'string'
                           OR length(p_body->>'name') > 200)
    THEN
        PERFORM darkroom_refuse(400, 'bad_name',
                                'The name is text of at most 200 characters.');
    END IF;
    IF p_body ? 'disabled' AND jsonb_typeof(p_body->'disabled') <> 'boolean'
    THEN
        PERFORM darkroom_refuse(400, 'bad_disabled',
                                '"disabled" is true or false.');
    END IF;
END $$;


-- p_hash: the scrypt hash of the password, the C side checked its length
CREATE OR REPLACE FUNCTION console_account_create(p_body jsonb,
    p_hash text)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    a  console_accounts%ROWTYPE;
BEGIN
    IF jsonb_typeof(p_body) IS DISTINCT FROM 'object'
       OR jsonb_typeof(p_body->'email') IS DISTINCT FROM 'string'
       OR p_body->>'email' !~ '^[^@\s]+@[^@\s]+$'
       OR length(p_body->>'email') > 254
    THEN
        PERFORM darkroom_refuse(400, 'bad_email',
                                'Give the account a valid email address.');
    END IF;
    IF NOT p_body ? 'role' THEN
        PERFORM darkroom_refuse(400, 'bad_role',
                                'The role is "owner" or "staff".');
    END IF;
    PERFORM console_check_fields(p_body);
    IF EXISTS (SELECT 1 FROM console_accounts
                WHERE lower(email) = lower(p_body->>'email'))
    THEN
        PERFORM darkroom_refuse(409, 'email_taken',
                                'An account has this email already.');
    END IF;

    INSERT INTO console_accounts (email, name, role, password_hash)
    VALUES (p_body->>'email', coalesce(p_body->>'name', ''),
            p_body->>'role', p_hash)
    RETURNING * INTO a;

    RETURN json_build_object('account', console_account_json(a))::text;
END $$;


CREATE OR REPLACE FUNCTION console_account_update(p_id text, p_body jsonb)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    a  console_accounts%ROWTYPE;
BEGIN
    IF jsonb_typeof(p_body) IS DISTINCT FROM 'object'
       OR p_body - ARRAY['role', 'name', 'disabled'] <> '{}'::jsonb
       OR p_body = '{}'::jsonb
    THEN
        PERFORM darkroom_refuse(400, 'bad_request',
            'Give any of "role", "name" and "disabled", nothing else.');
    END IF;
    PERFORM console_check_fields(p_body);

    SELECT * INTO a FROM console_accounts WHERE id = p_id::bigint
       FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM darkroom_refuse(404, 'not_found', 'There is no such account.');
    END IF;

    UPDATE console_accounts
       SET role = coalesce(p_body->>'role', role),
           name = coalesce(p_body->>'name', name),
           disabled = coalesce((p_body->>'disabled')::boolean, disabled),
           updated_at = now()
     WHERE id = a.id
    RETURNING * INTO a;

    PERFORM 1 FROM console_accounts WHERE role = 'owner' FOR UPDATE;
    IF NOT EXISTS (SELECT 1 FROM console_accounts
                    WHERE role = 'owner' AND NOT disabled)
    THEN
        PERFORM darkroom_refuse(409, 'last_owner',
                                'The console needs at least one owner.');
    END IF;

    IF a.disabled THEN
        UPDATE console_sessions SET ended_at = now()
         WHERE account_id = a.id AND ended_at IS NULL;
    END IF;

    RETURN json_build_object('account', console_account_json(a))::text;
END $$;


-- API keys

CREATE OR REPLACE FUNCTION console_key_json(k console_api_keys)
RETURNS json LANGUAGE sql STABLE AS $$
    SELECT json_build_object('id', k.id, 'name', k.name, 'scopes', k.scopes,
                             'created_at', k.created_at,
                             'last_used_at', k.last_used_at,
                             'revoked_at', k.revoked_at)
$$;


CREATE OR REPLACE FUNCTION console_keys_json()
RETURNS text LANGUAGE sql STABLE AS $$
    SELECT json_build_object('keys', coalesce(json_agg(
               console_key_json(k) ORDER BY k.id), '[]'))::text
      FROM console_api_keys k;
$$;


-- p_hash: SHA-256 of the secret the C side made; it shows it once
CREATE OR REPLACE FUNCTION console_key_create(p_body jsonb, p_hash text,
    p_account bigint)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    k  console_api_keys%ROWTYPE;
BEGIN
    IF jsonb_typeof(p_body) IS DISTINCT FROM 'object'
       OR jsonb_typeof(p_body->'name') IS DISTINCT FROM 'string'
       OR length(p_body->>'name') NOT BETWEEN 1 AND 100
    THEN
        PERFORM darkroom_refuse(400, 'bad_name',
                                'Name the key (1 to 100 characters).');
    END IF;
    IF jsonb_typeof(p_body->'scopes') IS DISTINCT FROM 'array'
       OR jsonb_array_length(p_body->'scopes') = 0
       OR EXISTS (SELECT 1 FROM jsonb_array_elements(p_body->'scopes') e
                   WHERE jsonb_typeof(e) <> 'string'
                      OR e #>> '{}' NOT IN ('read', 'write', 'refunds'))
    THEN
        PERFORM darkroom_refuse(400, 'bad_scopes',
            'The scopes are a list of "read", "write" and "refunds".');
    END IF;

    INSERT INTO console_api_keys (name, scopes, secret_hash, created_by)
    VALUES (p_body->>'name',
            ARRAY(SELECT DISTINCT e FROM jsonb_array_elements_text(
                      p_body->'scopes') e ORDER BY e),
            p_hash, p_account)
    RETURNING * INTO k;

    RETURN json_build_object('key', console_key_json(k))::text;
END $$;


CREATE OR REPLACE FUNCTION console_key_revoke(p_id text)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    k  console_api_keys%ROWTYPE;
BEGIN
    UPDATE console_api_keys SET revoked_at = coalesce(revoked_at, now())
     WHERE id = p_id::bigint
    RETURNING * INTO k;
    IF NOT FOUND THEN
        PERFORM darkroom_refuse(404, 'not_found', 'There is no such key.');
    END IF;
    RETURN json_build_object('key', console_key_json(k))::text;
END $$;


-- the audit log: ?account=<id>&since=<timestamp>&limit=<1..1000>

CREATE OR REPLACE FUNCTION console_audit_rows(p_account text, p_since text,
    p_limit text)
RETURNS SETOF console_audit LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_since  timestamptz;
BEGIN
    IF p_account IS NOT NULL AND p_account !~ '^[0-9]{1,18}$' THEN
        PERFORM darkroom_refuse(400, 'bad_account',
                                'account is an account id.');
    END IF;
    IF p_limit IS NOT NULL AND (p_limit !~ '^[0-9]{1,4}$'
                                OR p_limit::int NOT BETWEEN 1 AND 1000)
    THEN
        PERFORM darkroom_refuse(400, 'bad_limit',
                                'limit is a number from 1 to 1000.');
    END IF;
    IF p_since IS NOT NULL THEN
        BEGIN
            v_since := p_since::timestamptz;
        EXCEPTION WHEN others THEN
            PERFORM darkroom_refuse(400, 'bad_since',
                'since is a date or time, as 2026-12-01 or '
                '2026-12-01T10:00:00Z.');
        END;
    END IF;

    RETURN QUERY
        SELECT * FROM console_audit c
         WHERE (p_account IS NULL OR c.account_id = p_account::bigint)
           AND (v_since IS NULL OR c.at >= v_since)
         ORDER BY c.id DESC
         LIMIT coalesce(p_limit::int, 100);
END $$;


CREATE OR REPLACE FUNCTION console_audit_json(p_account text, p_since text,
    p_limit text)
RETURNS text LANGUAGE sql STABLE AS $$
    SELECT json_build_object('audit', coalesce(json_agg(json_build_object(
               'id', c.id, 'at', c.at, 'account', c.account_id,
               'key', c.key_id, 'actor', c.actor, 'method', c.method,
               'path', c.path, 'ip', c.ip, 'status', c.status,
               'detail', c.detail)), '[]'))::text
      FROM console_audit_rows(p_account, p_since, p_limit) c;
$$;


CREATE OR REPLACE FUNCTION console_csv(p text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT '"' || replace(CASE WHEN coalesce(p, '') ~ '^[=+@\t\r-]'
                               THEN '''' ELSE '' END || coalesce(p, ''),
                          '"', '""') || '"'
$$;


CREATE OR REPLACE FUNCTION console_audit_csv(p_account text, p_since text,
    p_limit text)
RETURNS text LANGUAGE sql STABLE AS $$
    SELECT 'id,at,account,key,actor,method,path,ip,status,detail'
           || E'\r\n'
           -- concat_ws would drop a NULL: an empty cell keeps its column
           || coalesce(string_agg(concat_ws(',', c.id,
                  console_csv(to_char(c.at AT TIME ZONE 'UTC',
                                      'YYYY-MM-DD"T"HH24:MI:SS"Z"')),
                  coalesce(c.account_id::text, ''),
                  coalesce(c.key_id::text, ''), console_csv(c.actor),
                  console_csv(c.method), console_csv(c.path),
                  console_csv(c.ip), coalesce(c.status::text, ''),
                  CASE WHEN c.detail IS NOT NULL
                       THEN console_csv(c.detail::text) ELSE '' END),
                  E'\r\n' ORDER BY c.id DESC)
                  || E'\r\n', '')
      FROM console_audit_rows(p_account, p_since, p_limit) c;
$$;


-- The dashboard: paid orders (paid_at) today and this month, revenue per
-- currency of what was paid less what was refunded, the attention counts.
CREATE OR REPLACE FUNCTION console_dashboard()
RETURNS text LANGUAGE sql STABLE AS $$
    WITH paid AS (
        SELECT coalesce(paid_currency, currency) AS cur,
               coalesce(paid_amount, total) - amount_refunded AS net,
               paid_at >= date_trunc('day', now()) AS today
          FROM orders
         WHERE paid_at >= date_trunc('month', now())
    )
    SELECT json_build_object(
        'revenue', json_build_object(
            'today', (SELECT coalesce(json_object_agg(cur, s), '{}')
                        FROM (SELECT cur, sum(net) s FROM paid WHERE today
                               GROUP BY cur) t),
            'month', (SELECT coalesce(json_object_agg(cur, s), '{}')
                        FROM (SELECT cur, sum(net) s FROM paid
                               GROUP BY cur) t)),
        'orders', json_build_object(
            'today', (SELECT count(*) FROM paid WHERE today),
            'month', (SELECT count(*) FROM paid)),
        'attention', json_build_object(
            'review', (SELECT count(*) FROM orders
                        WHERE status = 'needs_review'),
            'lab_attention', (SELECT count(*) FROM lab_orders
                               WHERE status = 'needs_attention'),
            'lab_stuck', (SELECT count(*) FROM lab_orders lo
                           WHERE lab_stuck(lo)),
            'dead_jobs', (SELECT count(*) FROM jobs WHERE dead),
            'failed_emails', (SELECT count(*) FROM emails
                               WHERE status = 'failed'),
            'galleries_expiring', (SELECT count(*) FROM galleries
                                    WHERE revoked_at IS NULL
                                      AND expires_at > now()
                                      AND expires_at <= now()
                                                        + interval '7 days'))
    )::text;
$$;


-- Password reset: always answered the same (202).  For an enabled account,
-- a single-use token (SHA-256 kept) valid an hour and an email job whose
-- payload carries the link's token until it is sent.
CREATE OR REPLACE FUNCTION console_reset_request(p_email text,
    p_token_hash text, p_token text)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    a  console_accounts%ROWTYPE;
BEGIN
    SELECT * INTO a FROM console_accounts
     WHERE lower(email) = lower(coalesce(p_email, '')) AND NOT disabled;
    IF FOUND THEN
        INSERT INTO console_password_resets (account_id, token_hash,
                                             expires_at)
        VALUES (a.id, p_token_hash, now() + interval '1 hour');
        INSERT INTO jobs (kind, payload)
        VALUES ('email', json_build_object('template', 'password_reset',
                                           'to', a.email,
                                           'name', a.name,
                                           'token', p_token)::jsonb);
    END IF;
    RETURN '{"ok":true}';
END $$;


CREATE OR REPLACE FUNCTION console_reset_confirm(p_token_hash text,
    p_hash text)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    t  console_password_resets%ROWTYPE;
    a  console_accounts%ROWTYPE;
BEGIN
    UPDATE console_password_resets SET used_at = now()
     WHERE token_hash = p_token_hash AND used_at IS NULL
       AND expires_at > now()
    RETURNING * INTO t;
    IF NOT FOUND THEN
        PERFORM darkroom_refuse(400, 'invalid_token',
            'This reset link is not valid any more: ask for another.');
    END IF;

    UPDATE console_accounts SET password_hash = p_hash, updated_at = now()
     WHERE id = t.account_id
    RETURNING * INTO a;
    UPDATE console_sessions SET ended_at = now()
     WHERE account_id = a.id AND ended_at IS NULL;
    DELETE FROM console_login_failures WHERE email = lower(a.email);
    INSERT INTO console_audit (account_id, actor, method, path, status)
    VALUES (a.id, a.email, 'POST', 'password-reset/confirm', 200);

    RETURN json_build_object('account', console_account_json(a))::text;
END $$;


-- tools/darkroom-owner: the first owner (p_reset: replace the password of
-- the owner with this email, or make one).
CREATE OR REPLACE FUNCTION console_owner(p_email text, p_hash text,
    p_reset boolean)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    a  console_accounts%ROWTYPE;
BEGIN
    PERFORM pg_advisory_xact_lock(7415);
    IF coalesce(p_email, '') !~ '^[^@\s]+@[^@\s]+$' THEN
        PERFORM darkroom_refuse(400, 'bad_email', 'Give a valid email.');
    END IF;
    IF EXISTS (SELECT 1 FROM console_accounts WHERE role = 'owner')
       AND NOT p_reset
    THEN
        PERFORM darkroom_refuse(409, 'owner_exists',
                                'An owner exists (use --reset).');
    END IF;
    INSERT INTO console_accounts (email, name, role, password_hash)
    VALUES (p_email, 'Owner', 'owner', p_hash)
    ON CONFLICT (lower(email)) DO UPDATE
       SET password_hash = excluded.password_hash, role = 'owner',
           disabled = false, updated_at = now()
    RETURNING * INTO a;
    UPDATE console_sessions SET ended_at = now()
     WHERE account_id = a.id AND ended_at IS NULL;
    DELETE FROM console_login_failures WHERE email = lower(a.email);
    RETURN json_build_object('account', console_account_json(a))::text;
END $$;
