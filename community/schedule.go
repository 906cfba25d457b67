package community

import (
	"context"
	"net/http"
	"time"

	"github.com/peerscope/peerscope/bootstrap/api"
)

// Scheduled broadcasts and questions in advance, from the directory page
// on the node's own machine: the node signs each request with its key, so
// they are made as its signed-in account.

// serveSchedule schedules a broadcast as this node's account.
func (c *Community) serveSchedule(w http.ResponseWriter, r *http.Request) {
	var req api.ScheduleRequest
	if !c.readForBootstrap(w, r, &req) {
		return
	}
	sc, err := c.client.Schedule(r.Context(), req)
	if err != nil {
		failAPI(w, err)
		return
	}
	writeJSON(w, sc)
}

// questionRef names a schedule and, for a vote or a tick, a question.
type questionRef struct {
	Schedule int64  `json:"schedule"`
	Question int64  `json:"question,omitempty"`
	Text     string `json:"text,omitempty"`
}

// serveCancelSchedule withdraws one of this node's account's schedules.
func (c *Community) serveCancelSchedule(w http.ResponseWriter, r *http.Request) {
	var req questionRef
	if !c.readForBootstrap(w, r, &req) {
		return
	}
	if err := c.client.CancelSchedule(r.Context(), req.Schedule); err != nil {
		failAPI(w, err)
		return
	}
	writeJSON(w, map[string]int64{"cancelled": req.Schedule})
}

func (c *Community) serveAsk(w http.ResponseWriter, r *http.Request) {
	c.questionCall(w, r, func(q questionRef) (api.Question, error) { return c.client.Ask(r.Context(), q.Schedule, q.Text) })
}

func (c *Community) serveVote(w http.ResponseWriter, r *http.Request) {
	c.questionCall(w, r, func(q questionRef) (api.Question, error) {
		return c.client.Vote(r.Context(), q.Schedule, q.Question)
	})
}

func (c *Community) serveAnswered(w http.ResponseWriter, r *http.Request) {
	c.questionCall(w, r, func(q questionRef) (api.Question, error) {
		return c.client.MarkAnswered(r.Context(), q.Schedule, q.Question)
	})
}

func (c *Community) questionCall(w http.ResponseWriter, r *http.Request, f func(questionRef) (api.Question, error)) {
	var req questionRef
	if !c.readForBootstrap(w, r, &req) {
		return
	}
	q, err := f(req)
	if err != nil {
		failAPI(w, err)
		return
	}
	writeJSON(w, q)
}

// studioAhead is how long before its start a scheduled broadcast's
// questions are the studio's: a broadcaster who goes live up to this early
// answers them.
const studioAhead = 12 * time.Hour

// ScheduledQuestions returns the scheduled broadcast of this node's
// account that a broadcast going live now answers — the soonest one the
// bootstrap still lists (until an hour after its start) starting within
// studioAhead — and its questions, ranked; a nil schedule when there is
// none (or the node is not signed in).
func (c *Community) ScheduledQuestions(ctx context.Context) (*api.Scheduled, []api.Question, error) {
	if c.client == nil {
		return nil, nil, ErrNoBootstrap
	}
	id, err := c.RefreshIdentity(ctx)
	if isNotFound(err) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	list, err := c.client.Upcoming(ctx, id.AccountKey())
	if err != nil {
		return nil, nil, err
	}
	for _, s := range list { // soonest first
		if s.Starts.After(c.clock.Now().Add(studioAhead)) {
			break
		}
		qs, err := c.client.Questions(ctx, s.ID)
		return &s, qs, err
	}
	return nil, nil, nil
}

// MarkAnswered ticks a question off, as this node's account (the
// broadcaster's).
func (c *Community) MarkAnswered(ctx context.Context, schedule, question int64) (api.Question, error) {
	if c.client == nil {
		return api.Question{}, ErrNoBootstrap
	}
	return c.client.MarkAnswered(ctx, schedule, question)
}
