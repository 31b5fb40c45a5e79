-- A Checkout Session carries its success and cancel URLs, and ours hold the
-- order's status token: keep them out of the stored webhook payloads, so
-- the events table reveals no live order link.  New rows: the trigger
-- stripe_events_redact (sql/functions/shop.sql); rows already stored: the
-- same expression here, inline, since migrations call no function of
-- sql/functions (those are applied after the migrations).

UPDATE stripe_events
   SET payload = payload #- '{data,object,success_url}'
                         #- '{data,object,cancel_url}';
