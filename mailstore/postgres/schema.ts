/**
 * The PostgreSQL schema of the mail store, as an ordered list of migrations. Migration `i`
 * brings the database from version `i` to version `i + 1`; applied versions are rows of
 * `postern_schema`. Never edit a released migration: append a new one.
 *
 * The tables mirror the SQLite store (mailstore/sqlite/schema.ts), so that both keep the same
 * data model and `postern store copy` maps one onto the other column for column.
 */

/** Each entry is one migration's SQL, applied in its own transaction. */
export const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE meta (
    key   text PRIMARY KEY,
    value bigint NOT NULL
  );

  CREATE TABLE accounts (
    id            bigserial PRIMARY KEY,
    name          text NOT NULL UNIQUE,
    password_hash text
  );

  -- The mailbox row is the lock every writer of that mailbox takes (SELECT ... FOR UPDATE):
  -- it holds uidnext and highestmodseq, so UIDs and MODSEQs are handed out one transaction at
  -- a time, whichever node runs it. The counters are kept up to date by every write.
  CREATE TABLE mailboxes (
    id             bigserial PRIMARY KEY,
    account_id     bigint NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    name           text NOT NULL,
    uidvalidity    bigint NOT NULL,
    uidnext        bigint NOT NULL,
    highestmodseq  bigint NOT NULL,
    special_use    text,
    message_count  bigint NOT NULL DEFAULT 0,
    unseen_count   bigint NOT NULL DEFAULT 0,
    total_size     bigint NOT NULL DEFAULT 0,
    vanished_floor bigint NOT NULL DEFAULT 0,
    -- Deferrable so that RENAME can move a whole subtree in one statement.
    CONSTRAINT mailboxes_name_unique UNIQUE (account_id, name) DEFERRABLE INITIALLY IMMEDIATE
  );

  CREATE TABLE subscriptions (
    account_id bigint NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    name       text NOT NULL,
    PRIMARY KEY (account_id, name)
  );

  -- Raw messages live apart from the message rows so that listings never read them; a copy
  -- shares the blob. Large values are TOASTed (compressed and stored out of line).
  CREATE TABLE blobs (
    id      bigserial PRIMARY KEY,
    raw     bytea NOT NULL,
    summary text
  );

  CREATE TABLE search_texts (
    blob_id bigint PRIMARY KEY REFERENCES blobs (id) ON DELETE CASCADE,
    text    text NOT NULL
  );

  CREATE TABLE messages (
    mailbox_id    bigint NOT NULL REFERENCES mailboxes (id) ON DELETE CASCADE,
    uid           bigint NOT NULL,
    modseq        bigint NOT NULL,
    flags         text NOT NULL,
    seen          boolean NOT NULL,
    deleted       boolean NOT NULL,
    internal_date bigint NOT NULL,
    size          bigint NOT NULL,
    blob_id       bigint NOT NULL REFERENCES blobs (id),
    PRIMARY KEY (mailbox_id, uid)
  );
  CREATE INDEX messages_modseq ON messages (mailbox_id, modseq);
  CREATE INDEX messages_blob ON messages (blob_id);
  CREATE INDEX messages_deleted ON messages (mailbox_id, uid) WHERE deleted;

  -- Expunge records for QRESYNC VANISHED (RFC 7162, Section 3.2.10).
  CREATE TABLE expunged (
    mailbox_id  bigint NOT NULL REFERENCES mailboxes (id) ON DELETE CASCADE,
    uid         bigint NOT NULL,
    modseq      bigint NOT NULL,
    expunged_at bigint NOT NULL,
    PRIMARY KEY (mailbox_id, uid)
  );
  CREATE INDEX expunged_modseq ON expunged (mailbox_id, modseq);

  CREATE TABLE addresses (
    address    text PRIMARY KEY,
    account_id bigint NOT NULL REFERENCES accounts (id) ON DELETE CASCADE
  );
  CREATE INDEX addresses_account ON addresses (account_id);

  CREATE TABLE deliveries (
    key          text PRIMARY KEY,
    mailbox_id   bigint NOT NULL,
    uid          bigint NOT NULL,
    delivered_at bigint NOT NULL
  );
  CREATE INDEX deliveries_time ON deliveries (delivered_at);
  `,
  // Version 2: IMAP sessions of every node, for the per-user connection limit across nodes.
  // A node renews the expiry of its sessions while it runs; those of a node that died expire.
  `
  CREATE TABLE sessions (
    id         text PRIMARY KEY,
    account    text NOT NULL,
    node       text NOT NULL,
    expires_at bigint NOT NULL
  );
  CREATE INDEX sessions_account ON sessions (account, expires_at);
  CREATE INDEX sessions_node ON sessions (node);
  `,
  // Version 3: object ids (RFC 8474) and save dates (RFC 8514), as SQLite's version 4. New
  // mailboxes get their MAILBOXID from the column default; messages get theirs from the store.
  `
  ALTER TABLE mailboxes ADD COLUMN object_id text NOT NULL
    DEFAULT ('F' || substr(md5(random()::text || clock_timestamp()::text), 1, 24));
  CREATE UNIQUE INDEX mailboxes_object_id ON mailboxes (object_id);

  ALTER TABLE messages ADD COLUMN email_id text;
  ALTER TABLE messages ADD COLUMN thread_id text;
  ALTER TABLE messages ADD COLUMN save_date bigint;
  UPDATE messages m SET email_id = 'M' || l.id, thread_id = 'T' || l.id
  FROM (
    SELECT blob_id, substr(md5(random()::text || blob_id::text), 1, 24) AS id
    FROM (SELECT DISTINCT blob_id FROM messages) d
  ) l
  WHERE m.blob_id = l.blob_id;
  `,
];
