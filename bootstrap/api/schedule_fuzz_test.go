package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/peerscope/peerscope/internal/testutil/fuzzseed"
)

// The scheduled broadcasts' decoders of untrusted bytes: a schedule and a
// question as the bootstrap reads them from a request body, and a reminder
// as a node reads it off ReminderTopic. One table of seeds each, committed
// under testdata/fuzz/ (TestWriteScheduleFuzzSeeds with -write-fuzz-seeds).

var fuzzNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func scheduleSeeds() [][]byte {
	return [][]byte{
		[]byte(`{"title":"Harbour at dawn","starts":"2026-03-03T06:00:00Z","reminders":["d1","h1"]}`),
		[]byte(`{"title":"AMA","description":"two\nlines","starts":"2026-03-09T12:00:00+01:00","reminders":["d7","d3","d1","h1"]}`),
		[]byte(`{"title":"past","starts":"2026-02-01T00:00:00Z"}`),
		[]byte(`{"title":"far","starts":"2028-01-01T00:00:00Z"}`),
		[]byte(`{"title":"twice","starts":"2026-03-03T06:00:00Z","reminders":["d1","d1"]}`),
		[]byte(`{"title":"","starts":"2026-03-03T06:00:00Z","tweet":true}`),
	}
}

func questionSeeds() [][]byte {
	return [][]byte{[]byte(`{"text":"What lens do you use?"}`), []byte(`{"text":"   "}`), []byte(`{"text":"a\nb"}`), []byte(`{}`)}
}

func reminderSeeds() [][]byte {
	b, _ := EncodeReminderNotice(Reminder{Step: StepD3, Schedule: &Scheduled{ID: 7, Title: "Harbour at dawn",
		Starts: fuzzNow.Add(72 * time.Hour), Reminders: []string{StepD3}, Questions: 2,
		Who: &Account{Provider: "twitter", Subject: "100", Handle: "@alice", Name: "Alice"}}})
	return [][]byte{b, []byte(`{"step":"d5","schedule":{"id":1}}`), []byte(`{"step":"h1","schedule":null}`), []byte(`{}`)}
}

func TestWriteScheduleFuzzSeeds(t *testing.T) {
	if !*writeFuzzSeeds {
		t.Skip("run with -write-fuzz-seeds to write testdata/fuzz/Fuzz{ScheduleRequest,QuestionRequest,ReminderNotice}/seed-*")
	}
	for target, seeds := range map[string][][]byte{"FuzzScheduleRequest": scheduleSeeds(), "FuzzQuestionRequest": questionSeeds(), "FuzzReminderNotice": reminderSeeds()} {
		for i, b := range seeds {
			fuzzseed.Write(t, target, fuzzseed.Name(fmt.Sprint(i)), b)
		}
	}
}

// strictDecode reads one JSON object as the bootstrap does: unknown fields
// refused.
func strictDecode(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// FuzzScheduleRequest: a schedule the checks accept has a title of one
// line within the limit, a start ahead of now by at most a year, and
// distinct known reminder steps; a refusal is ErrBadRequest.
func FuzzScheduleRequest(f *testing.F) {
	for _, b := range scheduleSeeds() {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var r ScheduleRequest
		if strictDecode(data, &r) != nil {
			return
		}
		if err := r.Check(fuzzNow); err != nil {
			if !errors.Is(err, ErrBadRequest) {
				t.Fatalf("error %v is not ErrBadRequest", err)
			}
			return
		}
		if strings.TrimSpace(r.Title) == "" || utf8.RuneCountInString(r.Title) > MaxScheduleTitle || strings.ContainsAny(r.Title, "\n\r") ||
			!r.Starts.After(fuzzNow) || r.Starts.Sub(fuzzNow) > MaxScheduleAhead || utf8.RuneCountInString(r.Description) > MaxDescription {
			t.Fatalf("accepted %+v", r)
		}
		seen := map[string]bool{}
		for _, s := range r.Reminders {
			if _, ok := StepBefore(s); !ok || seen[s] {
				t.Fatalf("accepted reminders %q", r.Reminders)
			}
			seen[s] = true
		}
	})
}

// FuzzQuestionRequest: an accepted question is one non-blank line within
// the limit.
func FuzzQuestionRequest(f *testing.F) {
	for _, b := range questionSeeds() {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var q QuestionRequest
		if strictDecode(data, &q) != nil {
			return
		}
		if err := q.Check(); err != nil {
			if !errors.Is(err, ErrBadRequest) {
				t.Fatalf("error %v is not ErrBadRequest", err)
			}
			return
		}
		if strings.TrimSpace(q.Text) == "" || utf8.RuneCountInString(q.Text) > MaxQuestion || strings.ContainsAny(q.Text, "\n\r") {
			t.Fatalf("accepted %q", q.Text)
		}
	})
}

// FuzzReminderNotice: what a node takes off ReminderTopic is refused with
// ErrBadRequest, or has a known step, a schedule with a broadcaster whose
// account key is well formed, and survives being encoded again.
func FuzzReminderNotice(f *testing.F) {
	for _, b := range reminderSeeds() {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := DecodeReminderNotice(data)
		if err != nil {
			if !errors.Is(err, ErrBadRequest) {
				t.Fatalf("error %v is not ErrBadRequest", err)
			}
			return
		}
		if _, ok := StepBefore(r.Step); !ok || r.Schedule == nil || r.Schedule.Who == nil || CheckAccountKey(r.Schedule.Who.Key()) != nil ||
			utf8.RuneCountInString(r.Schedule.Title) > MaxScheduleTitle {
			t.Fatalf("accepted %+v", r)
		}
		b, err := EncodeReminderNotice(r)
		if err != nil {
			return // re-encoding may escape past the size limit
		}
		r2, err := DecodeReminderNotice(b)
		if err != nil || r2.Step != r.Step || r2.Schedule.ID != r.Schedule.ID || r2.Schedule.Title != r.Schedule.Title ||
			!slices.Equal(r2.Schedule.Reminders, r.Schedule.Reminders) {
			t.Fatalf("re-encoded: %+v, %v", r2, err)
		}
	})
}
