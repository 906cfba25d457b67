package community

import "time"

// ListingReadAt is when Broadcaster last finished reading id's listing
// (zero: never), so a test knows a background read has answered.
func (c *Community) ListingReadAt(id string) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.listings[id]; e != nil {
		return e.at
	}
	return time.Time{}
}
