package api

import (
	"errors"
	"fmt"
)

var (
	// ErrBadRequest is returned for a request body, an identifier or a
	// live notice that is malformed or breaks a limit; the bootstrap
	// answers it with 400 (bootstrap.ErrBadRequest is this same error).
	ErrBadRequest = errors.New("bootstrap: bad request")
	// ErrNoKey is returned by a signed call of a Client that has no Key.
	ErrNoKey = errors.New("bootstrap: the client has no key to sign with")
	// ErrUntrusted is returned for keys or revocations that their
	// bootstrap's identity key did not sign, or for a bootstrap whose
	// fingerprint is not the pinned one (ErrPin).
	ErrUntrusted = errors.New("bootstrap: not signed by the bootstrap's identity key")
	// ErrPin is returned when a bootstrap's fingerprint is not the one the
	// node was given (Client.Pin): someone else answers at its address.
	ErrPin = fmt.Errorf("%w: the fingerprint is not the pinned one", ErrUntrusted)
	// ErrOldBootstrap is returned by a Client talking to a bootstrap from
	// before signed requests named their bootstrap: it cannot take this
	// node's requests, nor this node its unsigned keys.
	ErrOldBootstrap = errors.New("bootstrap: the bootstrap is too old (its /api/v1/info has no ID): it takes no version-2 signed requests; it must be upgraded")
)

// APIError is a 4xx/5xx answer of the API, as a Client returns it.
type APIError struct {
	Status  int
	Code    string
	Message string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("bootstrap API: %d %s: %s", e.Status, e.Code, e.Message)
}

// ErrorBody is the JSON body of every error the API answers:
// {"error": {"code": …, "message": …}}.
type ErrorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}
