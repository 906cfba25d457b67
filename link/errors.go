package link

import "errors"

// ErrMalformed wraps every complaint about a link or a broadcast ID, with
// the detail.
var ErrMalformed = errors.New("link: bad link")
