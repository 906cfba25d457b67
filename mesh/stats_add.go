package mesh

// Add adds o's counters to s, to sum the nodes of a tree. Hearts are left
// out: a node's figure already holds its subtree's, so a sum over nodes
// would count them several times.
func (s *Stats) Add(o *Stats) {
	s.ChunksIn += o.ChunksIn
	s.Duplicates += o.Duplicates
	s.TooOld += o.TooOld
	s.Forged += o.Forged
	s.Pulls += o.Pulls
	s.Moves += o.Moves
	s.Rejoins += o.Rejoins
}
