package mesh

// Add adds o's counters to s, to sum the machines of a tree (the simulator
// and the bench report one Stats for a whole run).
func (s *Stats) Add(o *Stats) {
	s.ChunksIn += o.ChunksIn
	s.Duplicates += o.Duplicates
	s.TooOld += o.TooOld
	s.Forged += o.Forged
	s.Pulls += o.Pulls
	s.Moves += o.Moves
	s.Rejoins += o.Rejoins
	s.Withheld += o.Withheld
	s.Padded += o.Padded
}
