package owner

import "context"

// Inbox carries closures to an owner goroutine, which runs them from Calls
// until done is closed.
type Inbox struct {
	calls  chan func()
	done   <-chan struct{}
	closed error
}

// New returns an inbox of size queued calls for an owner that stops when done
// is closed; Call returns closedErr from then on.
func New(size int, done <-chan struct{}, closedErr error) *Inbox {
	return &Inbox{calls: make(chan func(), size), done: done, closed: closedErr}
}

// Calls is what the owner goroutine receives from and runs.
func (i *Inbox) Calls() <-chan func() { return i.calls }

// Call runs f on the owner goroutine and waits until it has run. It returns
// ctx's error if ctx ends before the owner takes f, and the inbox's closed
// error if the owner stops first (f may then not have run).
func (i *Inbox) Call(ctx context.Context, f func()) error {
	ran := make(chan struct{})
	select {
	case i.calls <- func() { f(); close(ran) }:
	case <-i.done:
		return i.closed
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-ran:
		return nil
	case <-i.done:
		return i.closed
	}
}
