-- Writes replicated by the demo while the worker runs.
INSERT INTO orders (id, customer_id, total, status, items, tags)
  SELECT g, 1 + g % 1000, round((g * 7.31)::numeric % 500, 2), 'new',
         jsonb_build_object('sku', 'SKU-' || g % 97, 'qty', 1 + g % 5),
         ARRAY['web', CASE WHEN g % 2 = 0 THEN 'promo' ELSE 'regular' END]
  FROM generate_series(1, 20000) g;
UPDATE orders SET status = 'shipped' WHERE id % 3 = 0;
DELETE FROM orders WHERE id % 10 = 0;
INSERT INTO audit_notes SELECT g, repeat('long note ', 500) FROM generate_series(1, 20) g;
UPDATE audit_notes SET body = 'short' WHERE id <= 5;
INSERT INTO events SELECT g, DATE '2026-06-01' + (g % 400), 'click' FROM generate_series(1, 5000) g;
BEGIN;
INSERT INTO customers VALUES (99999, 'rolled back', NULL);
ROLLBACK;
-- One large transaction: streamed by the server in chunks, delivered in several batches.
INSERT INTO orders (id, customer_id, total, status)
  SELECT 100000 + g, 1 + g % 1000, 9.99, 'bulk' FROM generate_series(1, 200000) g;
