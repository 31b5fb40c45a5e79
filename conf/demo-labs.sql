-- Demo lab mapping for the products of conf/demo-catalogue.json, for
-- `make run` with tools/lab-sandbox (apply after the catalogue is loaded):
-- giclée prints at theprintspace with Prodigi as fallback, canvas and
-- framed prints at Prodigi.  SKUs are ones the sandbox knows.
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
