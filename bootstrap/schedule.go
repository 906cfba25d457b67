package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/peerscope/peerscope/bootstrap/api"
	"github.com/peerscope/peerscope/identity"
)

// Scheduled broadcasts (issue 15): a signed-in broadcaster announces a
// title and a time, the directory lists it under Upcoming, the
// broadcaster's followers are reminded at the steps chosen (D-7, D-3, D-1,
// the hour before) on their follow feeds and through OnLive, and anyone
// signed in asks questions in advance and up-votes others', which the
// broadcaster reads ranked when live and ticks off.
//
//	POST   /api/v1/schedules                               schedule (signed, signed in)
//	GET    /api/v1/schedules[?account=KEY&q=TEXT&followed=1]
//	                                                       upcoming, soonest first (followed: signed,
//	                                                       of whom the account follows)
//	GET    /api/v1/schedules/{id}                          one
//	DELETE /api/v1/schedules/{id}                          cancel (its broadcaster's)
//	GET    /api/v1/schedules/{id}/questions                ranked by votes
//	POST   /api/v1/schedules/{id}/questions                ask (signed, signed in)
//	PUT    /api/v1/schedules/{id}/questions/{q}/vote       up-vote, once per account
//	PUT    /api/v1/schedules/{id}/questions/{q}/answered   tick off (its broadcaster's)

// Event kinds of scheduled broadcasts.
const (
	// EventScheduled: a schedule was made, cancelled, or its questions
	// changed (the public stream: pages reload what they show).
	EventScheduled = "scheduled"
	// EventReminder: a followed account's broadcast starts after the
	// event's Step; only the followers' feeds (and OnLive) hear it.
	EventReminder = "reminder"
)

// scheduleStore is what the server needs of a store for scheduled
// broadcasts; Store implements it over its database.
type scheduleStore interface {
	addSchedule(ctx context.Context, account int64, r api.ScheduleRequest, max int, now time.Time) (int64, error)
	cancelSchedule(ctx context.Context, account, id int64) error
	schedule(ctx context.Context, id int64) (api.Scheduled, int64, error)
	upcoming(ctx context.Context, f upcomingFilter, since time.Time, limit int) ([]api.Scheduled, error)
	takeReminders(ctx context.Context, now time.Time) ([]dueReminder, error)
	addQuestion(ctx context.Context, id, account int64, text string, l QuestionLimits, openAfter, now time.Time) (int64, error)
	vote(ctx context.Context, id, qid, account int64, openAfter time.Time) error
	markAnswered(ctx context.Context, id, qid, account int64) error
	questions(ctx context.Context, id, qid int64) ([]api.Question, error)
}

// Defaults of scheduled broadcasts.
const (
	// DefaultMaxSchedules bounds one account's upcoming broadcasts.
	DefaultMaxSchedules = 10
	// DefaultRemindEvery is how often Service.Serve sends the reminders
	// due: a reminder is at most this late.
	DefaultRemindEvery = time.Minute
	// scheduleGrace is how long after its start a schedule stays listed
	// and open to questions and votes (a broadcaster who starts late).
	scheduleGrace = time.Hour
	// scheduleKept is how long after its start a schedule and its
	// questions are kept (the broadcaster reads them while live).
	scheduleKept = 24 * time.Hour
	maxUpcoming  = 200
)

func (s *Server) scheduleRoutes(m *http.ServeMux) {
	m.HandleFunc("POST /api/v1/schedules", s.handleSchedule)
	m.HandleFunc("GET /api/v1/schedules", s.handleUpcoming)
	m.HandleFunc("GET /api/v1/schedules/{id}", s.handleGetSchedule)
	m.HandleFunc("DELETE /api/v1/schedules/{id}", s.handleCancelSchedule)
	m.HandleFunc("GET /api/v1/schedules/{id}/questions", s.handleQuestions)
	m.HandleFunc("POST /api/v1/schedules/{id}/questions", s.handleAsk)
	m.HandleFunc("PUT /api/v1/schedules/{id}/questions/{q}/vote", s.handleVote)
	m.HandleFunc("PUT /api/v1/schedules/{id}/questions/{q}/answered", s.handleAnswered)
}

func pathID(r *http.Request, name string) (int64, error) {
	v := r.PathValue(name)
	id, err := strconv.ParseInt(v, 10, 64)
	if err != nil || id <= 0 {
		return 0, fmt.Errorf("%w: %q is not an ID", ErrNotFound, clipString(v, 20))
	}
	return id, nil
}

func clipString(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// noBody refuses a body where none is expected.
func noBody(body []byte, what string) error {
	if len(body) > 0 {
		return fmt.Errorf("%w: %s takes no body", ErrBadRequest, what)
	}
	return nil
}

func (s *Server) handleSchedule(w http.ResponseWriter, r *http.Request) {
	_, acc, body, err := s.session(w, r)
	var req api.ScheduleRequest
	if err == nil {
		err = decodeStrict(r, body, &req)
	}
	now := s.cfg.Now()
	if err == nil {
		err = req.Check(now)
	}
	if err == nil && req.Tweet {
		err = s.canTweet(r.Context(), acc.ID)
	}
	var id int64
	if err == nil {
		id, err = s.schedules.addSchedule(r.Context(), acc.ID, req, s.cfg.MaxSchedules, now)
	}
	var sc api.Scheduled
	if err == nil {
		sc, _, err = s.schedules.schedule(r.Context(), id)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.raise(r.Context(), Event{Kind: EventScheduled, Schedule: &sc})
	writeJSON(w, http.StatusCreated, sc)
}

func (s *Server) handleCancelSchedule(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r, "id")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	_, acc, body, err := s.session(w, r)
	if err == nil {
		err = noBody(body, "DELETE")
	}
	if err == nil {
		err = s.schedules.cancelSchedule(r.Context(), acc.ID, id)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.raise(r.Context(), Event{Kind: EventScheduled, Schedule: &api.Scheduled{ID: id}})
	writeJSON(w, http.StatusOK, map[string]int64{"cancelled": id})
}

// upcomingFilter selects upcoming broadcasts; a zero field selects all.
type upcomingFilter struct {
	account  int64  // one broadcaster's
	follower int64  // of the accounts this one follows
	text     string // whose title, handle or name contain it
}

func (s *Server) handleUpcoming(w http.ResponseWriter, r *http.Request) {
	var f upcomingFilter
	f.text = strings.TrimSpace(r.URL.Query().Get("q"))
	if utf8.RuneCountInString(f.text) > maxQueryText || !identity.ValidText(f.text) {
		s.fail(w, r, fmt.Errorf("%w: search text of at most %d characters", ErrBadRequest, maxQueryText))
		return
	}
	var err error
	if f.follower, err = s.followedBy(w, r); err != nil {
		s.fail(w, r, err)
		return
	}
	if key := r.URL.Query().Get("account"); key != "" {
		if err := api.CheckAccountKey(key); err != nil {
			s.fail(w, r, err)
			return
		}
		a, err := s.store.AccountByKey(r.Context(), key)
		if errors.Is(err, ErrNotFound) {
			writeJSON(w, http.StatusOK, api.SchedulesResponse{Schedules: []api.Scheduled{}})
			return
		}
		if err != nil {
			s.fail(w, r, err)
			return
		}
		f.account = a.ID
	}
	list, err := s.schedules.upcoming(r.Context(), f, s.cfg.Now().Add(-scheduleGrace), maxUpcoming)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, api.SchedulesResponse{Schedules: list})
}

func (s *Server) handleGetSchedule(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r, "id")
	var sc api.Scheduled
	if err == nil {
		sc, _, err = s.schedules.schedule(r.Context(), id)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, sc)
}

func (s *Server) handleQuestions(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r, "id")
	if err == nil {
		_, _, err = s.schedules.schedule(r.Context(), id)
	}
	var list []api.Question
	if err == nil {
		list, err = s.schedules.questions(r.Context(), id, 0)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, api.QuestionsResponse{Questions: list})
}

func (s *Server) handleAsk(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r, "id")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	_, acc, body, err := s.session(w, r)
	var req api.QuestionRequest
	if err == nil {
		err = decodeStrict(r, body, &req)
	}
	if err == nil {
		err = req.Check()
	}
	now := s.cfg.Now()
	var qid int64
	if err == nil {
		qid, err = s.schedules.addQuestion(r.Context(), id, acc.ID, req.Text, s.cfg.Questions, now.Add(-scheduleGrace), now)
	}
	s.answerQuestion(w, r, id, qid, http.StatusCreated, err)
}

func (s *Server) handleVote(w http.ResponseWriter, r *http.Request) {
	s.questionAction(w, r, func(acc Account, id, qid int64) error {
		return s.schedules.vote(r.Context(), id, qid, acc.ID, s.cfg.Now().Add(-scheduleGrace))
	})
}

func (s *Server) handleAnswered(w http.ResponseWriter, r *http.Request) {
	s.questionAction(w, r, func(acc Account, id, qid int64) error {
		return s.schedules.markAnswered(r.Context(), id, qid, acc.ID)
	})
}

// questionAction runs f for a signed-in PUT on one question, without a
// body, and answers the question as it is then.
func (s *Server) questionAction(w http.ResponseWriter, r *http.Request, f func(acc Account, id, qid int64) error) {
	id, err := pathID(r, "id")
	var qid int64
	if err == nil {
		qid, err = pathID(r, "q")
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	_, acc, body, err := s.session(w, r)
	if err == nil {
		err = noBody(body, "PUT")
	}
	if err == nil {
		err = f(acc, id, qid)
	}
	s.answerQuestion(w, r, id, qid, http.StatusOK, err)
}

// answerQuestion answers question qid of schedule id (or err), and tells
// the pages that the schedule's questions changed.
func (s *Server) answerQuestion(w http.ResponseWriter, r *http.Request, id, qid int64, status int, err error) {
	var list []api.Question
	if err == nil {
		list, err = s.schedules.questions(r.Context(), id, qid)
	}
	if err == nil && len(list) != 1 {
		err = fmt.Errorf("%w: no question %d", ErrNotFound, qid)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.raise(r.Context(), Event{Kind: EventScheduled, Schedule: &api.Scheduled{ID: id}})
	writeJSON(w, status, list[0])
}

// SendReminders sends the reminders due at the clock's now: for each
// schedule, the latest of its chosen steps that has come (never one that
// passed before it was scheduled, never one twice), to the follow feeds of
// the broadcaster's followers and to OnLive. It returns how many
// schedules were reminded of. Service.Serve runs it every RemindEvery;
// tests run it after moving their clock.
func (s *Server) SendReminders(ctx context.Context) (int, error) {
	due, err := s.schedules.takeReminders(ctx, s.cfg.Now())
	if err != nil {
		return 0, err
	}
	for _, d := range due {
		sc := d.schedule
		e := Event{Kind: EventReminder, Schedule: &sc, Step: d.step, private: true}
		s.addFollowers(ctx, &e, sc.Who.Key())
		s.raise(ctx, e)
		if s.cfg.OnLive != nil {
			s.cfg.OnLive(e)
		}
		if sc.Tweet {
			if _, err := s.tweetReminder(ctx, d); err != nil {
				s.log.Warn("reminder not posted on X", "schedule", sc.ID, "err", err)
			}
		}
	}
	return len(due), nil
}

// stepWords says how far off a reminder's step is.
var stepWords = map[string]string{api.StepWeek: "in 7 days", api.StepD3: "in 3 days", api.StepD1: "tomorrow", api.StepHour: "in an hour"}

// canTweet refuses, with what to do, an account that cannot post on X.
func (s *Server) canTweet(ctx context.Context, account int64) error {
	if s.cfg.Twitter.ClientID == "" {
		return fmt.Errorf("%w: this bootstrap cannot post on X", ErrBadRequest)
	}
	tok, err := s.store.Tokens(ctx, account)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	if err != nil || !hasScope(tok.Scopes, "tweet.write") {
		return fmt.Errorf("%w: to post reminders on X, sign in with X allowing posts", ErrBadRequest)
	}
	return nil
}

// tweetReminder posts a reminder as its broadcaster.
func (s *Server) tweetReminder(ctx context.Context, d dueReminder) (string, error) {
	tok, err := s.providerTokens(ctx, d.account)
	if err != nil {
		return "", err
	}
	if !hasScope(tok.Scopes, "tweet.write") {
		return "", fmt.Errorf("%w: the account did not allow posting", ErrForbidden)
	}
	text := d.schedule.Title + " — live on Peerscope " + stepWords[d.step]
	if s.cfg.PublicURL != "" {
		text += ": " + s.cfg.PublicURL + "/?tab=upcoming"
	}
	return s.cfg.Twitter.tweet(ctx, s.cfg.HTTPClient, tok.Access, text)
}

// remindLoop sends the reminders due every RemindEvery until ctx ends.
func (s *Server) remindLoop(ctx context.Context) {
	t := time.NewTicker(s.cfg.RemindEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if n, err := s.SendReminders(ctx); err != nil {
			s.log.Warn("reminders", "err", err)
		} else if n > 0 {
			s.log.Info("reminders sent", "schedules", n)
		}
	}
}
