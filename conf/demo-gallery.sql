-- The demo client gallery sells and proofs (issue 14), for `make run`
-- (apply after the catalogue is loaded and the gallery "demo" imported;
-- running it again changes nothing but updated_at).
--
-- Its price sheet "demo-wedding": A4 and A3 giclée prints, a framed print
-- and the full-resolution download, in pounds; A4 at a price of its own
-- (25.00, the catalogue's is 28.00), the rest at the catalogue's prices.
-- A selection may hold 3 photos; each one beyond costs 5.00.  The
-- gallery's photos are 3600 x 2400 originals (every print up to the framed
-- 40 x 50 cm at 150 ppi) and one 2000 x 1500 snapshot too small for the
-- A3 and the framed print: it offers only the A4 and the download.
INSERT INTO price_sheets (id, name)
VALUES ('demo-wedding', 'Wedding prints and downloads')
ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, updated_at = now();

INSERT INTO price_sheet_items (sheet_id, product_id, position)
SELECT 'demo-wedding', v.product_id, v.position
  FROM (VALUES ('giclee-a4', 1), ('giclee-a3', 2), ('framed-40x50', 3),
               ('digital-full', 4)) AS v (product_id, position)
 WHERE EXISTS (SELECT 1 FROM products WHERE id = v.product_id)
ON CONFLICT (sheet_id, product_id) DO UPDATE
   SET position = EXCLUDED.position;

INSERT INTO price_sheet_prices (sheet_id, product_id, currency, amount)
VALUES ('demo-wedding', 'giclee-a4', 'GBP', 2500)
ON CONFLICT (sheet_id, product_id, currency) DO UPDATE
   SET amount = EXCLUDED.amount;

UPDATE galleries
   SET price_sheet_id = 'demo-wedding', currency = 'GBP',
       selection_limit = 3, extra_photo_amount = 500
 WHERE slug = 'demo';
