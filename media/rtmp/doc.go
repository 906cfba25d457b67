// Package rtmp is the RTMP ingest: a listener that takes a stream from OBS,
// ffmpeg or any encoder that publishes to rtmp://host:1935/live/KEY.
//
// For each connection the server runs the RTMP handshake and the connect and
// publish commands (gortmplib does the protocol), takes KEY from the URL and
// asks Config.Authorize whether it may publish; a wrong key, a second
// publisher on a key that is already live, a client that wants to play, and
// a stream with a codec other than H.264 video and AAC audio are refused
// with an onStatus error the encoder shows, a log line, and the connection
// closed. An admitted publisher gets a media.Sink from Config.Publish; the
// server gives it the tracks once (H.264 with its SPS and PPS, AAC with its
// AudioSpecificConfig), then every access unit as a media.Sample, starting
// at the first keyframe:
//
//	TCP ─► handshake, connect, publish KEY ─► Authorize(KEY) ─► Publish(KEY) = sink
//	    ─► 2 s of analysis (tracks) ─► sink.Tracks ─► sink.Sample ... ─► Unpublish(KEY, why)
//
// Timestamps: DTS is the FLV timestamp, PTS adds the composition time
// offset (B-frames), both rebased so the first keyframe has DTS 0; a sample
// whose DTS goes back in time on its track is dropped. Every keyframe carries
// the current SPS and PPS in band, so a decoder can start at any keyframe.
// Wallclock is when the first media message arrived plus the media time
// since, never later than the sample's hand-over: the encoder's own pacing
// is a better capture clock than the arrival of data that gortmplib buffers
// while it looks for the tracks.
//
// Use:
//
//	srv, err := rtmp.New(rtmp.Config{Authorize: admit, Publish: publish, Unpublish: unpublish, Logger: log})
//	ln, err := net.Listen("tcp", ":1935")
//	go srv.Serve(ln) // returns ErrServerClosed after srv.Close()
//
// (media/publish's Publisher.ListenRTMP is the user: Authorize checks the
// stream key and admits the publisher, Publish hands it the publisher's
// sink, Unpublish tells it why the stream ended.)
//
// Connections are bounded (Config.MaxConns, 64) and so are one client's
// connections not yet admitted to publish (Config.MaxHandshakesPerClient,
// 4; a client is an IPv4 address or an IPv6 /64, internal/clientip), so a
// client that opens connections and stays silent in the handshake cannot
// hold every slot while the encoder that owns the key is refused.
//
// RTMP has no way to ask an encoder for a keyframe: the keyframe interval is
// the encoder's (set it to 1–2 s in OBS for low latency).
package rtmp
