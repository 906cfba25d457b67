package whip

import (
	"strings"
	"testing"
)

// chromeLikeOffer is the shape of Chromium's WHIP offer: VP8 first, then
// VP9, H.264 in several profiles, AV1; Opus. withH264=false leaves H.264 out.
func chromeLikeOffer(withH264 bool) string {
	video := "96 97 98 99"
	h264 := ""
	if withH264 {
		video += " 102 103 104 105 106 107"
		h264 = `a=rtpmap:102 H264/90000
a=rtcp-fb:102 nack pli
a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f
a=rtpmap:103 rtx/90000
a=fmtp:103 apt=102
a=rtpmap:104 H264/90000
a=fmtp:104 level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42001f
a=rtpmap:105 H264/90000
a=fmtp:105 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f
a=rtpmap:106 H264/90000
a=fmtp:106 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=4d001f
a=rtpmap:107 H264/90000
a=fmtp:107 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=64001f
`
	}
	sdp := `v=0
o=- 4215775240449105457 2 IN IP4 127.0.0.1
s=-
t=0 0
a=group:BUNDLE 0 1
a=extmap-allow-mixed
a=msid-semantic: WMS
m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8
c=IN IP4 0.0.0.0
a=rtcp:9 IN IP4 0.0.0.0
a=ice-ufrag:abcd
a=ice-pwd:abcdefghijklmnopqrstuvwx
a=ice-options:trickle
a=fingerprint:sha-256 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF
a=setup:actpass
a=mid:0
a=sendonly
a=rtcp-mux
a=rtpmap:111 opus/48000/2
a=fmtp:111 minptime=10;useinbandfec=1
a=rtpmap:63 red/48000/2
a=rtpmap:9 G722/8000
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
m=video 9 UDP/TLS/RTP/SAVPF ` + video + `
c=IN IP4 0.0.0.0
a=rtcp:9 IN IP4 0.0.0.0
a=ice-ufrag:abcd
a=ice-pwd:abcdefghijklmnopqrstuvwx
a=ice-options:trickle
a=fingerprint:sha-256 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF
a=setup:actpass
a=mid:1
a=sendonly
a=rtcp-mux
a=rtcp-rsize
a=rtpmap:96 VP8/90000
a=rtcp-fb:96 nack pli
a=rtpmap:97 rtx/90000
a=fmtp:97 apt=96
a=rtpmap:98 VP9/90000
a=fmtp:98 profile-id=0
a=rtpmap:99 AV1/90000
` + h264
	return strings.ReplaceAll(sdp, "\n", "\r\n")
}

func TestInspectOffer(t *testing.T) {
	info, err := inspectOffer([]byte(chromeLikeOffer(true)))
	if err != nil || !info.h264 || !info.opus {
		t.Fatalf("Chromium offer: %+v %v", info, err)
	}
	info, err = inspectOffer([]byte(chromeLikeOffer(false)))
	if err != nil || info.h264 || strings.Join(info.videoCodecs, ",") != "VP8,VP9,AV1" {
		t.Fatalf("VP8-first offer without H.264: %+v %v", info, err)
	}
	for _, bad := range []string{"", "hello", "v=0\r\n"} {
		if _, err := inspectOffer([]byte(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	for fmtp, want := range map[string]bool{
		"packetization-mode=1;profile-level-id=42e01f": true,
		"profile-level-id=42001F;packetization-mode=1": true,
		"packetization-mode=1;profile-level-id=42c034": true,
		"packetization-mode=0;profile-level-id=42e01f": false,
		"packetization-mode=1;profile-level-id=64001f": false,
		"packetization-mode=1":                         false,
		"packetization-mode=1;profile-level-id=zz":     false,
	} {
		if got := h264Acceptable(fmtp); got != want {
			t.Errorf("h264Acceptable(%q) = %v", fmtp, got)
		}
	}
}
