package bootstrap

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/peerscope/peerscope/bootstrap/api"
)

// Scheduled broadcasts, their reminders and questions in advance, in the
// store's database. The server reaches them only through scheduleStore
// (schedule.go), so that another store can take this one's place. Every
// limit is checked in the transaction that writes, so that concurrent
// requests of one bootstrap cannot slip past it (its writes are
// serialised on either database; several bootstraps on one PostgreSQL
// database are not yet: docs/ARCHITECTURE.md).

var _ scheduleStore = (*Store)(nil)

// stepBits is the bit set of the named steps (api.Steps' order); names are
// checked by api.ScheduleRequest.Check before.
func stepBits(steps []string) int64 {
	var b int64
	for i, s := range api.Steps {
		for _, n := range steps {
			if n == s.Name {
				b |= 1 << i
			}
		}
	}
	return b
}

// allSteps is the bit set of every step: a schedule whose steps are all
// done has no reminder left.
var allSteps = int64(1)<<len(api.Steps) - 1

func stepNames(bits int64) []string {
	out := []string{}
	for i, s := range api.Steps {
		if bits&(1<<i) != 0 {
			out = append(out, s.Name)
		}
	}
	return out
}

// addSchedule stores a schedule of account unless it already has max
// upcoming ones (starting after now). Steps already past at now are
// stored as done: a reminder is never sent late.
func (s *Store) addSchedule(ctx context.Context, account int64, r api.ScheduleRequest, max int, now time.Time) (int64, error) {
	var done int64
	for i, st := range api.Steps {
		if !r.Starts.Add(-st.Before).After(now) {
			done |= 1 << i
		}
	}
	var id int64
	err := s.txLocked(ctx, []string{lockName("schedules", account)}, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM schedules WHERE account = ? AND starts > ?`, account, now.UnixNano()).Scan(&n); err != nil {
			return err
		}
		if n >= max {
			return fmt.Errorf("%w: %d upcoming broadcasts is the limit per account; cancel one first", ErrRateLimited, max)
		}
		return tx.QueryRowContext(ctx, `INSERT INTO schedules (account, title, description, starts, reminders, sent, tweet, created)
VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`, account, r.Title, r.Description, r.Starts.UnixNano(), stepBits(r.Reminders), done, r.Tweet, now.UnixNano()).Scan(&id)
	})
	if err != nil && !errors.Is(err, ErrRateLimited) {
		err = fmt.Errorf("bootstrap: store schedule: %w", err)
	}
	return id, err
}

// cancelSchedule deletes account's schedule id (and its questions).
func (s *Store) cancelSchedule(ctx context.Context, account, id int64) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		var owner int64
		err := tx.QueryRowContext(ctx, `SELECT account FROM schedules WHERE id = ?`, id).Scan(&owner)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return fmt.Errorf("%w: no scheduled broadcast %d", ErrNotFound, id)
		case err != nil:
			return err
		case owner != account:
			return fmt.Errorf("%w: the broadcast was scheduled by another account", ErrForbidden)
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM schedules WHERE id = ?`, id)
		return err
	})
}

const scheduleColumns = `s.id, s.title, s.description, s.starts, s.reminders, s.tweet, s.created,
	(SELECT COUNT(*) FROM questions q WHERE q.schedule = s.id),
	a.provider, a.subject, a.handle, a.name, a.avatar`

// scanSchedule reads a row of scheduleColumns, then into more.
func scanSchedule(row interface{ Scan(...any) error }, more ...any) (api.Scheduled, error) {
	var sc api.Scheduled
	var starts, created, bits int64
	who := &api.Account{}
	err := row.Scan(append([]any{&sc.ID, &sc.Title, &sc.Description, &starts, &bits, &sc.Tweet, &created, &sc.Questions,
		&who.Provider, &who.Subject, &who.Handle, &who.Name, &who.Avatar}, more...)...)
	sc.Starts, sc.Created, sc.Reminders, sc.Who = time.Unix(0, starts).UTC(), time.Unix(0, created).UTC(), stepNames(bits), who
	return sc, err
}

// schedule returns one schedule, whenever it starts, and its account.
func (s *Store) schedule(ctx context.Context, id int64) (api.Scheduled, int64, error) {
	var account int64
	row := s.r.QueryRowContext(ctx, `SELECT `+scheduleColumns+`, s.account FROM schedules s JOIN accounts a ON a.id = s.account WHERE s.id = ?`, id)
	sc, err := scanSchedule(row, &account)
	if errors.Is(err, sql.ErrNoRows) {
		return sc, 0, fmt.Errorf("%w: no scheduled broadcast %d", ErrNotFound, id)
	}
	return sc, account, err
}

// upcoming lists the schedules starting after since that f selects,
// soonest first.
func (s *Store) upcoming(ctx context.Context, f upcomingFilter, since time.Time, limit int) ([]api.Scheduled, error) {
	q := `SELECT ` + scheduleColumns + ` FROM schedules s JOIN accounts a ON a.id = s.account WHERE s.starts > ?`
	args := []any{since.UnixNano()}
	if f.account != 0 {
		q += ` AND s.account = ?`
		args = append(args, f.account)
	}
	if f.follower != 0 {
		q += ` AND ` + followedBy
		args = append(args, f.follower)
	}
	if f.text != "" {
		pat := "%" + likeEscaper.Replace(f.text) + "%"
		like := s.dialect.like()
		q += ` AND (s.title ` + like + ` ? ESCAPE '\' OR a.handle ` + like + ` ? ESCAPE '\' OR a.name ` + like + ` ? ESCAPE '\')`
		args = append(args, pat, pat, pat)
	}
	rows, err := s.r.QueryContext(ctx, q+` ORDER BY s.starts, s.id LIMIT ?`, append(args, limit)...)
	if err != nil {
		return nil, fmt.Errorf("bootstrap: upcoming: %w", err)
	}
	defer rows.Close()
	out := []api.Scheduled{}
	for rows.Next() {
		sc, err := scanSchedule(rows)
		if err != nil {
			return nil, fmt.Errorf("bootstrap: upcoming: %w", err)
		}
		out = append(out, sc)
	}
	return out, rows.Err()
}

// dueReminder is a reminder to send: the latest step due of a schedule.
type dueReminder struct {
	schedule api.Scheduled
	account  int64 // the broadcaster's
	step     string
}

// takeReminders marks every step due at now as done and returns, for each
// schedule with one, the latest step due among those chosen (a bootstrap
// that was down over D-3 and D-1 sends the D-1 only). A step is marked
// before it is sent: a crash loses a reminder rather than sending it twice.
func (s *Store) takeReminders(ctx context.Context, now time.Time) ([]dueReminder, error) {
	// Due: a step not done whose instant (starts - before) has come, of a
	// schedule that has not started. The earliest step is the one with the
	// furthest instant, so at most the last 7 days' schedules qualify.
	var out []dueReminder
	err := s.txLocked(ctx, []string{lockName("reminders", "")}, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT `+scheduleColumns+`, s.account, s.sent FROM schedules s JOIN accounts a ON a.id = s.account
WHERE s.starts > ? AND s.starts <= ? AND s.sent != ? ORDER BY s.starts`, now.UnixNano(), now.Add(api.Steps[0].Before).UnixNano(), allSteps)
		if err != nil {
			return err
		}
		type upd struct{ id, sent int64 }
		var updates []upd
		for rows.Next() {
			var account, sent int64
			sc, err := scanSchedule(rows, &account, &sent)
			if err != nil {
				rows.Close()
				return err
			}
			bits := stepBits(sc.Reminders)
			newSent, step := sent, ""
			for i, st := range api.Steps {
				if sent&(1<<i) != 0 || sc.Starts.Add(-st.Before).After(now) {
					continue
				}
				newSent |= 1 << i
				if bits&(1<<i) != 0 {
					step = st.Name // later steps overwrite earlier ones
				}
			}
			if newSent != sent {
				updates = append(updates, upd{sc.ID, newSent})
			}
			if step != "" {
				out = append(out, dueReminder{schedule: sc, account: account, step: step})
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, u := range updates {
			if _, err := tx.ExecContext(ctx, `UPDATE schedules SET sent = ? WHERE id = ?`, u.sent, u.id); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("bootstrap: reminders: %w", err)
	}
	return out, nil
}

// QuestionLimits bound the questions in advance.
type QuestionLimits struct {
	// PerWindow is how many questions one account may ask per Window,
	// on all schedules together; default 5 per 10 minutes.
	PerWindow int
	Window    time.Duration
	// PerSchedule bounds a schedule's questions; default 500.
	PerSchedule int
}

func (l *QuestionLimits) fill() {
	if l.PerWindow == 0 {
		l.PerWindow = 5
	}
	if l.Window == 0 {
		l.Window = 10 * time.Minute
	}
	if l.PerSchedule == 0 {
		l.PerSchedule = 500
	}
}

// addQuestion stores account's question on schedule id, which must not
// have started before openAfter; flood limits are checked in the same
// transaction.
func (s *Store) addQuestion(ctx context.Context, id, account int64, text string, l QuestionLimits, openAfter, now time.Time) (int64, error) {
	var qid int64
	err := s.txLocked(ctx, []string{lockName("questions of", account), lockName("questions on", id)}, func(tx *sql.Tx) error {
		var starts int64
		err := tx.QueryRowContext(ctx, `SELECT starts FROM schedules WHERE id = ?`, id).Scan(&starts)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: no scheduled broadcast %d", ErrNotFound, id)
		}
		if err != nil {
			return err
		}
		if starts <= openAfter.UnixNano() {
			return fmt.Errorf("%w: that broadcast has started: questions in advance are closed", ErrBadRequest)
		}
		var mine, all int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM questions WHERE account = ? AND created > ?`, account, now.Add(-l.Window).UnixNano()).Scan(&mine); err != nil {
			return err
		}
		if mine >= l.PerWindow {
			return fmt.Errorf("%w: %d questions per %s is the limit; ask again later", ErrRateLimited, l.PerWindow, l.Window)
		}
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM questions WHERE schedule = ?`, id).Scan(&all); err != nil {
			return err
		}
		if all >= l.PerSchedule {
			return fmt.Errorf("%w: this broadcast has its %d questions already; up-vote one instead", ErrRateLimited, l.PerSchedule)
		}
		return tx.QueryRowContext(ctx, `INSERT INTO questions (schedule, account, text, created) VALUES (?, ?, ?, ?) RETURNING id`,
			id, account, text, now.UnixNano()).Scan(&qid)
	})
	return qid, err
}

// vote counts account's vote on question qid of schedule id, once: a
// second vote changes nothing. One's own question takes no vote.
func (s *Store) vote(ctx context.Context, id, qid, account int64, openAfter time.Time) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		var asker, starts int64
		err := tx.QueryRowContext(ctx, `SELECT q.account, s.starts FROM questions q JOIN schedules s ON s.id = q.schedule WHERE q.id = ? AND q.schedule = ?`, qid, id).Scan(&asker, &starts)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return fmt.Errorf("%w: no question %d on broadcast %d", ErrNotFound, qid, id)
		case err != nil:
			return err
		case asker == account:
			return fmt.Errorf("%w: one does not up-vote one's own question", ErrBadRequest)
		case starts <= openAfter.UnixNano():
			return fmt.Errorf("%w: that broadcast has started: votes are closed", ErrBadRequest)
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO question_votes (question, account) VALUES (?, ?) ON CONFLICT DO NOTHING`, qid, account)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 1 {
			_, err = tx.ExecContext(ctx, `UPDATE questions SET votes = votes + 1 WHERE id = ?`, qid)
		}
		return err
	})
}

// markAnswered ticks question qid of account's schedule id off.
func (s *Store) markAnswered(ctx context.Context, id, qid, account int64) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		var owner int64
		err := tx.QueryRowContext(ctx, `SELECT s.account FROM questions q JOIN schedules s ON s.id = q.schedule WHERE q.id = ? AND q.schedule = ?`, qid, id).Scan(&owner)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return fmt.Errorf("%w: no question %d on broadcast %d", ErrNotFound, qid, id)
		case err != nil:
			return err
		case owner != account:
			return fmt.Errorf("%w: only the broadcaster ticks questions off", ErrForbidden)
		}
		_, err = tx.ExecContext(ctx, `UPDATE questions SET answered = 1 WHERE id = ?`, qid)
		return err
	})
}

// questions lists schedule id's questions, the most voted first (then
// the first asked); only the one qid when qid is not 0.
func (s *Store) questions(ctx context.Context, id, qid int64) ([]api.Question, error) {
	q := `SELECT q.id, q.text, q.votes, q.answered, q.created, a.provider, a.subject, a.handle, a.name, a.avatar
FROM questions q JOIN accounts a ON a.id = q.account WHERE q.schedule = ?`
	args := []any{id}
	if qid != 0 {
		q += ` AND q.id = ?`
		args = append(args, qid)
	}
	rows, err := s.r.QueryContext(ctx, q+` ORDER BY q.votes DESC, q.created, q.id`, args...)
	if err != nil {
		return nil, fmt.Errorf("bootstrap: questions: %w", err)
	}
	defer rows.Close()
	out := []api.Question{}
	for rows.Next() {
		var x api.Question
		var created int64
		who := &api.Account{}
		if err := rows.Scan(&x.ID, &x.Text, &x.Votes, &x.Answered, &created, &who.Provider, &who.Subject, &who.Handle, &who.Name, &who.Avatar); err != nil {
			return nil, fmt.Errorf("bootstrap: questions: %w", err)
		}
		x.Created, x.Who = time.Unix(0, created).UTC(), who
		out = append(out, x)
	}
	return out, rows.Err()
}
