package bootstrap_test

import (
	"fmt"
	"net/http"
	"net/netip"
	"testing"

	"github.com/peerscope/peerscope/bootstrap"
	"github.com/peerscope/peerscope/internal/pgtest"
)

// TestIPv6PerNetwork: one IPv6 customer gets a /64 (or more) and can use
// every address in it; the per-address limit counts the /64, so walking
// through addresses buys nothing. Another /64 has its own budget, and an
// IPv4 address is still counted alone.
func TestIPv6PerNetwork(t *testing.T) {
	pgtest.Each(t, func(t *testing.T) {
		e := newEnv(t, func(c *bootstrap.ServerConfig) {
			c.RateIP = bootstrap.Rate{PerSecond: 0.001, Burst: 5}
			c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
		})
		get := func(client string) int {
			req, _ := http.NewRequest(http.MethodGet, e.url+"/api/v1/info", nil)
			req.Header.Set("X-Forwarded-For", client)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp.StatusCode
		}
		served := 0
		for i := 1; i <= 20; i++ {
			if get(fmt.Sprintf("2001:db8:1:2::%x", i)) == http.StatusOK {
				served++
			}
		}
		if served != 5 {
			t.Fatalf("20 addresses of one /64 were served %d times, want the burst of 5", served)
		}
		if get("2001:db8:1:3::1") != http.StatusOK {
			t.Fatal("another /64 shares the first one's budget")
		}
		for i := 1; i <= 5; i++ {
			if get(fmt.Sprintf("192.0.2.%d", i)) != http.StatusOK {
				t.Fatalf("IPv4 address %d refused: they are counted one by one", i)
			}
		}
	})
}
