package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/peerscope/peerscope/identity"
)

// Scheduled broadcasts and questions in advance (issue 15). A signed-in
// broadcaster announces a title and a time (POST /api/v1/schedules); the
// directory lists what is upcoming (GET /api/v1/schedules); the
// broadcaster's followers get reminders at the steps the broadcaster chose
// (the follow feed's "reminder" events, and ReminderTopic for their
// nodes); anyone signed in asks questions in advance and up-votes others'
// (…/schedules/{id}/questions), which the broadcaster reads ranked when
// live and ticks off once answered. All of it is new endpoints: nothing an
// existing one answers changed meaning.

// A reminder step, named as the page and the API name it.
const (
	StepWeek = "d7" // seven days before
	StepD3   = "d3" // three days before
	StepD1   = "d1" // the day before
	StepHour = "h1" // the hour before
)

// Steps are the reminder steps, the earliest first, with how long before
// the start each one is sent.
var Steps = []struct {
	Name   string
	Before time.Duration
}{
	{StepWeek, 7 * 24 * time.Hour},
	{StepD3, 3 * 24 * time.Hour},
	{StepD1, 24 * time.Hour},
	{StepHour, time.Hour},
}

// StepBefore is how long before the start step is sent (0, false for a
// name that is no step).
func StepBefore(step string) (time.Duration, bool) {
	for _, s := range Steps {
		if s.Name == step {
			return s.Before, true
		}
	}
	return 0, false
}

// Limits of a schedule and of a question.
const (
	MaxScheduleTitle = 140  // characters
	MaxDescription   = 1000 // characters
	MaxScheduleAhead = 365 * 24 * time.Hour
	MaxQuestion      = 280 // characters
)

// ScheduleRequest is what a signed-in broadcaster POSTs to
// /api/v1/schedules.
type ScheduleRequest struct {
	Title       string    `json:"title"`
	Description string    `json:"description,omitempty"`
	Starts      time.Time `json:"starts"`
	// Reminders are the steps (Step*) at which followers are reminded.
	Reminders []string `json:"reminders,omitempty"`
	// Tweet posts each reminder on the broadcaster's X account too (it
	// must have signed in with ScopeTweet).
	Tweet bool `json:"tweet,omitempty"`
}

// Check refuses a schedule that cannot be stored at now: each message says
// what to change.
func (r ScheduleRequest) Check(now time.Time) error {
	title := strings.TrimSpace(r.Title)
	switch {
	case title == "":
		return fmt.Errorf("%w: the title is empty", ErrBadRequest)
	case utf8.RuneCountInString(r.Title) > MaxScheduleTitle || !identity.ValidText(r.Title):
		return fmt.Errorf("%w: the title must be at most %d characters on one line", ErrBadRequest, MaxScheduleTitle)
	case !validDescription(r.Description):
		return fmt.Errorf("%w: the description must be at most %d characters of text", ErrBadRequest, MaxDescription)
	case r.Starts.IsZero():
		return fmt.Errorf("%w: the start time is missing", ErrBadRequest)
	case !r.Starts.After(now):
		return fmt.Errorf("%w: the start time is in the past: pick a time ahead", ErrBadRequest)
	case r.Starts.Sub(now) > MaxScheduleAhead:
		return fmt.Errorf("%w: the start time is more than a year ahead", ErrBadRequest)
	case len(r.Reminders) > len(Steps):
		return fmt.Errorf("%w: %d reminders; there are %d steps", ErrBadRequest, len(r.Reminders), len(Steps))
	}
	seen := map[string]bool{}
	for _, s := range r.Reminders {
		if _, ok := StepBefore(s); !ok {
			return fmt.Errorf("%w: reminder %q: want d7, d3, d1 or h1", ErrBadRequest, clip(s, 20))
		}
		if seen[s] {
			return fmt.Errorf("%w: reminder %s given twice", ErrBadRequest, s)
		}
		seen[s] = true
	}
	return nil
}

func validDescription(s string) bool {
	if !utf8.ValidString(s) || utf8.RuneCountInString(s) > MaxDescription {
		return false
	}
	for _, r := range s {
		if r != '\n' && (unicode.IsControl(r) || r == '\u2028' || r == '\u2029') {
			return false
		}
	}
	return true
}

// Scheduled is an upcoming broadcast as the directory lists it.
type Scheduled struct {
	ID          int64     `json:"id"`
	Who         *Account  `json:"who"`
	Title       string    `json:"title"`
	Description string    `json:"description,omitempty"`
	Starts      time.Time `json:"starts"`
	Reminders   []string  `json:"reminders"`
	Tweet       bool      `json:"tweet,omitempty"` // each reminder is posted on X too
	Questions   int       `json:"questions"`
	Created     time.Time `json:"created"`
}

// SchedulesResponse answers GET /api/v1/schedules.
type SchedulesResponse struct {
	Schedules []Scheduled `json:"schedules"`
}

// Reminder is a "reminder" event of the follow feed and a ReminderTopic
// notice: Schedule starts after Step (one of Step*).
type Reminder struct {
	Step     string     `json:"step"`
	Schedule *Scheduled `json:"schedule"`
}

// QuestionRequest is what a signed-in viewer POSTs to
// /api/v1/schedules/{id}/questions.
type QuestionRequest struct {
	Text string `json:"text"`
}

// Check refuses an empty or overlong question.
func (q QuestionRequest) Check() error {
	switch {
	case strings.TrimSpace(q.Text) == "":
		return fmt.Errorf("%w: the question is empty", ErrBadRequest)
	case utf8.RuneCountInString(q.Text) > MaxQuestion || !identity.ValidText(q.Text):
		return fmt.Errorf("%w: a question must be at most %d characters on one line", ErrBadRequest, MaxQuestion)
	}
	return nil
}

// Question is one question in advance, with its votes.
type Question struct {
	ID       int64     `json:"id"`
	Who      *Account  `json:"who"`
	Text     string    `json:"text"`
	Votes    int       `json:"votes"`
	Answered bool      `json:"answered"`
	Created  time.Time `json:"created"`
}

// QuestionsResponse answers GET /api/v1/schedules/{id}/questions: the
// questions ranked by votes, then by who asked first.
type QuestionsResponse struct {
	Questions []Question `json:"questions"`
}

// Schedule announces an upcoming broadcast of the node's account.
func (c *Client) Schedule(ctx context.Context, r ScheduleRequest) (Scheduled, error) {
	var out Scheduled
	err := c.do(ctx, http.MethodPost, "/api/v1/schedules", r, true, &out)
	return out, err
}

// CancelSchedule withdraws one of the account's schedules.
func (c *Client) CancelSchedule(ctx context.Context, id int64) error {
	return c.do(ctx, http.MethodDelete, "/api/v1/schedules/"+strconv.FormatInt(id, 10), nil, true, nil)
}

// Upcoming lists the upcoming broadcasts, soonest first; of one account
// (its key) when account is not "".
func (c *Client) Upcoming(ctx context.Context, account string) ([]Scheduled, error) {
	return c.Schedules(ctx, ScheduleQuery{Account: account})
}

// ScheduleQuery selects upcoming broadcasts (GET
// /api/v1/schedules?account=&q=&followed=), soonest first; the bootstrap
// filters, so what is asked for is found beyond the first 200.
type ScheduleQuery struct {
	Account string // one account's ("provider:account"); "": everyone's
	// Text keeps those whose title, handle or name contain it
	// (case-insensitive for ASCII; at most 100 characters).
	Text string
	// Followed keeps those of accounts the signing node's account
	// follows: the request is signed.
	Followed bool
}

// Schedules lists upcoming broadcasts as q selects.
func (c *Client) Schedules(ctx context.Context, q ScheduleQuery) ([]Scheduled, error) {
	v := url.Values{}
	if q.Account != "" {
		v.Set("account", q.Account)
	}
	if q.Text != "" {
		v.Set("q", q.Text)
	}
	if q.Followed {
		v.Set("followed", "1")
	}
	path := "/api/v1/schedules"
	if len(v) > 0 {
		path += "?" + v.Encode()
	}
	var out SchedulesResponse
	err := c.do(ctx, http.MethodGet, path, nil, q.Followed, &out)
	return out.Schedules, err
}

// Ask asks a question on an upcoming broadcast.
func (c *Client) Ask(ctx context.Context, schedule int64, text string) (Question, error) {
	var out Question
	err := c.do(ctx, http.MethodPost, questionsPath(schedule), QuestionRequest{Text: text}, true, &out)
	return out, err
}

// Vote up-votes a question (once per account: voting again changes
// nothing).
func (c *Client) Vote(ctx context.Context, schedule, question int64) (Question, error) {
	var out Question
	err := c.do(ctx, http.MethodPut, questionsPath(schedule)+"/"+strconv.FormatInt(question, 10)+"/vote", nil, true, &out)
	return out, err
}

// Questions lists a schedule's questions ranked by votes.
func (c *Client) Questions(ctx context.Context, schedule int64) ([]Question, error) {
	var out QuestionsResponse
	err := c.do(ctx, http.MethodGet, questionsPath(schedule), nil, false, &out)
	return out.Questions, err
}

// MarkAnswered ticks a question off (the broadcaster's only).
func (c *Client) MarkAnswered(ctx context.Context, schedule, question int64) (Question, error) {
	var out Question
	err := c.do(ctx, http.MethodPut, questionsPath(schedule)+"/"+strconv.FormatInt(question, 10)+"/answered", nil, true, &out)
	return out, err
}

func questionsPath(schedule int64) string {
	return "/api/v1/schedules/" + strconv.FormatInt(schedule, 10) + "/questions"
}

// Reminders over libp2p, as go-live notices are (live.go): the bootstrap
// publishes each reminder on ReminderTopic (GossipSub, signed by its host
// key); a node takes notices only from its bootstraps' peer IDs and keeps
// those of accounts its account follows. The notice carries the schedule
// and its broadcaster, not the followers. A topic of its own, so that
// nodes from before, which know LiveTopic's notices only, hear nothing new.

// ReminderTopic is the GossipSub topic of scheduled broadcasts' reminders.
const ReminderTopic = "/peerscope/reminder/1"

// MaxReminderNotice bounds a notice on ReminderTopic.
const MaxReminderNotice = 8 << 10

// EncodeReminderNotice is the ReminderTopic message of a reminder; an
// error if it would exceed MaxReminderNotice.
func EncodeReminderNotice(r Reminder) ([]byte, error) {
	b, err := json.Marshal(r)
	if err == nil && len(b) > MaxReminderNotice {
		err = fmt.Errorf("%w: reminder notice of %d bytes", ErrBadRequest, len(b))
	}
	return b, err
}

// DecodeReminderNotice parses and checks a ReminderTopic message: a known
// step, a schedule with a broadcaster's account and text within a
// schedule's limits.
func DecodeReminderNotice(b []byte) (Reminder, error) {
	var r Reminder
	if len(b) > MaxReminderNotice {
		return r, fmt.Errorf("%w: reminder notice of %d bytes", ErrBadRequest, len(b))
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return Reminder{}, fmt.Errorf("%w: reminder notice: %w", ErrBadRequest, err)
	}
	s := r.Schedule
	switch {
	case s == nil || s.Who == nil:
		return Reminder{}, fmt.Errorf("%w: reminder notice without a schedule or its broadcaster", ErrBadRequest)
	case s.ID <= 0:
		return Reminder{}, fmt.Errorf("%w: reminder notice: schedule ID %d", ErrBadRequest, s.ID)
	}
	if _, ok := StepBefore(r.Step); !ok {
		return Reminder{}, fmt.Errorf("%w: reminder notice: step %q", ErrBadRequest, clip(r.Step, 20))
	}
	// The schedule's own checks, as of just before its start.
	req := ScheduleRequest{Title: s.Title, Description: s.Description, Starts: s.Starts, Reminders: s.Reminders}
	if err := req.Check(s.Starts.Add(-time.Nanosecond)); err != nil {
		return Reminder{}, err
	}
	if err := CheckAccountKey(s.Who.Key()); err != nil {
		return Reminder{}, err
	}
	w := s.Who
	if len(w.Handle) > identity.MaxHandleLen || !identity.ValidText(w.Handle) || len(w.Name) > identity.MaxNameLen || !identity.ValidText(w.Name) ||
		len(w.Avatar) > identity.MaxAvatarLen || !identity.ValidText(w.Avatar) || (w.Avatar != "" && !strings.HasPrefix(w.Avatar, "https://")) {
		return Reminder{}, fmt.Errorf("%w: reminder notice: the broadcaster's profile", ErrBadRequest)
	}
	if s.Questions < 0 {
		return Reminder{}, fmt.Errorf("%w: reminder notice: %d questions", ErrBadRequest, s.Questions)
	}
	return r, nil
}
