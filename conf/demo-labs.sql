-- Demo lab mapping for the products of conf/demo-catalogue.json, for
-- `make run` with tools/lab-sandbox (apply after the catalogue is loaded):
-- giclée prints at theprintspace (for the photos mapped to creativehub
-- below) with Prodigi as fallback, canvas and framed prints at Prodigi.
-- SKUs are ones the sandbox knows.
INSERT INTO lab_products (product_id, lab, sku, attributes, sizing, priority)
VALUES
  ('giclee-a4', 'printspace', 'TPS-HPR-A4', '{"PrintOptionId": 104}', 'fillPrintArea', 1),
  ('giclee-a4', 'prodigi', 'GLOBAL-HPR-A4', '{}', 'fillPrintArea', 2),
  ('giclee-a3', 'printspace', 'TPS-HPR-A3', '{"PrintOptionId": 103}', 'fillPrintArea', 1),
  ('giclee-a3', 'prodigi', 'GLOBAL-HPR-A3', '{}', 'fillPrintArea', 2),
  ('canvas-50x70', 'prodigi', 'GLOBAL-CAN-20X28', '{"wrap": "MirrorWrap"}', 'fillPrintArea', 1),
  ('framed-40x50', 'prodigi', 'GLOBAL-CFPM-16X20', '{"color": "natural"}', 'fitPrintArea', 1)
ON CONFLICT (product_id, lab) DO UPDATE
   SET sku = EXCLUDED.sku, attributes = EXCLUDED.attributes,
       sizing = EXCLUDED.sizing, priority = EXCLUDED.priority;

-- theprintspace prints a photo as its creativehub product: a variant of it
-- per darkroom product for the current API (darkroom_printspace_protocol
-- escher, the default), the product id for the earlier one (legacy, with
-- the print options above).  Photos with neither go to Prodigi.
UPDATE photos SET creativehub_product_id = 35846 WHERE id = 'harbour-dawn';
UPDATE photos SET creativehub_product_id = 35847 WHERE id = 'storm-over-skye';
INSERT INTO creativehub_variants (photo_id, product_id, variant_id)
SELECT p.id, v.product_id, v.prefix || p.id
  FROM photos p,
       (VALUES ('giclee-a4', 'demo-a4-'), ('giclee-a3', 'demo-a3-'))
           AS v (product_id, prefix)
 WHERE p.id IN ('harbour-dawn', 'storm-over-skye')
   AND EXISTS (SELECT 1 FROM products WHERE id = v.product_id)
ON CONFLICT (photo_id, product_id) DO UPDATE
   SET variant_id = EXCLUDED.variant_id;
