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
