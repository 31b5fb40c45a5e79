-- A Checkout Session carries its success and cancel URLs, and ours hold the
-- order's status token: keep them out of the stored webhook payloads, so
-- the events table reveals no live order link.

CREATE FUNCTION stripe_events_redact() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.payload := NEW.payload #- '{data,object,success_url}'
                               #- '{data,object,cancel_url}';
    RETURN NEW;
END $$;

CREATE TRIGGER stripe_events_redact BEFORE INSERT ON stripe_events
    FOR EACH ROW EXECUTE FUNCTION stripe_events_redact();

UPDATE stripe_events
   SET payload = payload #- '{data,object,success_url}'
                         #- '{data,object,cancel_url}';
