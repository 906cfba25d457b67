// Package community is a node's side of its community bootstraps
// (package bootstrap, reached through bootstrap/api): what the node
// believes about identities, what it lists in the directory, the go-live
// notices it hears, and the directory page it serves. Package node builds
// one Community from its config and calls it; the community side asks the
// node only what its Node interface says (join a link, count replay views)
// and never imports it.
//
// How data flows through it:
//
//	trust:      New, then every TrustRefresh (30 s) ─► GET /api/v1/trust of every bootstrap
//	            (https, or its identity key pinned: URL#pin=…; info every 10 min)
//	            ─► Trust(): the union of their key sets and revocations, which every chat
//	            room takes as it changes (chat.Config.TrustSource)
//	identity:   a sign-in (Twitter: started here, redeemed here with the code the browser
//	            brought back or the person typed; or phone, through Handler)
//	            ─► Attestation(): carried by the node's comments and presence, dropped at a
//	            sign-out or when the trust no longer believes it
//	live:       node roots a broadcast ─► ListLive(ctx, Live) ─► PUT /api/v1/broadcasts/{id}
//	            signed with the node's key, renewed with its counts every ListingInterval,
//	            its end PUT when Live.Ended closes or the node closes
//	replays:    the manifest is signed ─► ListReplay ─► PUT …/{id}/replay (retried until the
//	            directory has the end) ─► ReplayViewed renews the replay's viewer count
//	go-live:    api.LiveTopic on the node's GossipSub ─► only from a bootstrap's peer,
//	            only accounts the node's account follows ─► Config.OnLive
//	reminders:  api.ReminderTopic, taken the same way ─► Config.OnReminder; the studio's
//	            ScheduledQuestions and MarkAnswered (schedule.go)
//	private:    a new attestation (and daily) ─► PUT /api/v1/device-keys (Config.DeviceKey);
//	            ResolveAudience: mutuals, groups, device keys, each attestation checked;
//	            Mailbox(): rosters, tokens, bundles over /api/v1/broadcasts/{id}/… (audience.go)
//	page:       Handler: /directory/ (package page), the first bootstrap's API proxied under
//	            /directory/api/v1/…, and /directory/api/node/… for what only the node can do
//	            (the node lets only its owner's pages reach those: internal/localapi)
//
// Also here: ParseBootstrapPeers and PeersFromInfo, which turn --bootstrap-peer
// addresses or bootstrap URLs into the libp2p peers the node keeps connected
// for NAT traversal.
package community
