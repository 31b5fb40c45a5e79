-- A Checkout Session carries its success and cancel URLs, and ours hold the
-- order's status token: keep them out of the stored webhook payloads, so
-- the events table reveals no live order link.


UPDATE stripe_events
   SET payload = payload #- '{data,object,success_url}'
                         #- '{data,object,cancel_url}';
