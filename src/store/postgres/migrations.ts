// The PostgreSQL schema, as numbered migrations applied in order at start-up (migrate.ts
// runs them under an advisory lock, so two replicas starting at once apply each exactly
// once). A migration, once released, is never edited: a change is a new one at the end.
//
// Layout (issue 12): one row per top-level key of the document with the sequence that last
// wrote it, and one head row holding the sequence, so that "what changed since seq N" is
// one indexed range read. History mirrors history.db's layout (src/store/history-sqlite.ts).

export interface Migration {
  /** 1, 2, ...: the order they are applied in; the schema's version is the last one applied. */
  readonly version: number;
  /** What it is for, in words (logged when applied). */
  readonly name: string;
  /** Statements, run in one transaction. */
  readonly sql: string;
}

/** Channel of the NOTIFY sent by every commit; its payload is the new head sequence. */
export const NOTIFY_CHANNEL = "neolight_document";

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: "document rows and head sequence",
    // ? `json`, not `jsonb`: json keeps the posted text (key order, duplicate-free as we
    // parsed it, \u0000 in strings), so every replica serves the bytes the file mode would.
    // ? The head's `cluster` names this database's sequence: live-stream event ids carry it,
    // so an id from another database (a restore, a rebuilt standby) is never taken as ours.
    sql: `
CREATE TABLE neolight_head (
  id boolean PRIMARY KEY DEFAULT true CHECK (id),
  seq bigint NOT NULL,
  cluster text NOT NULL,
  updated_at timestamptz
);
INSERT INTO neolight_head (id, seq, cluster, updated_at)
  VALUES (true, 0, md5(random()::text || clock_timestamp()::text), NULL);
CREATE TABLE neolight_document (
  key text PRIMARY KEY,
  value json NOT NULL,
  seq bigint NOT NULL
);
CREATE INDEX neolight_document_seq ON neolight_document (seq);
`,
  },
  {
    version: 2,
    name: "history series, points and roll-ups",
    // ? Keyed (ts, series_id) like history.db: appends land at the end of the index and a
    // chart scans one range of time (issue 16).
    sql: `
CREATE TABLE neolight_history_series (
  id serial PRIMARY KEY,
  kind text NOT NULL,
  subject text NOT NULL,
  field text NOT NULL,
  peak boolean NOT NULL DEFAULT false,
  UNIQUE (kind, subject, field)
);
CREATE TABLE neolight_history_points (
  ts bigint NOT NULL,
  series_id integer NOT NULL,
  value double precision,
  label text,
  PRIMARY KEY (ts, series_id)
);
CREATE TABLE neolight_history_rollup_minute (
  bucket bigint NOT NULL,
  series_id integer NOT NULL,
  ts bigint NOT NULL,
  value double precision,
  label text,
  PRIMARY KEY (bucket, series_id)
);
CREATE TABLE neolight_history_rollup_hour (
  bucket bigint NOT NULL,
  series_id integer NOT NULL,
  ts bigint NOT NULL,
  value double precision,
  label text,
  PRIMARY KEY (bucket, series_id)
);
`,
  },
];
