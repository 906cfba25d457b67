package web

import (
	"time"

	"github.com/peerscope/peerscope/chat"
)

// The JSON the chat API speaks.
type (
	authorJSON struct {
		Peer        string `json:"peer"`
		Anonymous   bool   `json:"anonymous"`
		Handle      string `json:"handle,omitempty"`
		Name        string `json:"name,omitempty"`
		Avatar      string `json:"avatar,omitempty"`
		Broadcaster bool   `json:"broadcaster,omitempty"`
		Moderator   bool   `json:"moderator,omitempty"`
	}
	commentJSON struct {
		ID       string     `json:"id"`
		Author   authorJSON `json:"author"`
		Text     string     `json:"text"`
		At       int64      `json:"at"`       // the stream's wallclock, Unix ms
		Received int64      `json:"received"` // Unix ms
		Deleted  bool       `json:"deleted,omitempty"`
	}
	heartsJSON struct {
		Count int    `json:"count"` // others' hearts since the last event (this node's pages float their own)
		Total uint64 `json:"total"`
	}
	moderatedJSON struct {
		Op     string `json:"op"`
		Target string `json:"target,omitempty"`
		On     bool   `json:"on"`
		Until  int64  `json:"until,omitempty"`
	}
	// A call is a sequence number (a clock in ns): past JavaScript's exact
	// integers, so it travels as a string.
	summonsJSON struct {
		Call     uint64 `json:"call,string"`
		Comment  string `json:"comment"`
		Text     string `json:"text"`
		Deadline int64  `json:"deadline"`
	}
	reportedJSON struct {
		Comment string `json:"comment"`
		By      string `json:"by"`
	}
	verdictJSON struct {
		Call    uint64 `json:"call,string"`
		Comment string `json:"comment"`
		Guilty  bool   `json:"guilty"`
		For     int    `json:"for"`
		Against int    `json:"against"`
		Jurors  int    `json:"jurors"`
	}
	viewersJSON struct {
		Live       int          `json:"live"`
		Hearts     uint64       `json:"hearts"`
		Anonymous  int          `json:"anonymous,omitempty"`
		Identified []authorJSON `json:"identified,omitempty"`
	}
)

func unixMilli(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func authorOf(a chat.Author) authorJSON {
	j := authorJSON{Peer: a.Peer.String(), Anonymous: a.Identity == nil, Broadcaster: a.Broadcaster, Moderator: a.Moderator}
	if a.Identity != nil {
		j.Handle, j.Name, j.Avatar = a.Identity.Handle, a.Identity.Name, a.Identity.Avatar
	}
	return j
}

func commentOf(c *chat.Comment) commentJSON {
	return commentJSON{ID: c.ID.String(), Author: authorOf(c.Author), Text: c.Text,
		At: unixMilli(c.At), Received: unixMilli(c.Received), Deleted: c.Deleted}
}

// eventJSON names an event for the stream and gives its JSON form;
// reports and verdicts are for the owner's page only.
func eventJSON(e chat.Event) (name string, v any, ownerOnly bool) {
	switch e := e.(type) {
	case *chat.Comment:
		return "comment", commentOf(e), false
	case *chat.Hearts:
		return "hearts", heartsJSON{Count: e.Count, Total: e.Total}, false
	case *chat.Moderated:
		return "moderated", moderatedJSON{Op: e.Op.String(), Target: e.Target, On: e.On, Until: unixMilli(e.Until)}, false
	case *chat.Summons:
		return "summons", summonsJSON{Call: e.Call, Comment: e.Comment.String(), Text: e.Text, Deadline: unixMilli(e.Deadline)}, false
	case *chat.Reported:
		return "reported", reportedJSON{Comment: e.Comment.String(), By: e.By.String()}, true
	case *chat.Verdict:
		return "verdict", verdictJSON{Call: e.Call, Comment: e.Comment.String(), Guilty: e.Guilty,
			For: e.For, Against: e.Against, Jurors: e.Jurors}, true
	}
	return "", nil, false
}

// moderationJSON is the moderation in force, as a page shows it.
type moderationJSON struct {
	Synced        bool             `json:"synced"`
	CommentsOff   bool             `json:"comments_off"`
	FollowersOnly bool             `json:"followers_only"`
	Follows       []string         `json:"follows,omitempty"`
	Blocked       []string         `json:"blocked,omitempty"` // users: "peer:<ID>" or "acct:<provider>:<account>"
	Muted         map[string]int64 `json:"muted,omitempty"`   // user → end, Unix ms (0: for the broadcast)
}
