-- sql/functions/alerts.sql: the owner's alerts (issue 18, docs/metrics.md
-- "Alerts to the owner").  One worker of each nginx runs alert_check()
-- from its metrics timer, in a pool thread; the conditions and their
-- cool-down live in alert_state (sql/039), so that several nginx nodes
-- on one database send one email per condition, not one each.
--
-- Tables: alert_state, jobs; reads lab_orders, lab_order_events.  Calls
-- no function of another area: the email is a shop_alert job like
-- stripe_alert()'s (shop.sql), sent by the mail module to
-- darkroom_mail_alert_to.
--
-- Like every file in sql/functions/: the ONE definition of each of its
-- functions (CREATE OR REPLACE), re-applied by tools/darkroom-migrate after
-- the migrations on every run.


-- A condition holds now, with p_fingerprint what it is (NULL: no more
-- than "it holds").  An email goes when the condition is news (its
-- fingerprint differs from the one last emailed: it is new, it came back
-- after clearing, or it grew: another job died) and the last email about
-- it is older than p_cooldown; otherwise the row only notes it.  So a
-- condition that stays sends one email, one that clears and comes back
-- within the cool-down none (until the cool-down has passed), one that
-- comes back later sends again.  Returns whether an email was queued.
CREATE OR REPLACE FUNCTION alert_raise(p_condition text, p_fingerprint text,
                                       p_detail jsonb, p_cooldown interval)
RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    v_s     alert_state%ROWTYPE;
    v_fp    text := coalesce(p_fingerprint, 'on');
BEGIN
    INSERT INTO alert_state (condition) VALUES (p_condition)
    ON CONFLICT (condition) DO NOTHING;

    -- the nodes that check at once queue on the row: one decides
    SELECT * INTO v_s FROM alert_state
     WHERE condition = p_condition FOR UPDATE;

    UPDATE alert_state
       SET active = true, detail = coalesce(p_detail, '{}'),
           since = coalesce(since, now())
     WHERE condition = p_condition;

    IF v_s.fingerprint IS NOT DISTINCT FROM v_fp
       OR (v_s.last_sent IS NOT NULL AND v_s.last_sent > now() - p_cooldown)
    THEN
        RETURN false;
    END IF;

    INSERT INTO jobs (kind, payload, dedupe_key)
    VALUES ('email', jsonb_build_object('template', 'shop_alert',
                'alert', coalesce(p_detail, '{}')
                         || jsonb_build_object('condition', p_condition)),
            'email:alert:' || p_condition || ':'
            || (v_s.sent + 1)::text);

    UPDATE alert_state
       SET fingerprint = v_fp, last_sent = now(), sent = sent + 1
     WHERE condition = p_condition;

    RETURN true;
END $$;


-- The condition no longer holds: its return will be news.
CREATE OR REPLACE FUNCTION alert_clear(p_condition text)
RETURNS void LANGUAGE sql AS $$
    UPDATE alert_state
       SET active = false, fingerprint = NULL, since = NULL
     WHERE condition = p_condition AND (active OR fingerprint IS NOT NULL);
$$;


-- Raises or clears p_condition as p_on says.
CREATE OR REPLACE FUNCTION alert_set(p_condition text, p_on boolean,
                                    p_fingerprint text, p_detail jsonb,
                                    p_cooldown interval)
RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    IF p_on THEN
        RETURN alert_raise(p_condition, p_fingerprint, p_detail, p_cooldown);
    END IF;

    PERFORM alert_clear(p_condition);
    RETURN false;
END $$;


-- The check, one transaction: dead jobs, lab orders needing attention,
-- and the webhook endpoints the node saw failing their signature check
-- (p_webhooks: [{"endpoint": "stripe", "bad": 7, "seconds": 40}], counted
-- in the node's shared memory, never a secret or a payload).  An endpoint
-- the node does not list is clear.  One row per condition checked.
CREATE OR REPLACE FUNCTION alert_check(p_webhooks jsonb, p_cooldown interval)
RETURNS TABLE (condition text, sent boolean)
LANGUAGE plpgsql AS $$
DECLARE
    v_n     bigint;
    v_max   bigint;
    v_by    jsonb;
    v_w     jsonb;
BEGIN
    IF p_cooldown IS NULL OR p_cooldown < interval '0' THEN
        PERFORM darkroom_refuse(400, 'invalid_cooldown',
                                'The cool-down must be a positive interval.');
    END IF;

    -- jobs that gave up: by kind, the highest id is the fingerprint
    SELECT count(*), max(j.id) INTO v_n, v_max FROM jobs j WHERE j.dead;
    SELECT coalesce(jsonb_object_agg(k.kind, k.n), '{}') INTO v_by
      FROM (SELECT j.kind, count(*) AS n FROM jobs j WHERE j.dead
             GROUP BY j.kind) k;

    condition := 'jobs_dead';
    sent := alert_set(condition, v_n > 0, v_max::text,
        jsonb_build_object('title', v_n || ' dead job(s)',
            'text', v_n || ' background job(s) gave up after their last '
                    || 'attempt: ' || v_by::text
                    || '. See GET jobs?state=dead in the admin API '
                    || '(darkroom_admin).',
            'count', v_n, 'kinds', v_by),
        p_cooldown);
    RETURN NEXT;

    -- lab orders a person must look at and has not in a cool-down: each
    -- already sent its own shop_alert when it turned (lab_attention(),
    -- labs.sql), so this is the reminder of those still waiting; the
    -- last such event is the fingerprint
    SELECT count(DISTINCT lo.id), max(e.id) INTO v_n, v_max
      FROM lab_orders lo
      JOIN lab_order_events e ON e.lab_order_id = lo.id
                             AND e.to_status = 'needs_attention'
     WHERE lo.status = 'needs_attention'
       AND e.created_at <= now() - p_cooldown;

    condition := 'lab_attention';
    sent := alert_set(condition, v_n > 0, v_max::text,
        jsonb_build_object('title', v_n || ' lab order(s) need attention',
            'text', v_n || ' lab order(s) are still in needs_attention, '
                    || 'longer than ' || p_cooldown::text || ': the lab '
                    || 'refused them or cannot make them. See GET '
                    || 'orders?status=attention in the lab admin API.',
            'count', v_n),
        p_cooldown);
    RETURN NEXT;

    -- webhook endpoints: each listed one failing, the others clear
    FOR v_w IN SELECT w FROM jsonb_array_elements(
                   coalesce(p_webhooks, '[]')) AS w
               WHERE w->>'endpoint' ~ '^[a-z][a-z0-9_:.-]{0,40}$'
    LOOP
        condition := 'webhook_signature:' || (v_w->>'endpoint');
        sent := alert_raise(condition, NULL,
            jsonb_build_object('title', 'webhook ' || (v_w->>'endpoint')
                                        || ': signatures failing',
                'text', (v_w->>'bad') || ' deliveries to the '
                        || (v_w->>'endpoint') || ' webhook failed the '
                        || 'signature check in ' || (v_w->>'seconds')
                        || ' s, none passed: is the signing secret the '
                        || 'one the sender has (a rotation)?',
                'endpoint', v_w->>'endpoint', 'count', v_w->'bad'),
            p_cooldown);
        RETURN NEXT;
    END LOOP;

    FOR condition IN
        SELECT s.condition FROM alert_state s
         WHERE s.condition LIKE 'webhook\_signature:%'
           AND (s.active OR s.fingerprint IS NOT NULL)
           AND s.condition NOT IN (
               SELECT 'webhook_signature:' || (w->>'endpoint')
                 FROM jsonb_array_elements(coalesce(p_webhooks, '[]')) w)
    LOOP
        PERFORM alert_clear(condition);
        sent := false;
        RETURN NEXT;
    END LOOP;
END $$;


-- PostgreSQL answered again after an outage a node told the owner about
-- (in its own words, without the database): the note that it is over,
-- one per outage for all the nodes within the cool-down.
CREATE OR REPLACE FUNCTION alert_db_recovered(p_seconds bigint,
                                              p_cooldown interval)
RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    v_sent  boolean;
BEGIN
    v_sent := alert_raise('db_unreachable', NULL,
        jsonb_build_object('title', 'PostgreSQL is back',
            'text', 'PostgreSQL answers again, after ' || p_seconds
                    || ' s unreachable. Requests that needed it were '
                    || 'answered 503 meanwhile; Stripe and the labs '
                    || 'retry their webhooks.',
            'seconds', p_seconds),
        p_cooldown);
    PERFORM alert_clear('db_unreachable');
    RETURN v_sent;
END $$;
