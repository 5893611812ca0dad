-- Rows that exist before the flow starts: the worker's initial snapshot copies them (op "load")
-- under the slot's exported snapshot, then streams everything after it.
INSERT INTO customers (id, name, email)
  SELECT g, 'customer ' || g, 'c' || g || '@example.com' FROM generate_series(1, 1000) g;
