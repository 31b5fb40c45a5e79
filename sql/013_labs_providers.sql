-- Labs as their APIs really are (docs/architecture.md, "Print labs"):
--
-- * theprintspace (creativehub API): an item names the artwork's product
--   in creativehub and the paper/size's print option, so each photo sold
--   there carries its creativehub product id; the address needs a phone.
-- * Prodigi: idempotency keys unique beyond one database's ids (a restore
--   or a reinstall brings the same order and lab order ids back); the
--   recipient's phone and what the customer paid per item are sent.
-- * A lab's failure states (Prodigi issues, a failed step, theprintspace's
--   PaymentFailed, OnHold...) need attention, with the lab's reason.
-- * A refund that could not stop a lab order leaves it flagged
--   (cancel_requested_at) until a person resolves it.
-- * A lab's progress on an order under review is recorded in the order's
--   history instead of moving it; the lab order itself still follows its
--   lab.

-- the artwork's product id in creativehub; NULL: not sold through
-- theprintspace
ALTER TABLE photos ADD COLUMN IF NOT EXISTS creativehub_product_id integer
    CHECK (creativehub_product_id > 0);

-- creativehub's current API ("Escher V2") orders a variant (size, frame)
-- of the artwork's product there: one per photo and darkroom product
CREATE TABLE IF NOT EXISTS creativehub_variants (
    photo_id    text NOT NULL REFERENCES photos ON DELETE CASCADE,
    product_id  text NOT NULL REFERENCES products ON DELETE CASCADE,
    variant_id  text NOT NULL CHECK (length(variant_id) BETWEEN 1 AND 100),
    PRIMARY KEY (photo_id, product_id)
);

-- set by a refund; the lab order stays flagged until an admin resolves it
ALTER TABLE lab_orders ADD COLUMN IF NOT EXISTS cancel_requested_at
    timestamptz;

-- the creativehub API a theprintspace lab order was sent through, set
-- before the first send: its ids and drafts mean something only there, so
-- it is followed there whatever darkroom_printspace_protocol says later
ALTER TABLE lab_orders ADD COLUMN IF NOT EXISTS lab_api text
    CHECK (lab_api IN ('escher', 'legacy'));

-- before this file there was only the earlier API: what may have reached
-- it (an id, a try, a later status) stays there
UPDATE lab_orders SET lab_api = 'legacy'
 WHERE lab = 'printspace' AND lab_api IS NULL
   AND (lab_order_id IS NOT NULL OR attempts > 0
        OR status NOT IN ('held', 'pending'));
