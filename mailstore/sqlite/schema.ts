/**
 * The SQLite schema of the mail store, as an ordered list of migrations. Migration `i` brings
 * the database from version `i` to version `i + 1`; the applied version lives in
 * `schema_version`. Never edit a released migration: append a new one.
 */

/** Each entry is one migration's SQL, applied in its own transaction. */
export const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value INTEGER NOT NULL
  ) WITHOUT ROWID;

  CREATE TABLE accounts (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    name          TEXT NOT NULL UNIQUE,
    password_hash TEXT
  );

  -- Counters (message_count, unseen_count, total_size) are kept up to date by every write, so
  -- SELECT/STATUS never scan messages. vanished_floor is the highest MODSEQ of pruned
  -- expunge records: below it, VANISHED is computed from UID gaps instead.
  CREATE TABLE mailboxes (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id     INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    name           TEXT NOT NULL,
    uidvalidity    INTEGER NOT NULL,
    uidnext        INTEGER NOT NULL,
    highestmodseq  INTEGER NOT NULL,
    special_use    TEXT,
    message_count  INTEGER NOT NULL DEFAULT 0,
    unseen_count   INTEGER NOT NULL DEFAULT 0,
    total_size     INTEGER NOT NULL DEFAULT 0,
    vanished_floor INTEGER NOT NULL DEFAULT 0,
    UNIQUE (account_id, name)
  );

  CREATE TABLE subscriptions (
    account_id INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    PRIMARY KEY (account_id, name)
  ) WITHOUT ROWID;

  -- Raw messages live apart from the message rows so that listings never read them; a copy
  -- shares the blob. summary is the caller's derived data for the same bytes.
  CREATE TABLE blobs (
    id      INTEGER PRIMARY KEY,
    raw     BLOB NOT NULL,
    summary TEXT
  );

  CREATE TABLE messages (
    mailbox_id    INTEGER NOT NULL REFERENCES mailboxes (id) ON DELETE CASCADE,
    uid           INTEGER NOT NULL,
    modseq        INTEGER NOT NULL,
    flags         TEXT NOT NULL,
    seen          INTEGER NOT NULL,
    deleted       INTEGER NOT NULL,
    internal_date INTEGER NOT NULL,
    size          INTEGER NOT NULL,
    blob_id       INTEGER NOT NULL REFERENCES blobs (id),
    PRIMARY KEY (mailbox_id, uid)
  ) WITHOUT ROWID;
  CREATE INDEX messages_modseq ON messages (mailbox_id, modseq);
  CREATE INDEX messages_blob ON messages (blob_id);
  CREATE INDEX messages_deleted ON messages (mailbox_id, uid) WHERE deleted = 1;

  -- Expunge records for QRESYNC VANISHED (RFC 7162, Section 3.2.10).
  CREATE TABLE expunged (
    mailbox_id  INTEGER NOT NULL REFERENCES mailboxes (id) ON DELETE CASCADE,
    uid         INTEGER NOT NULL,
    modseq      INTEGER NOT NULL,
    expunged_at INTEGER NOT NULL,
    PRIMARY KEY (mailbox_id, uid)
  ) WITHOUT ROWID;
  CREATE INDEX expunged_modseq ON expunged (mailbox_id, modseq);
  `,
  // Version 2: search text apart from the raw octets (a column after a large BLOB would make
  // SQLite walk the BLOB's overflow pages), keyed by blob so that copies share it. Rows
  // written before this version have none; SEARCH falls back to their summary.
  `
  CREATE TABLE search_texts (
    blob_id INTEGER PRIMARY KEY REFERENCES blobs (id) ON DELETE CASCADE,
    text    TEXT NOT NULL
  );
  `,
  // Version 3: delivery addresses of local accounts (LMTP recipients) and the dedup record of
  // recent deliveries, so that a message an MTA sends again after a lost reply is not stored
  // twice. The key covers the message and the recipient.
  `
  CREATE TABLE addresses (
    address    TEXT PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE
  ) WITHOUT ROWID;
  CREATE INDEX addresses_account ON addresses (account_id);

  CREATE TABLE deliveries (
    key          TEXT PRIMARY KEY,
    mailbox_id   INTEGER NOT NULL,
    uid          INTEGER NOT NULL,
    delivered_at INTEGER NOT NULL
  ) WITHOUT ROWID;
  CREATE INDEX deliveries_time ON deliveries (delivered_at);
  `,
  // Version 4: object ids (RFC 8474) and save dates (RFC 8514). A copy keeps its EMAILID and
  // THREADID, so messages already stored get one random id per blob (copies share blobs); each
  // is its own thread. Their save date stays NULL: it was never recorded.
  `
  ALTER TABLE mailboxes ADD COLUMN object_id TEXT;
  UPDATE mailboxes SET object_id = 'F' || lower(hex(randomblob(12)));
  CREATE UNIQUE INDEX mailboxes_object_id ON mailboxes (object_id);

  ALTER TABLE messages ADD COLUMN email_id TEXT;
  ALTER TABLE messages ADD COLUMN thread_id TEXT;
  ALTER TABLE messages ADD COLUMN save_date INTEGER;
  CREATE TEMP TABLE legacy_ids (blob_id INTEGER PRIMARY KEY, id TEXT NOT NULL);
  INSERT INTO legacy_ids (blob_id, id)
    SELECT blob_id, lower(hex(randomblob(12))) FROM (SELECT DISTINCT blob_id FROM messages);
  UPDATE messages SET
    email_id = 'M' || (SELECT id FROM legacy_ids l WHERE l.blob_id = messages.blob_id),
    thread_id = 'T' || (SELECT id FROM legacy_ids l WHERE l.blob_id = messages.blob_id);
  DROP TABLE legacy_ids;
  `,
  // Version 5: the sort text (`AppendInput.sortText`) apart from the search text, keyed by blob
  // like it, so that SORT and THREAD load the keys of a large mailbox without reading every
  // body. Rows written before this version have none; SORT falls back to their search text.
  `
  CREATE TABLE sort_texts (
    blob_id INTEGER PRIMARY KEY REFERENCES blobs (id) ON DELETE CASCADE,
    text    TEXT NOT NULL
  );
  `,
  // Version 6: blobs the blob writer (sqlite/_blob_writer.ts) committed whose message row is
  // not committed yet. The message's transaction removes the row; rows left by a crash in
  // between are swept, with their blobs, when the store opens (`since` in ms since the epoch).
  `
  CREATE TABLE pending_blobs (
    blob_id INTEGER PRIMARY KEY REFERENCES blobs (id) ON DELETE CASCADE,
    since   INTEGER NOT NULL
  );
  `,
  // Version 7: whether a blob holds a NUL octet (1) or not (0), found when it is stored, so that
  // a FETCH of a large body need not scan it for the NULs a plain literal must not carry (RFC
  // 9051, Section 4.3). NULL for blobs stored before: they are scanned as they are sent.
  `
  ALTER TABLE blobs ADD COLUMN nul INTEGER;
  `,
  // Version 8: a large message's octets as pieces in order (seq from 0), so that a FETCH can
  // send the first ones while the rest are read. A blob stored this way has its piece count in
  // `chunks` and an empty `raw`; one with `chunks` NULL is whole in `raw`, as before.
  `
  ALTER TABLE blobs ADD COLUMN chunks INTEGER;
  CREATE TABLE blob_chunks (
    blob_id INTEGER NOT NULL REFERENCES blobs (id) ON DELETE CASCADE,
    seq     INTEGER NOT NULL,
    data    BLOB NOT NULL,
    PRIMARY KEY (blob_id, seq)
  );
  `,
  // Version 9: listing snapshots (sqlite/_listing_snapshot.ts), a cache of large mailboxes'
  // listings packed into parts of 8,192 messages, every part of one snapshot at the state of its
  // listing key; the store brings one to the present from the rows changed and expunged since its
  // MODSEQ. A later migration that changes messages' UIDs, MODSEQs, flags, dates or sizes without
  // raising MODSEQs must empty it.
  `
  CREATE TABLE listing_snapshots (
    mailbox_id  INTEGER NOT NULL REFERENCES mailboxes (id) ON DELETE CASCADE,
    part        INTEGER NOT NULL,
    uidvalidity INTEGER NOT NULL,
    modseq      INTEGER NOT NULL,
    key         TEXT NOT NULL,
    flags       TEXT NOT NULL,
    data        BLOB NOT NULL,
    PRIMARY KEY (mailbox_id, part)
  );
  `,
  // Version 10: a snapshot part's UIDs and flag indexes (`keys`) apart from its other columns
  // (`data`), and before them in the row, so that a view opens from the keys without reading
  // the rest. Snapshots are a cache: the old ones are dropped, and rewritten as listings are made.
  `
  DROP TABLE listing_snapshots;
  CREATE TABLE listing_snapshots (
    mailbox_id  INTEGER NOT NULL REFERENCES mailboxes (id) ON DELETE CASCADE,
    part        INTEGER NOT NULL,
    uidvalidity INTEGER NOT NULL,
    modseq      INTEGER NOT NULL,
    key         TEXT NOT NULL,
    flags       TEXT NOT NULL,
    keys        BLOB NOT NULL,
    data        BLOB NOT NULL,
    PRIMARY KEY (mailbox_id, part)
  );
  `,
];
