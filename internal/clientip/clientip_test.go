package clientip

import "testing"

func TestKey(t *testing.T) {
	for in, want := range map[string]string{
		"203.0.113.7:5000":           "203.0.113.7",
		"203.0.113.7":                "203.0.113.7",
		"[::ffff:203.0.113.7]:80":    "203.0.113.7",
		"[2001:db8:1:2:3:4:5:6]:443": "2001:db8:1:2::/64",
		"[2001:db8:1:2:ffff::1]:1":   "2001:db8:1:2::/64",
		"[fe80::1%eth0]:9":           "fe80::/64",
		"[::1]:8080":                 "::/64",
		"not an address":             "",
		"":                           "",
	} {
		if got := Key(in); got != want {
			t.Errorf("Key(%q) = %q, want %q", in, got, want)
		}
	}
}
