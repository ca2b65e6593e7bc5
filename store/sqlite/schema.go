package sqlite

// migrations are applied in order, each once, tracked by PRAGMA
// user_version. A released migration is never edited: add a new one.
//
// Times are INTEGER milliseconds since the Unix epoch (UTC). Absent
// optional values are empty strings or 0 rather than NULL so that every column
// compares and indexes the same way.
var migrations = []string{
	`
CREATE TABLE contacts (
	tenant     TEXT NOT NULL,
	id         TEXT NOT NULL,
	channel    TEXT NOT NULL,
	address    TEXT NOT NULL,
	name       TEXT NOT NULL DEFAULT '',
	attributes TEXT NOT NULL DEFAULT '[]',
	profile_id TEXT NOT NULL DEFAULT '',
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL,
	PRIMARY KEY (tenant, id)
);
CREATE UNIQUE INDEX contacts_address ON contacts (tenant, channel, address);

CREATE TABLE queues (
	tenant TEXT NOT NULL,
	id     TEXT NOT NULL,
	name   TEXT NOT NULL,
	PRIMARY KEY (tenant, id)
);
CREATE UNIQUE INDEX queues_name ON queues (tenant, name);

CREATE TABLE interactions (
	tenant         TEXT NOT NULL,
	id             TEXT NOT NULL,
	channel        TEXT NOT NULL,
	thread_ref     TEXT NOT NULL,
	open_key       TEXT NOT NULL,
	contact_id     TEXT NOT NULL,
	profile_id     TEXT NOT NULL DEFAULT '',
	queue_id       TEXT NOT NULL DEFAULT '',
	queue_name     TEXT NOT NULL DEFAULT '',
	status         TEXT NOT NULL,
	closed_state   TEXT NOT NULL DEFAULT '',
	closed_at      INTEGER NOT NULL DEFAULT 0,
	last_id        TEXT NOT NULL DEFAULT '',
	last_body      TEXT NOT NULL DEFAULT '',
	last_direction TEXT NOT NULL DEFAULT '',
	last_author    TEXT NOT NULL DEFAULT '',
	last_at        INTEGER NOT NULL,
	created_at     INTEGER NOT NULL,
	updated_at     INTEGER NOT NULL,
	PRIMARY KEY (tenant, id)
);
CREATE UNIQUE INDEX interactions_open ON interactions (tenant, open_key);
CREATE INDEX interactions_contact ON interactions (tenant, contact_id, last_at DESC, id DESC);
CREATE INDEX interactions_profile ON interactions (tenant, profile_id, last_at DESC, id DESC);
CREATE INDEX interactions_recent ON interactions (tenant, last_at DESC, id DESC);
CREATE INDEX interactions_status ON interactions (tenant, status, last_at DESC, id DESC);

CREATE TABLE messages (
	tenant         TEXT NOT NULL,
	id             TEXT NOT NULL,
	interaction_id TEXT NOT NULL,
	direction      TEXT NOT NULL,
	body           TEXT NOT NULL,
	sent_at        INTEGER NOT NULL,
	author         TEXT NOT NULL DEFAULT '',
	created_at     INTEGER NOT NULL,
	PRIMARY KEY (tenant, id)
);
CREATE INDEX messages_interaction ON messages (tenant, interaction_id, sent_at, id);

CREATE TABLE preferences (
	tenant       TEXT NOT NULL,
	principal    TEXT NOT NULL,
	show_related INTEGER NOT NULL,
	updated_at   INTEGER NOT NULL,
	PRIMARY KEY (tenant, principal)
);
`,
	// 2: API keys. Only the SHA-256 of a key is stored; hash is unique so
	// authentication is one indexed lookup. Keys are looked up by hash
	// before the tenant is known, so hash and id are unique across tenants.
	`
CREATE TABLE api_keys (
	id           TEXT NOT NULL PRIMARY KEY,
	tenant       TEXT NOT NULL,
	hash         TEXT NOT NULL,
	role         TEXT NOT NULL,
	name         TEXT NOT NULL DEFAULT '',
	created_at   INTEGER NOT NULL,
	revoked_at   INTEGER NOT NULL DEFAULT 0,
	last_used_at INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX api_keys_hash ON api_keys (hash);
CREATE INDEX api_keys_tenant ON api_keys (tenant, created_at, id);
`,
	profileMigration,
	// 4: an interaction keeps at most the start of a long last message.
	// Rows written before keep their whole body and stay unmarked.
	`ALTER TABLE interactions ADD COLUMN last_partial INTEGER NOT NULL DEFAULT 0;`,
	identityMigration,
	evaluationPhasesMigration,
	// 7: when the file was last rebuilt (VACUUM) after an erasure, so a
	// crash between an erasure's commit and its rebuild is made good at
	// the next start.
	`CREATE TABLE maintenance (name TEXT NOT NULL PRIMARY KEY, at INTEGER NOT NULL);
CREATE INDEX erasures_at ON erasures (at);`,
}

// evaluationPhasesMigration is migration 6: a rule evaluation runs in two
// phases (store.EvaluationValues, then store.EvaluationProfiles) over the
// contacts its scope (store.EvaluationScope, JSON) touches, remembering the
// contacts its second phase decided ahead of its position (covered, a JSON
// list). A contact that lost its last value of the scope's attributes in
// the first phase is marked with the run's id (evaluation_mark). A run in
// progress from before is in its first phase with every contact in scope:
// it brings the values of the contacts it has not reached up to date,
// then decides every cluster; its total counts each contact twice.
const evaluationPhasesMigration = `
ALTER TABLE rule_evaluations ADD COLUMN phase TEXT NOT NULL DEFAULT 'VALUES';
ALTER TABLE rule_evaluations ADD COLUMN run TEXT NOT NULL DEFAULT '';
ALTER TABLE rule_evaluations ADD COLUMN scope TEXT NOT NULL DEFAULT '{"all":true}';
ALTER TABLE rule_evaluations ADD COLUMN covered TEXT NOT NULL DEFAULT '[]';
ALTER TABLE contacts ADD COLUMN evaluation_mark TEXT NOT NULL DEFAULT '';
UPDATE rule_evaluations SET total = 2 * total WHERE state = 'RUNNING';
`

// identityMigration is migration 5: profiles become a function of the
// facts (identity.Partition). Contacts' values are stored one row each
// (contact_values) with their provenance, values are counted for hub
// quarantine (value_stats), manual decisions are facts between contacts
// (decisions, renames), and suggestions, conflicts and history are kept
// for people to act on. The old linking tables are converted by
// migrateIdentity in the same transaction, and every tenant is
// re-evaluated from the facts once the server starts.
const identityMigration = `
ALTER TABLE contacts ADD COLUMN address_status TEXT NOT NULL DEFAULT 'VALID';
ALTER TABLE contacts ADD COLUMN first_interaction TEXT NOT NULL DEFAULT '';
ALTER TABLE contacts ADD COLUMN claims_sig TEXT NOT NULL DEFAULT '';
ALTER TABLE profiles ADD COLUMN anchor TEXT NOT NULL DEFAULT '';
ALTER TABLE profile_rules ADD COLUMN auto_merge TEXT NOT NULL DEFAULT '';
ALTER TABLE profile_rules ADD COLUMN max_contacts_per_value INTEGER NOT NULL DEFAULT 10;
ALTER TABLE rule_evaluations ADD COLUMN summary TEXT NOT NULL DEFAULT '{}';

CREATE TABLE contact_values (
	tenant         TEXT NOT NULL,
	key            TEXT NOT NULL,
	value          TEXT NOT NULL,
	contact_id     TEXT NOT NULL,
	rule_id        TEXT NOT NULL,
	source         TEXT NOT NULL,
	agent          INTEGER NOT NULL DEFAULT 0,
	interaction_id TEXT NOT NULL DEFAULT '',
	by_name        TEXT NOT NULL DEFAULT '',
	by_role        TEXT NOT NULL DEFAULT '',
	at             INTEGER NOT NULL,
	PRIMARY KEY (tenant, key, value, contact_id)
);
CREATE INDEX contact_values_contact ON contact_values (tenant, contact_id);

CREATE TABLE value_stats (
	tenant      TEXT NOT NULL,
	key         TEXT NOT NULL,
	value       TEXT NOT NULL,
	id          TEXT NOT NULL,
	contacts    INTEGER NOT NULL DEFAULT 0,
	state       TEXT NOT NULL DEFAULT 'AUTOMATIC',
	listed      INTEGER NOT NULL DEFAULT 0,
	quarantined INTEGER NOT NULL DEFAULT 0,
	updated_at  INTEGER NOT NULL,
	PRIMARY KEY (tenant, key, value)
);
CREATE INDEX value_stats_listed ON value_stats (tenant, listed, updated_at DESC, id DESC);

CREATE TABLE decisions (
	tenant       TEXT NOT NULL,
	id           TEXT NOT NULL,
	kind         TEXT NOT NULL,
	contact_a    TEXT NOT NULL,
	contact_b    TEXT NOT NULL,
	into_contact TEXT NOT NULL DEFAULT '',
	reason       TEXT NOT NULL DEFAULT '',
	by_name      TEXT NOT NULL DEFAULT '',
	by_role      TEXT NOT NULL DEFAULT '',
	at           INTEGER NOT NULL,
	PRIMARY KEY (tenant, id)
);
CREATE INDEX decisions_a ON decisions (tenant, contact_a);
CREATE INDEX decisions_b ON decisions (tenant, contact_b);

CREATE TABLE renames (
	tenant  TEXT NOT NULL,
	anchor  TEXT NOT NULL,
	name    TEXT NOT NULL,
	by_name TEXT NOT NULL DEFAULT '',
	by_role TEXT NOT NULL DEFAULT '',
	at      INTEGER NOT NULL,
	PRIMARY KEY (tenant, anchor)
);

CREATE TABLE profile_pairs (
	tenant     TEXT NOT NULL,
	id         TEXT NOT NULL,
	kind       TEXT NOT NULL,
	key        TEXT NOT NULL,
	value      TEXT NOT NULL,
	rule_id    TEXT NOT NULL DEFAULT '',
	contact_a  TEXT NOT NULL,
	contact_b  TEXT NOT NULL,
	source_a   TEXT NOT NULL,
	source_b   TEXT NOT NULL,
	reason     TEXT NOT NULL,
	created_at INTEGER NOT NULL,
	PRIMARY KEY (tenant, id)
);
CREATE INDEX profile_pairs_list ON profile_pairs (tenant, kind, created_at DESC, id DESC);
CREATE INDEX profile_pairs_a ON profile_pairs (tenant, contact_a);
CREATE INDEX profile_pairs_b ON profile_pairs (tenant, contact_b);

CREATE TABLE profile_events (
	tenant     TEXT NOT NULL,
	id         TEXT NOT NULL,
	kind       TEXT NOT NULL,
	profiles   TEXT NOT NULL DEFAULT '[]',
	contact_id TEXT NOT NULL DEFAULT '',
	key        TEXT NOT NULL DEFAULT '',
	value      TEXT NOT NULL DEFAULT '',
	by_name    TEXT NOT NULL DEFAULT '',
	by_role    TEXT NOT NULL DEFAULT '',
	at         INTEGER NOT NULL,
	PRIMARY KEY (tenant, id)
);
CREATE INDEX profile_events_contact ON profile_events (tenant, contact_id);
CREATE TABLE profile_event_refs (
	tenant     TEXT NOT NULL,
	profile_id TEXT NOT NULL,
	event_id   TEXT NOT NULL,
	PRIMARY KEY (tenant, profile_id, event_id)
);
CREATE INDEX profile_event_refs_event ON profile_event_refs (tenant, event_id);

CREATE TABLE aliases (
	tenant     TEXT NOT NULL,
	kind       TEXT NOT NULL,
	alias      TEXT NOT NULL,
	contact_id TEXT NOT NULL,
	PRIMARY KEY (tenant, kind, alias)
);
CREATE INDEX aliases_contact ON aliases (tenant, contact_id);

CREATE TABLE tenant_settings (
	tenant         TEXT NOT NULL PRIMARY KEY,
	default_region TEXT NOT NULL DEFAULT '',
	updated_at     INTEGER NOT NULL
);

CREATE TABLE erasures (
	tenant       TEXT NOT NULL,
	id           TEXT NOT NULL,
	subject      TEXT NOT NULL,
	reason       TEXT NOT NULL,
	by_name      TEXT NOT NULL DEFAULT '',
	by_role      TEXT NOT NULL DEFAULT '',
	at           INTEGER NOT NULL,
	contacts     INTEGER NOT NULL,
	interactions INTEGER NOT NULL,
	messages     INTEGER NOT NULL,
	PRIMARY KEY (tenant, id)
);
CREATE INDEX erasures_list ON erasures (tenant, at DESC, id DESC);

CREATE TABLE canonicalizations (
	tenant     TEXT NOT NULL PRIMARY KEY,
	state      TEXT NOT NULL,
	processed  INTEGER NOT NULL,
	total      INTEGER NOT NULL,
	merged     INTEGER NOT NULL DEFAULT 0,
	after_id   TEXT NOT NULL DEFAULT '',
	started_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL
);
`

// profileMigration is migration 3: profiles, their rules, identifiers,
// links, conflicts, merges and rule re-evaluations.
const profileMigration = `
ALTER TABLE contacts ADD COLUMN identifiers TEXT NOT NULL DEFAULT '[]';
CREATE INDEX contacts_profile ON contacts (tenant, profile_id, created_at, id);

CREATE TABLE profile_rules (
	tenant          TEXT NOT NULL,
	id              TEXT NOT NULL,
	attribute       TEXT NOT NULL,
	normalizer      TEXT NOT NULL,
	enabled         INTEGER NOT NULL,
	priority        INTEGER NOT NULL,
	max_per_profile INTEGER NOT NULL,
	blocked_values  TEXT NOT NULL DEFAULT '[]',
	default_region  TEXT NOT NULL DEFAULT '',
	deleted         INTEGER NOT NULL DEFAULT 0,
	created_at      INTEGER NOT NULL,
	updated_at      INTEGER NOT NULL,
	PRIMARY KEY (tenant, id)
);
CREATE UNIQUE INDEX profile_rules_attribute ON profile_rules (tenant, attribute);

CREATE TABLE profiles (
	tenant      TEXT NOT NULL,
	id          TEXT NOT NULL,
	custom_name TEXT NOT NULL DEFAULT '',
	auto_name   TEXT NOT NULL DEFAULT '',
	channels    TEXT NOT NULL DEFAULT '[]',
	identifiers TEXT NOT NULL DEFAULT '[]',
	contacts    INTEGER NOT NULL DEFAULT 0,
	merged_into TEXT NOT NULL DEFAULT '',
	created_at  INTEGER NOT NULL,
	updated_at  INTEGER NOT NULL,
	PRIMARY KEY (tenant, id)
);
CREATE INDEX profiles_merged ON profiles (tenant, merged_into);

CREATE TABLE identifiers (
	tenant     TEXT NOT NULL,
	key        TEXT NOT NULL,
	value      TEXT NOT NULL,
	profile_id TEXT NOT NULL,
	created_at INTEGER NOT NULL,
	PRIMARY KEY (tenant, key, value)
);
CREATE INDEX identifiers_profile ON identifiers (tenant, profile_id, key, value);

CREATE TABLE profile_links (
	tenant         TEXT NOT NULL,
	id             TEXT NOT NULL,
	profile_id     TEXT NOT NULL,
	contact_id     TEXT NOT NULL,
	reason         TEXT NOT NULL,
	key            TEXT NOT NULL DEFAULT '',
	value          TEXT NOT NULL DEFAULT '',
	rule_id        TEXT NOT NULL DEFAULT '',
	source         TEXT NOT NULL DEFAULT '',
	interaction_id TEXT NOT NULL DEFAULT '',
	by             TEXT NOT NULL DEFAULT '',
	linked_at      INTEGER NOT NULL,
	PRIMARY KEY (tenant, id)
);
CREATE INDEX profile_links_profile ON profile_links (tenant, profile_id, linked_at, id);
CREATE INDEX profile_links_contact ON profile_links (tenant, contact_id);

CREATE TABLE do_not_link (
	tenant     TEXT NOT NULL,
	contact_id TEXT NOT NULL,
	profile_id TEXT NOT NULL,
	by         TEXT NOT NULL DEFAULT '',
	created_at INTEGER NOT NULL,
	PRIMARY KEY (tenant, contact_id, profile_id)
);
CREATE INDEX do_not_link_profile ON do_not_link (tenant, profile_id, contact_id);

CREATE TABLE profile_conflicts (
	tenant      TEXT NOT NULL,
	id          TEXT NOT NULL,
	key         TEXT NOT NULL,
	value       TEXT NOT NULL,
	reason      TEXT NOT NULL,
	profile_a   TEXT NOT NULL,
	profile_b   TEXT NOT NULL,
	contact_id  TEXT NOT NULL,
	created_at  INTEGER NOT NULL,
	resolved_at INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (tenant, id)
);
CREATE INDEX profile_conflicts_open ON profile_conflicts (tenant, resolved_at, created_at DESC, id DESC);
CREATE INDEX profile_conflicts_all ON profile_conflicts (tenant, created_at DESC, id DESC);

CREATE TABLE merges (
	tenant TEXT NOT NULL,
	loser  TEXT NOT NULL,
	winner TEXT NOT NULL,
	by     TEXT NOT NULL DEFAULT '',
	at     INTEGER NOT NULL,
	PRIMARY KEY (tenant, loser)
);

CREATE TABLE rule_evaluations (
	tenant     TEXT NOT NULL PRIMARY KEY,
	state      TEXT NOT NULL,
	processed  INTEGER NOT NULL,
	total      INTEGER NOT NULL,
	after_id   TEXT NOT NULL DEFAULT '',
	started_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL
);
`
