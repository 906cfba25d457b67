package stripe

import (
	"context"
	"slices"
	"time"
)

// A relay is interior in its own stripe's tree, with all its slots there.
// In a small audience some stripe may have no relay at all (the peer IDs
// hash elsewhere), and its tree no room beyond the broadcaster's few slots:
// its viewers would stay out of it, and with more such trees than parity
// fragments, play nothing. So a relay with slots to spare in its own tree
// lends them, one free slot at a time in each other tree it is in, and
// keeps a reserve for its own tree; it takes a lent slot back (its child
// told where to go) when its own tree has filled. In a large audience the
// own trees fill and little is lent: each relay stays interior in about one
// tree, which is what makes a mass failure cost each viewer few trees.

// lendStatusTimeout bounds the trees' answers to one look.
const lendStatusTimeout = 2 * time.Second

func (g *Group) lendLoop() {
	defer close(g.done)
	tk := g.opt.clock.NewTicker(g.opt.lendEvery)
	defer tk.Stop()
	for {
		select {
		case <-g.quit:
			return
		case <-tk.C():
			if g.root {
				g.redeal()
			} else {
				g.lend()
			}
		}
	}
}

// redeal moves the broadcaster's slots toward a tree with no room: one
// where neither it nor anyone below reports a free slot, so its viewers
// cannot all get in. The viewer that takes the moved slot is a child of
// the broadcaster's in a tree not its own, which plan reads as a tree
// short of relays: it lends there. The broadcaster's upload stays the same.
func (g *Group) redeal() {
	g.mu.Lock()
	defer g.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), lendStatusTimeout)
	defer cancel()
	room := make([]int, len(g.trees))
	for k, t := range g.trees {
		st, _, err := t.Status(ctx)
		if err != nil {
			return
		}
		room[k] = len(st.Room)
	}
	next := redealPlan(g.rootSlots, room)
	for k, s := range next {
		if s != g.rootSlots[k] {
			if err := g.trees[k].SetSlots(s); err != nil {
				return
			}
			g.rootSlots[k] = s
		}
	}
}

// redealPlan moves one slot into each tree without room from the tree
// with the most room (at least two members with a free slot), keeping at
// least one slot in every tree.
func redealPlan(slots, room []int) []int {
	next, room := slices.Clone(slots), slices.Clone(room)
	for k := range next {
		if room[k] > 0 {
			continue
		}
		donor := -1
		for j := range next {
			if room[j] >= 2 && next[j] > 1 && (donor < 0 || room[j] > room[donor]) {
				donor = j
			}
		}
		if donor < 0 {
			return next
		}
		next[donor]--
		next[k]++
		room[donor]--
	}
	return next
}

// lend looks at the children of every tree and sets what is lent.
func (g *Group) lend() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.total == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), lendStatusTimeout)
	defer cancel()
	n := len(g.trees)
	own := g.Stripe()
	trees := make([]treeState, n)
	roomBelow := false
	for k, t := range g.trees {
		st, _, err := t.Status(ctx)
		if err != nil {
			return // closing
		}
		trees[k] = treeState{children: len(st.Children), attached: st.Depth >= 1, top: st.Depth == 1, lent: g.lent[k]}
		if k == own {
			for _, r := range st.Room {
				roomBelow = roomBelow || r.ID != g.self
			}
		}
	}
	want := plan(own, g.total, trees, roomBelow)
	lent := 0
	for k, w := range want {
		if k != g.Stripe() {
			lent += w
		}
	}
	for k, w := range want {
		if k == g.Stripe() {
			w = g.total - lent
		} else if w == g.lent[k] {
			continue
		}
		if err := g.trees[k].SetSlots(w); err != nil {
			return
		}
		if k != g.Stripe() {
			g.lent[k] = w
		}
	}
}

// treeState is what lending looks at in one tree.
type treeState struct {
	children int
	attached bool
	top      bool // a child of the broadcaster's there
	lent     int  // slots lent there now
}

// plan returns the slots to lend in each tree but own (own's entry is
// unused). The lent slots that hold children are kept. While the own tree
// keeps its reserve free, each other tree this node is in gets one free
// slot more. A node that is a child of the broadcaster's in another tree,
// where a relay of that tree's stripe would have displaced it, takes that
// for a tree short of relays and lends there even from a full own tree
// when its own subtree has room below it (roomBelow): the own child it
// lets go finds a place one level down. When the own tree is full with no
// room below, one lent slot (of the tree that has most) is taken back.
func plan(own, total int, trees []treeState, roomBelow bool) []int {
	want := make([]int, len(trees))
	used := trees[own].children
	for k, t := range trees {
		if k != own {
			want[k] = min(t.lent, t.children)
			used += want[k]
		}
	}
	free := total - used
	reserve := max(2, total/4)
	for k, t := range trees {
		switch {
		case k == own || !t.attached:
		case free > reserve:
			want[k]++
			free--
		case t.top && roomBelow && want[k] == t.children:
			want[k]++ // an idle lent slot at the top of a tree short of relays
		}
	}
	if free <= 0 && !roomBelow {
		most := -1
		for k := range want {
			if k != own && want[k] > 0 && (most < 0 || want[k] > want[most]) {
				most = k
			}
		}
		if most >= 0 {
			want[most]--
		}
	}
	return want
}
