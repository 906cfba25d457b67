package bootstrap

// migrations are the schema's history: each entry runs once, in order, in
// its own transaction, and is recorded in the migrations table. Never edit
// a released entry; append a new one.
var migrations = []string{
	// 1: accounts, sign-in, attestations, directory, follows.
	`
CREATE TABLE accounts (
	id       INTEGER PRIMARY KEY,
	provider TEXT NOT NULL,             -- "twitter", "phone"
	subject  TEXT NOT NULL,             -- the provider's stable account ID
	handle   TEXT NOT NULL DEFAULT '',
	name     TEXT NOT NULL DEFAULT '',
	avatar   TEXT NOT NULL DEFAULT '',
	created  INTEGER NOT NULL,          -- Unix ns
	updated  INTEGER NOT NULL,
	UNIQUE (provider, subject)
);

-- The provider's tokens of an account (Twitter: to import follows and to
-- post when the broadcaster opted in).
CREATE TABLE provider_tokens (
	account  INTEGER PRIMARY KEY REFERENCES accounts(id) ON DELETE CASCADE,
	access   TEXT NOT NULL,
	refresh  TEXT NOT NULL DEFAULT '',
	scopes   TEXT NOT NULL DEFAULT '',
	expires  INTEGER NOT NULL DEFAULT 0
);

-- A session binds a peer (a node's libp2p key, proven by a signature) to
-- the account it signed in as.
CREATE TABLE sessions (
	peer     TEXT PRIMARY KEY,
	account  INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
	created  INTEGER NOT NULL,
	expires  INTEGER NOT NULL
);
CREATE INDEX sessions_account ON sessions(account);

-- OAuth 2.0 authorization requests in flight: single use, with an expiry.
CREATE TABLE oauth_states (
	state    TEXT PRIMARY KEY,
	peer     TEXT NOT NULL,
	verifier TEXT NOT NULL,             -- the PKCE code verifier
	scopes   TEXT NOT NULL,
	created  INTEGER NOT NULL,
	expires  INTEGER NOT NULL
);

-- Phone sign-up: one pending code per number (by its keyed hash), its
-- failed attempts and the sends in the current window.
CREATE TABLE phone_codes (
	phone        TEXT PRIMARY KEY,      -- keyed hash of the E.164 number
	peer         TEXT NOT NULL,
	code         BLOB NOT NULL,         -- keyed hash of the code
	expires      INTEGER NOT NULL,
	attempts     INTEGER NOT NULL DEFAULT 0,
	sends        INTEGER NOT NULL DEFAULT 0,
	window_start INTEGER NOT NULL,
	locked_until INTEGER NOT NULL DEFAULT 0
);

-- Every attestation issued, as signed.
CREATE TABLE attestations (
	id       INTEGER PRIMARY KEY,
	account  INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
	peer     TEXT NOT NULL,
	issued   INTEGER NOT NULL,
	expires  INTEGER NOT NULL,
	issuer   BLOB NOT NULL,
	signed   BLOB NOT NULL              -- identity.Attestation.Marshal
);
CREATE INDEX attestations_peer ON attestations(peer, expires);

-- The directory: one row per broadcast, the announcement as signed by the
-- broadcaster's key.
CREATE TABLE broadcasts (
	id             TEXT PRIMARY KEY,    -- "<broadcaster peer ID>.<nonce>"
	broadcaster    TEXT NOT NULL,
	account        INTEGER REFERENCES accounts(id) ON DELETE SET NULL,
	title          TEXT NOT NULL DEFAULT '',
	link           TEXT NOT NULL,
	private        INTEGER NOT NULL DEFAULT 0,
	started        INTEGER NOT NULL,
	ended          INTEGER NOT NULL DEFAULT 0,   -- 0: live
	viewers        INTEGER NOT NULL DEFAULT 0,
	replay_viewers INTEGER NOT NULL DEFAULT 0,
	version        INTEGER NOT NULL,
	updated        INTEGER NOT NULL,
	replay         TEXT NOT NULL DEFAULT '',     -- the replay's manifest reference, '' if none
	replay_expires INTEGER NOT NULL DEFAULT 0,
	tweeted        INTEGER NOT NULL DEFAULT 0,
	signed         BLOB NOT NULL
);
CREATE INDEX broadcasts_live ON broadcasts(ended, started);
CREATE INDEX broadcasts_replay ON broadcasts(replay_expires);

-- Follows are by account key ("twitter:1234"), so one can follow someone
-- who has not signed in here yet.
CREATE TABLE follows (
	follower INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
	followee TEXT NOT NULL,
	created  INTEGER NOT NULL,
	PRIMARY KEY (follower, followee)
);
CREATE INDEX follows_followee ON follows(followee);

-- Suggestions imported from the provider (who one follows on Twitter).
CREATE TABLE suggestions (
	account  INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
	followee TEXT NOT NULL,
	handle   TEXT NOT NULL DEFAULT '',
	name     TEXT NOT NULL DEFAULT '',
	avatar   TEXT NOT NULL DEFAULT '',
	imported INTEGER NOT NULL,
	PRIMARY KEY (account, followee)
);

-- Reserved for private broadcasts (a later issue): who may watch, and the
-- broadcast's content key, escrowed wrapped so that the bootstrap releases
-- it only to an authenticated identity on the audience list. Nothing
-- writes these tables yet; they are here so the schema's shape is settled.
CREATE TABLE audiences (
	broadcast TEXT NOT NULL REFERENCES broadcasts(id) ON DELETE CASCADE,
	member    TEXT NOT NULL,            -- account key
	added     INTEGER NOT NULL,
	PRIMARY KEY (broadcast, member)
);
CREATE TABLE escrowed_keys (
	broadcast TEXT PRIMARY KEY REFERENCES broadcasts(id) ON DELETE CASCADE,
	epoch     INTEGER NOT NULL DEFAULT 0,
	wrapped   BLOB NOT NULL,
	created   INTEGER NOT NULL,
	expires   INTEGER NOT NULL
);
`,
	// 2: issue 12's trust — signed requests' nonces kept durably, sign-ins
	// redeemed by the node that started them, revocations.
	`
-- The nonces of accepted signed requests, by the bucket of their signed
-- time: a request captured before a restart is still refused after it.
-- Buckets older than the clock skew allows are deleted.
CREATE TABLE nonces (
	k       BLOB PRIMARY KEY,           -- SHA-256(peer, nonce), 16 bytes
	bucket  INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX nonces_bucket ON nonces(bucket);

-- Where the node that started an OAuth sign-in wants the browser sent back
-- (its own page on loopback), if anywhere.
ALTER TABLE oauth_states ADD COLUMN return_url TEXT NOT NULL DEFAULT '';

-- A sign-in the provider confirmed, waiting for the node that started it
-- to redeem it with the one-time code the browser was shown (or sent back
-- to that node with): no session or attestation exists before.
CREATE TABLE signins (
	id       INTEGER PRIMARY KEY,
	peer     TEXT NOT NULL,             -- the node that started it
	code     BLOB NOT NULL,             -- keyed hash of the one-time code
	account  INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
	scopes   TEXT NOT NULL DEFAULT '',
	created  INTEGER NOT NULL,
	expires  INTEGER NOT NULL
);
CREATE INDEX signins_peer ON signins(peer);

-- Wrong redemption codes per peer, so that guessing one costs.
CREATE TABLE signin_misses (
	peer     TEXT PRIMARY KEY,
	misses   INTEGER NOT NULL,
	window   INTEGER NOT NULL
);

-- The ID of each attestation issued (identity.Attestation.ID), to revoke
-- one, and whether it was revoked (it is then never handed out again).
ALTER TABLE attestations ADD COLUMN aid TEXT NOT NULL DEFAULT '';
ALTER TABLE attestations ADD COLUMN revoked INTEGER NOT NULL DEFAULT 0;
CREATE INDEX attestations_aid ON attestations(aid);
CREATE INDEX attestations_account ON attestations(account);

-- What the bootstrap withdrew before its expiry, published signed in the
-- trust statement until everything an entry covers has expired.
CREATE TABLE revocations (
	id          INTEGER PRIMARY KEY,
	attestation TEXT NOT NULL DEFAULT '',
	peer        TEXT NOT NULL DEFAULT '',
	account     TEXT NOT NULL DEFAULT '',   -- provider:subject
	before      INTEGER NOT NULL DEFAULT 0,
	until       INTEGER NOT NULL,
	created     INTEGER NOT NULL,
	reason      TEXT NOT NULL DEFAULT ''
);
CREATE INDEX revocations_until ON revocations(until);
`,
	// 3: phone codes per number and peer: a resend does not reset the
	// attempts, and one peer's guesses lock that peer, not the number.
	`
DROP TABLE phone_codes;

-- A number (keyed hash): its window, the codes sent to it and the wrong
-- attempts at them in the window (all peers), and until when it is
-- guarded (its codes are long: guessing them is hopeless).
CREATE TABLE phone_numbers (
	phone         TEXT PRIMARY KEY,
	window_start  INTEGER NOT NULL,
	sends         INTEGER NOT NULL DEFAULT 0,
	wrong         INTEGER NOT NULL DEFAULT 0,
	guarded_until INTEGER NOT NULL DEFAULT 0
);

-- A peer's pending code for a number, the codes sent and the wrong
-- attempts in its window, and its lock (that peer's only).
CREATE TABLE phone_codes (
	phone        TEXT NOT NULL,
	peer         TEXT NOT NULL,
	code         BLOB NOT NULL,         -- keyed hash of the code; empty: none pending
	expires      INTEGER NOT NULL,
	attempts     INTEGER NOT NULL DEFAULT 0,
	sends        INTEGER NOT NULL DEFAULT 0,
	window_start INTEGER NOT NULL,
	locked_until INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (phone, peer)
);
`,
	// 4: the network (IPv4 address, IPv6 /64) each listing was made from,
	// for the cap on anonymous live listings per network.
	`
ALTER TABLE broadcasts ADD COLUMN network TEXT NOT NULL DEFAULT '';
CREATE INDEX broadcasts_network ON broadcasts(network, ended, updated);
CREATE INDEX broadcasts_account ON broadcasts(account, ended, updated);
`,
	// 5: replay views that signed-in accounts made, apart from the rest.
	`
ALTER TABLE broadcasts ADD COLUMN replay_viewers_identified INTEGER NOT NULL DEFAULT 0;
`,
	// 6: issue 13's private-audience keys. The bootstrap holds device keys,
	// rosters and wrapped bundles, all signed by others and kept as their
	// bytes; it never holds a content key, so the escrow reserved in 1 goes.
	`
DROP TABLE escrowed_keys;

-- Audience device keys (audience.DeviceKey, as the device signed it), and
-- the bootstrap's attestation of each to the account its peer was signed
-- in as when it published it. A peer has one: a new key replaces its old.
CREATE TABLE device_keys (
	fingerprint BLOB PRIMARY KEY,       -- audience.Fingerprint, 32 bytes
	account     INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
	peer        TEXT NOT NULL,
	signed      BLOB NOT NULL,          -- audience.DeviceKey.Marshal, unchanged
	attestation BLOB NOT NULL,          -- api.Signed DeviceAttestation, JSON
	created     INTEGER NOT NULL,
	expires     INTEGER NOT NULL
);
CREATE INDEX device_keys_account ON device_keys(account, expires);
CREATE INDEX device_keys_peer ON device_keys(peer);

-- The newest roster of each private broadcast, as the broadcaster signed
-- it; its version only grows. Its accounts are in audiences (1), its
-- devices in roster_devices, both replaced with it in one transaction.
CREATE TABLE rosters (
	broadcast TEXT PRIMARY KEY REFERENCES broadcasts(id) ON DELETE CASCADE,
	version   INTEGER NOT NULL,
	signed    BLOB NOT NULL,
	updated   INTEGER NOT NULL
);
CREATE INDEX audiences_member ON audiences(member);
CREATE TABLE roster_devices (
	broadcast   TEXT NOT NULL REFERENCES broadcasts(id) ON DELETE CASCADE,
	fingerprint BLOB NOT NULL,          -- what a bundle put is checked by
	peer        TEXT NOT NULL,          -- what a bundle fetch is checked by
	PRIMARY KEY (broadcast, fingerprint, peer)
) WITHOUT ROWID;
CREATE INDEX roster_devices_peer ON roster_devices(broadcast, peer);

-- The mailbox: epoch secrets wrapped for one device key each
-- (audience.Bundle, as signed), gone with their broadcast.
CREATE TABLE bundles (
	broadcast TEXT NOT NULL REFERENCES broadcasts(id) ON DELETE CASCADE,
	recipient BLOB NOT NULL,            -- the device key's fingerprint
	epoch     INTEGER NOT NULL,
	signed    BLOB NOT NULL,
	created   INTEGER NOT NULL,
	account   INTEGER NOT NULL,         -- the broadcaster's, whose quota it counts against
	size      INTEGER NOT NULL,         -- length(signed), summed from the index alone
	PRIMARY KEY (broadcast, recipient, epoch)
) WITHOUT ROWID;
CREATE INDEX bundles_account ON bundles(account, size);

-- Device keys are asked for by handle too.
CREATE INDEX accounts_handle ON accounts(handle);

-- Saved audiences: a named list of account keys per account.
CREATE TABLE audience_groups (
	account INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
	name    TEXT NOT NULL,
	members TEXT NOT NULL,              -- JSON array of account keys
	updated INTEGER NOT NULL,
	PRIMARY KEY (account, name)
);
`,
	// 7: membership tokens, one per device peer of a private broadcast (the
	// newest the broadcaster left), handed only to the peer they name.
	`
CREATE TABLE tokens (
	broadcast      TEXT NOT NULL REFERENCES broadcasts(id) ON DELETE CASCADE,
	peer           TEXT NOT NULL,
	roster_version INTEGER NOT NULL,
	expires        INTEGER NOT NULL,    -- Unix ns, the token's own
	signed         BLOB NOT NULL,       -- audience.Token.Marshal, unchanged
	created        INTEGER NOT NULL,
	PRIMARY KEY (broadcast, peer)
) WITHOUT ROWID;
`,
	// 8: scheduled broadcasts, their reminders, and questions in advance
	// with their votes (issue 15). A schedule's questions go with it.
	`
CREATE TABLE schedules (
	id          INTEGER PRIMARY KEY,
	account     INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
	title       TEXT NOT NULL,
	description TEXT NOT NULL DEFAULT '',
	starts      INTEGER NOT NULL,       -- Unix ns
	reminders   INTEGER NOT NULL,       -- bit set of the chosen steps (api.Steps' order)
	sent        INTEGER NOT NULL DEFAULT 0, -- bit set of the steps done (sent or passed)
	tweet       INTEGER NOT NULL DEFAULT 0, -- each reminder posted on X too
	created     INTEGER NOT NULL
);
CREATE INDEX schedules_starts ON schedules(starts);
CREATE INDEX schedules_account ON schedules(account, starts);
CREATE TABLE questions (
	id       INTEGER PRIMARY KEY,
	schedule INTEGER NOT NULL REFERENCES schedules(id) ON DELETE CASCADE,
	account  INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
	text     TEXT NOT NULL,
	votes    INTEGER NOT NULL DEFAULT 0,
	answered INTEGER NOT NULL DEFAULT 0,
	created  INTEGER NOT NULL
);
CREATE INDEX questions_schedule ON questions(schedule, votes);
CREATE INDEX questions_account ON questions(account, created);
CREATE TABLE question_votes (
	question INTEGER NOT NULL REFERENCES questions(id) ON DELETE CASCADE,
	account  INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
	PRIMARY KEY (question, account)
) WITHOUT ROWID;
`,
	// 9: an anonymous broadcaster's profile lists its broadcasts by peer
	// (issue 15).
	`
CREATE INDEX broadcasts_broadcaster ON broadcasts(broadcaster, ended);
`,
	// 10: the coarse location a broadcaster chose to share, for the
	// directory's map (issue 15); NULL when not shared, as in every
	// listing made before.
	`
ALTER TABLE broadcasts ADD COLUMN lat REAL;
ALTER TABLE broadcasts ADD COLUMN lon REAL;
`,
	// 11: a still of the live broadcast for its card (issue 15): its tag
	// (what listings carry), the JPEG (read only by its own route) and
	// when it came; none in every listing made before.
	`
ALTER TABLE broadcasts ADD COLUMN thumb TEXT NOT NULL DEFAULT '';
ALTER TABLE broadcasts ADD COLUMN thumb_jpeg BLOB;
ALTER TABLE broadcasts ADD COLUMN thumb_at INTEGER NOT NULL DEFAULT 0;
`,
	// 12: handles are looked up whatever their case, as X's are
	// (@Alice is @alice); the stored handle keeps the case it was shown
	// with. lower() folds ASCII only on SQLite, which is all an X handle
	// holds; a phone account's masked handle has no letters. An index on
	// the expression, not a collation, so that PostgreSQL reads it as is.
	`
CREATE INDEX accounts_handle_lower ON accounts(lower(handle));
`,
	// 13: federation (issue 16): the public live entries read from the
	// communities this bootstrap federates with, each as its broadcaster
	// signed it, by the community it came from; apart from broadcasts,
	// so that they are never exported again.
	`
CREATE TABLE federated (
	origin      TEXT NOT NULL,          -- the community's bootstrap URL, as configured
	origin_id   TEXT NOT NULL,          -- its fingerprint: what the announcement is signed for
	id          TEXT NOT NULL,
	broadcaster TEXT NOT NULL,
	title       TEXT NOT NULL,
	link        TEXT NOT NULL,
	started     INTEGER NOT NULL,
	viewers     INTEGER NOT NULL,
	version     INTEGER NOT NULL,
	signed_at   INTEGER NOT NULL,       -- when the broadcaster signed it, Unix ns: live while within LiveTTL
	lat         REAL,
	lon         REAL,
	record      BLOB NOT NULL,          -- api.SignedListing, JSON, as verified
	PRIMARY KEY (origin, id)
);
CREATE INDEX federated_started ON federated(started);
CREATE INDEX federated_id ON federated(id, signed_at);
`,
	// 14: the key ring, on PostgreSQL (issue 16: replicas on one
	// database serve one identity): what the key file holds, secrets and
	// all, in one row, and a version each rotation or revocation raises,
	// which every replica polls (keys_db.go). SQLite keeps its key file
	// and leaves this empty.
	`
CREATE TABLE key_ring (
	slot    INTEGER PRIMARY KEY CHECK (slot = 1),
	ring    BLOB NOT NULL,              -- the key file's JSON (keyFile): seeds and the secret
	version INTEGER NOT NULL,           -- 1, raised by each change
	updated INTEGER NOT NULL            -- Unix ns
);
`,
	// 15: replicas (issue 16): each bootstrap process on the database
	// says which libp2p peer it is and where, every ReplicaEvery, so that
	// the others connect to it and keep it in their DHT routing tables
	// (replica_peers.go). Rows unseen for replicaTTL are ignored and deleted.
	// SQLite's single process leaves it empty.
	`
CREATE TABLE replicas (
	peer  TEXT PRIMARY KEY,             -- libp2p peer ID
	addrs TEXT NOT NULL,                -- JSON array of multiaddrs, each ending in /p2p/<peer>
	seen  INTEGER NOT NULL              -- Unix ns of its last heartbeat
);
`,
}
