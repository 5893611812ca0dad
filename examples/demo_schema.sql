-- Sample shop schema for the demo (scripts/demo): a mix of types, a TOASTed column, a table
-- with REPLICA IDENTITY FULL and a partitioned table published through its root.
CREATE TABLE customers (
  id         int PRIMARY KEY,
  name       text NOT NULL,
  email      text,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE orders (
  id          bigint PRIMARY KEY,
  customer_id int REFERENCES customers (id),
  total       numeric(12, 2) NOT NULL,
  status      text NOT NULL,
  placed_at   timestamptz NOT NULL DEFAULT now(),
  items       jsonb,
  tags        text[],
  ref         uuid DEFAULT gen_random_uuid()
);
CREATE TABLE audit_notes (id int PRIMARY KEY, body text);
ALTER TABLE audit_notes REPLICA IDENTITY FULL;
CREATE TABLE events (id bigint, at date NOT NULL, kind text, PRIMARY KEY (id, at))
  PARTITION BY RANGE (at);
CREATE TABLE events_2026 PARTITION OF events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
CREATE TABLE events_2027 PARTITION OF events FOR VALUES FROM ('2027-01-01') TO ('2028-01-01');
CREATE PUBLICATION demo_pub FOR ALL TABLES WITH (publish_via_partition_root = true);
