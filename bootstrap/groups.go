package bootstrap

import (
	"fmt"
	"net/http"

	"github.com/peerscope/peerscope/bootstrap/api"
	"github.com/peerscope/peerscope/identity"
)

// Saved groups: a named list of accounts per account, that a broadcaster
// invites at once (`--audience group:NAME`). Members are kept by account
// key, which does not change when someone renames; a PUT may name them by
// handle, resolved here to the one account that shows it.

// handlePutGroup: PUT /api/v1/groups/{name}, signed in: saves (or
// replaces) the group.
func (s *Server) handlePutGroup(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	err := api.CheckGroupName(name)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	_, acc, body, err := s.session(w, r)
	var g api.Group
	if err == nil {
		err = decodeStrict(r, body, &g)
	}
	if err == nil && g.Name == "" {
		g.Name = name
	}
	if err == nil && g.Name != name {
		err = fmt.Errorf("%w: the body names group %q, the path %q", ErrBadRequest, clip(g.Name, 80), name)
	}
	if err == nil && len(g.Members) > api.MaxGroupMembers {
		err = fmt.Errorf("%w: %d members, at most %d", ErrBadRequest, len(g.Members), api.MaxGroupMembers)
	}
	if err == nil {
		err = s.resolveMembers(r, g.Members)
	}
	if err == nil {
		err = g.Check()
	}
	if err == nil {
		err = s.store.putGroup(r.Context(), acc.ID, g, s.cfg.Now())
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, g)
}

// handleGroups: GET /api/v1/groups, signed in: the account's groups.
func (s *Server) handleGroups(w http.ResponseWriter, r *http.Request) {
	_, acc, body, err := s.session(w, r)
	if err == nil && len(body) > 0 {
		err = fmt.Errorf("%w: GET with a body", ErrBadRequest)
	}
	var list []api.Group
	if err == nil {
		list, err = s.store.groups(r.Context(), acc.ID, "")
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, api.GroupsResponse{Groups: list})
}

// handleGroup: GET /api/v1/groups/{name}, signed in: one of them.
func (s *Server) handleGroup(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	err := api.CheckGroupName(name)
	var acc Account
	var body []byte
	if err == nil {
		_, acc, body, err = s.session(w, r)
	}
	if err == nil && len(body) > 0 {
		err = fmt.Errorf("%w: GET with a body", ErrBadRequest)
	}
	var list []api.Group
	if err == nil {
		list, err = s.store.groups(r.Context(), acc.ID, name)
	}
	if err == nil && len(list) == 0 {
		err = fmt.Errorf("%w: no group %q", ErrNotFound, name)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, list[0])
}

// handleDeleteGroup: DELETE /api/v1/groups/{name}, signed in.
func (s *Server) handleDeleteGroup(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	err := api.CheckGroupName(name)
	var acc Account
	var body []byte
	if err == nil {
		_, acc, body, err = s.session(w, r)
	}
	if err == nil && len(body) > 0 {
		err = fmt.Errorf("%w: DELETE without a body", ErrBadRequest)
	}
	if err == nil {
		err = s.store.deleteGroup(r.Context(), acc.ID, name)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"deleted": name})
}

// resolveMembers replaces, in place, each member named by handle with the
// key of the account here that shows it: one unknown or shown by more than
// one account is ErrBadRequest.
func (s *Server) resolveMembers(r *http.Request, members []string) error {
	for i, m := range members {
		if api.CheckAccountKey(m) == nil {
			continue
		}
		if m == "" || len(m) > identity.MaxHandleLen || !identity.ValidText(m) {
			return fmt.Errorf("%w: %q is neither an account key nor a handle", ErrBadRequest, clip(m, 80))
		}
		list, err := s.store.accountsByHandle(r.Context(), m)
		if err != nil {
			return err
		}
		switch len(list) {
		case 0:
			return fmt.Errorf("%w: no account here shows %q", ErrBadRequest, clip(m, 80))
		case 1:
			members[i] = list[0].Key()
		default:
			return fmt.Errorf("%w: %d accounts show %q: name one by its account key", ErrBadRequest, len(list), clip(m, 80))
		}
	}
	return nil
}
