package whip

import (
	"encoding/hex"
	"fmt"
	"slices"
	"strings"

	"github.com/pion/sdp/v3"
)

// H.264 as Peerscope takes it from browsers: packetization-mode 1 and the
// baseline family (profile_idc 0x42), which every browser and phone
// encodes and every player decodes. The constraint byte picks constrained
// baseline (e0, c0) or baseline (00); the level is the sender's.
var h264Profiles = []string{"42e01f", "42c01f", "42001f"}

// offerInfo is what inspectOffer learns from an SDP offer.
type offerInfo struct {
	h264        bool     // a video section offers H.264 we take
	opus        bool     // an audio section offers Opus
	videoCodecs []string // every video codec offered, for error messages
}

// inspectOffer parses an offer and checks what it can carry, before any
// WebRTC machinery sees it.
func inspectOffer(raw []byte) (offerInfo, error) {
	var info offerInfo
	var sd sdp.SessionDescription
	if err := sd.UnmarshalString(string(raw)); err != nil {
		return info, err
	}
	if len(sd.MediaDescriptions) == 0 {
		return info, fmt.Errorf("no media sections")
	}
	for _, md := range sd.MediaDescriptions {
		codecs := map[string]string{} // payload type -> encoding name
		fmtps := map[string]string{}
		for _, a := range md.Attributes {
			pt, rest, _ := strings.Cut(a.Value, " ")
			switch a.Key {
			case "rtpmap":
				name, _, _ := strings.Cut(rest, "/")
				codecs[pt] = strings.ToUpper(name)
			case "fmtp":
				fmtps[pt] = rest
			}
		}
		switch md.MediaName.Media {
		case "video":
			for _, pt := range md.MediaName.Formats {
				name := codecs[pt]
				if name == "" || name == "RTX" || name == "RED" || name == "ULPFEC" || name == "FLEXFEC-03" {
					continue
				}
				if !slices.Contains(info.videoCodecs, name) {
					info.videoCodecs = append(info.videoCodecs, name)
				}
				if name == "H264" && h264Acceptable(fmtps[pt]) {
					info.h264 = true
				}
			}
		case "audio":
			for _, pt := range md.MediaName.Formats {
				if codecs[pt] == "OPUS" {
					info.opus = true
				}
			}
		}
	}
	return info, nil
}

// h264Acceptable reports whether an H.264 fmtp line is one we take.
func h264Acceptable(fmtp string) bool {
	params := map[string]string{}
	for kv := range strings.SplitSeq(fmtp, ";") {
		k, v, _ := strings.Cut(strings.TrimSpace(kv), "=")
		params[strings.ToLower(k)] = strings.ToLower(v)
	}
	if params["packetization-mode"] != "1" {
		return false
	}
	plid, err := hex.DecodeString(params["profile-level-id"])
	if err != nil || len(plid) != 3 {
		return false
	}
	for _, p := range h264Profiles {
		want, _ := hex.DecodeString(p)
		if plid[0] == want[0] && plid[1] == want[1] {
			return true
		}
	}
	return false
}
