-- The seed's Client model (section 8.1 of the PHI encryption guide), as a
-- plain table. The policy columns are text: an envelope is longer than its
-- plaintext (see `pgcrypt-proxy check`), so varchar limits must allow it.
CREATE TABLE IF NOT EXISTS workspaces (
    id   uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name text NOT NULL
);

CREATE TABLE IF NOT EXISTS clients (
    id                      uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    workspace_id            uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    first_name              text NOT NULL,        -- encrypted PII
    last_name               text NOT NULL,        -- encrypted PII
    email                   text,                 -- encrypted PII, equality search
    phone                   text,                 -- encrypted PII
    date_of_birth           date,                 -- PHI, not encrypted in V1
    address                 text,                 -- encrypted PII
    medical_history         text,                 -- encrypted PHI
    emergency_contact_name  text,                 -- encrypted PII
    emergency_contact_phone text,                 -- encrypted PII
    consent_status          boolean NOT NULL DEFAULT false,
    is_active               boolean NOT NULL DEFAULT true,
    notes                   text,
    tags                    varchar(100)[],
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX IF NOT EXISTS ix_clients_workspace_updated ON clients (workspace_id, updated_at);
CREATE INDEX IF NOT EXISTS ix_clients_workspace_active ON clients (workspace_id, is_active) WHERE is_active;
