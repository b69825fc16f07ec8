-- Tables of examples/flow_a.yaml and examples/flow_b.yaml (PostgreSQL).
--   psql postgresql://postgres@127.0.0.1:5432/test -f examples/flows/schema.sql
CREATE TABLE IF NOT EXISTS resources (
    id bigserial PRIMARY KEY,
    code text NOT NULL,
    source text NOT NULL,
    name text,
    category text,
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (code, source)
);

CREATE TABLE IF NOT EXISTS resources_versions (
    id bigserial PRIMARY KEY,
    resource_id bigint NOT NULL REFERENCES resources (id),
    version_number integer NOT NULL,
    md5 text NOT NULL,
    status text NOT NULL DEFAULT 'draft',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (resource_id, version_number)
);
