-- Demo shipping zones, rates and tax for `make run` (apply after the
-- catalogue is loaded; running it again changes nothing).  A UK shop whose
-- prices include VAT: UK buyers pay 20 % VAT (in the price), exports are
-- zero-rated (no tax rate: 0 %).  Prints ship standard or express; UK
-- standard shipping is free from £100 of goods; canvases and framed
-- prints go by courier in the UK.
UPDATE shop_settings
   SET tax_inclusive = true, country = 'GB', invoice_prefix = 'DEMO-';

INSERT INTO shipping_zones (id, name) VALUES
  ('uk', 'United Kingdom'), ('europe', 'Europe'), ('world', 'Rest of the world')
ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name;

INSERT INTO shipping_zone_countries (country, zone_id) VALUES
  ('GB', 'uk'),
  ('IE', 'europe'), ('FR', 'europe'), ('DE', 'europe'), ('NL', 'europe'),
  ('BE', 'europe'), ('ES', 'europe'), ('IT', 'europe'), ('AT', 'europe'),
  ('DK', 'europe'), ('SE', 'europe'), ('PT', 'europe'),
  ('US', 'world'), ('CA', 'world'), ('AU', 'world'), ('NZ', 'world'),
  ('JP', 'world')
ON CONFLICT (country) DO UPDATE SET zone_id = EXCLUDED.zone_id;

INSERT INTO shipping_rates (zone_id, currency, method, product_id, name,
                            amount, per_item, free_over) VALUES
  ('uk', 'GBP', 'standard', NULL, 'Royal Mail Tracked 48', 450, 100, 10000),
  ('uk', 'GBP', 'express', NULL, 'Next working day', 1200, 200, NULL),
  ('uk', 'GBP', 'standard', 'canvas-50x70', 'Courier', 1500, 500, 25000),
  ('uk', 'GBP', 'standard', 'framed-40x50', 'Courier', 1500, 500, 25000),
  ('uk', 'EUR', 'standard', NULL, 'Royal Mail Tracked 48', 550, 120, 12000),
  ('uk', 'USD', 'standard', NULL, 'Royal Mail Tracked 48', 600, 130, 13000),
  ('europe', 'GBP', 'standard', NULL, 'Tracked Europe', 1200, 200, NULL),
  ('europe', 'GBP', 'express', NULL, 'DHL Express', 2500, 300, NULL),
  ('europe', 'EUR', 'standard', NULL, 'Tracked Europe', 1400, 250, NULL),
  ('europe', 'EUR', 'express', NULL, 'DHL Express', 2900, 350, NULL),
  ('europe', 'USD', 'standard', NULL, 'Tracked Europe', 1500, 250, NULL),
  ('world', 'GBP', 'standard', NULL, 'International tracked', 1800, 300, NULL),
  ('world', 'GBP', 'express', NULL, 'DHL Express', 3500, 400, NULL),
  ('world', 'USD', 'standard', NULL, 'International tracked', 2200, 400, NULL),
  ('world', 'USD', 'express', NULL, 'DHL Express', 4500, 500, NULL),
  ('world', 'EUR', 'standard', NULL, 'International tracked', 2100, 350, NULL)
ON CONFLICT (zone_id, currency, method, product_id) DO UPDATE
   SET name = EXCLUDED.name, amount = EXCLUDED.amount,
       per_item = EXCLUDED.per_item, free_over = EXCLUDED.free_over;

INSERT INTO tax_rates (country, kind, rate, label) VALUES
  ('GB', 'print', 20, 'VAT'), ('GB', 'digital', 20, 'VAT')
ON CONFLICT (country, kind) DO UPDATE
   SET rate = EXCLUDED.rate, label = EXCLUDED.label;
