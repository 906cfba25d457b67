package node

import (
	"context"
	"fmt"
	"maps"
	"time"

	"github.com/peerscope/peerscope/community"
)

// KeepAudience has a private broadcast this node roots look its audience
// up again at the bootstrap every every (ResolveAudience) and take the new
// one when an account or a device came or went (SetAudience): someone who
// signs in with a new device while the broadcast is live gets in within
// every and a mailbox poll, a device signed out is put out with a new
// epoch. changed, if not nil, hears each new audience (it must not block);
// a failed lookup keeps the audience as it is and is logged. It returns at
// once; the loop ends with the broadcast.
func (b *Broadcast) KeepAudience(spec community.Audience, every time.Duration, changed func([]Member)) error {
	if b.caster == nil || !b.n.bootMailbox {
		return fmt.Errorf("%w: KeepAudience is for a private broadcast whose keys go through the bootstrap", ErrNoMailbox)
	}
	if every <= 0 {
		return fmt.Errorf("%w: KeepAudience every %v", ErrConfig, every)
	}
	b.wg.Go(func() {
		t := b.n.clock.NewTicker(every)
		defer t.Stop()
		have := devicesOf(b.caster.members())
		for {
			select {
			case <-b.ctx.Done():
				return
			case <-t.C():
			}
			ctx, cancel := context.WithTimeout(b.ctx, max(every, 10*time.Second))
			members, err := b.n.ResolveAudience(ctx, spec)
			if err == nil && !maps.Equal(devicesOf(members), have) {
				if err = b.SetAudience(ctx, members); err == nil {
					have = devicesOf(members)
					if changed != nil {
						changed(members)
					}
				}
			}
			cancel()
			if err != nil && b.ctx.Err() == nil {
				b.log.Warn("the audience was not looked up again", "err", err)
			}
		}
	})
	return nil
}

// devicesOf is an audience's accounts and device keys, to compare.
func devicesOf(ms []Member) map[string]bool {
	out := map[string]bool{}
	for _, m := range ms {
		out[m.Account] = true
		for _, d := range m.Devices {
			fp := d.Fingerprint()
			out[m.Account+"/"+string(fp[:])] = true
		}
	}
	return out
}
