package community

import (
	"net/http"

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
